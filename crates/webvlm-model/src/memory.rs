//! What a model will hold on the GPU, planned from its manifest alone — before a byte of its
//! weights is downloaded — so that a device too small for it is told so by name instead of
//! failing half-way (or a phone's browser killing the tab).
//!
//! - **Weights**, as the loader holds them: block-quantised planes as stored, token embeddings
//!   16-bit where the manifest stores them so (and a tied *dense* lm_head widened to f32 beside
//!   them), every other dense tensor f32.
//! - **KV cache**: f32 keys and values for every decoder layer, per position of the context.
//! - **Scratch**: the largest set of activations one forward keeps alive at once, estimated from
//!   the shapes: the logits row with the sampler's work space, one decoder layer's activations
//!   for a prefill of `PREFILL_ROWS` positions, and one batch of image tiles through a vision
//!   block (flash attention keeps no `[heads, n, n]` scores).
//!
//! The allocator rounds buffers up and keeps freed pages for reuse, so the device's peak is
//! somewhat above the plan; `tests/parity/quant.rs` checks the weights part against what a
//! load actually allocates.

use serde::Serialize;

use crate::config::ModelConfig;
use crate::error::Result;
use crate::weights::is_embedding;
use crate::weights::packed::Manifest;

/// Prompt positions the scratch estimate budgets for at once.
pub const PREFILL_ROWS: usize = 1024;

/// Planned GPU bytes of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryPlan {
    /// Weights as held on the device.
    pub weights: u64,
    /// KV cache bytes per context position (all layers, keys and values).
    pub kv_per_position: u64,
    /// Activations of the largest forward (image batch, prefill chunk or decode step).
    pub scratch: u64,
    /// The model's own context length.
    pub context: usize,
}

impl MemoryPlan {
    /// Plan a packed model from its manifest.
    pub fn from_manifest(manifest: &Manifest) -> Result<Self> {
        let config = ModelConfig::from_json(&manifest.config.to_string())?;
        let has_lm_head = manifest.tensors.iter().any(|t| t.name == "lm_head.weight");
        let mut weights = 0u64;
        for t in &manifest.tensors {
            let numel: u64 = t.shape.iter().map(|&d| d as u64).product();
            weights += match t.dtype.as_str() {
                "q4" | "q8" | "f16" => t.planes.iter().map(|p| p.bytes).sum(),
                "f16d" | "bf16d" if is_embedding(&t.name) => {
                    // A tied lm_head with no quantised copy reads the table densely, in f32.
                    let dense_head = if config.tied_embeddings() && !has_lm_head { numel * 4 } else { 0 };
                    numel * 2 + dense_head
                }
                _ => numel * 4,
            };
        }
        Ok(Self::with_weights(weights, &config))
    }

    /// The plan of a model of `config` whose weights take `weights` bytes on the device.
    pub fn with_weights(weights: u64, config: &ModelConfig) -> Self {
        let t = &config.text_config;
        let kv_per_position = (t.num_hidden_layers * 2 * t.num_key_value_heads() * t.head_dim() * 4) as u64;
        // Decode: the logits row, the sampler's two work rows and the penalty mask.
        let decode = (t.vocab_size * 4 * 3) as u64;
        // Prefill: one layer's residual, normed input, q/k/v, attention output and the MLP's
        // gate/up/activation rows, plus the prompt's embeddings.
        let qkv = t.num_attention_heads * t.head_dim() + 2 * t.num_key_value_heads() * t.head_dim();
        let prefill = (PREFILL_ROWS * (4 * t.hidden_size + qkv + 3 * t.intermediate_size) * 4) as u64;
        // The RoPE tables (cos and sin for every position) live as long as the model.
        let rope = (t.max_position_embeddings * t.rotary_dim() * 4 * 2) as u64;
        let vision = if config.family.has_vision() && !config.text_only { vision_scratch(config) } else { 0 };
        let scratch = decode.max(prefill) + vision + rope;
        Self { weights, kv_per_position, scratch, context: t.max_position_embeddings }
    }

    /// Everything at a context of `context` positions.
    pub fn total(&self, context: usize) -> u64 {
        self.weights + self.kv_per_position * context as u64 + self.scratch
    }

    /// The longest context (at most the model's; shortened to a multiple of 256 where that is
    /// at least 256) whose total fits `budget` bytes; `None` when not even `min` positions (or
    /// the model's whole context, if shorter) fit.
    pub fn context_within(&self, budget: u64, min: usize) -> Option<usize> {
        let fixed = self.weights + self.scratch;
        if budget < fixed {
            return None;
        }
        let fits = ((budget - fixed) / self.kv_per_position.max(1)).min(self.context as u64) as usize;
        let rounded = match fits {
            f if f >= self.context => self.context,
            f if f >= 256 => f / 256 * 256,
            f => f,
        };
        (rounded >= min.min(self.context)).then_some(rounded)
    }
}

/// One batch of image tiles through a vision block: the residual stream, the joined q/k/v,
/// the attention output and the MLP's hidden rows, f32.
fn vision_scratch(config: &ModelConfig) -> u64 {
    let v = &config.vision_config;
    let per_side = (v.image_size / v.patch_size.max(1)).max(1);
    // Idefics3 sends up to 8 tiles through together; the others one image.
    let tiles = if config.family == crate::config::Family::Idefics3 { 8 } else { 1 };
    let rows = tiles * per_side * per_side;
    (rows * (5 * v.hidden_size + v.intermediate_size) * 4) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> MemoryPlan {
        MemoryPlan { weights: 1000, kv_per_position: 10, scratch: 100, context: 8192 }
    }

    #[test]
    fn the_context_shrinks_to_what_fits_in_steps_of_256() {
        let p = plan();
        assert_eq!(p.total(8192), 1000 + 81_920 + 100);
        assert_eq!(p.context_within(u64::MAX, 512), Some(8192));
        assert_eq!(p.context_within(1100 + 10 * 3000, 512), Some(2816));
        assert_eq!(p.context_within(1100 + 10 * 511, 512), None);
        assert_eq!(p.context_within(1100 + 10 * 512, 512), Some(512));
        assert_eq!(p.context_within(1099, 0), None);
        // A model whose whole context is short: all of it or nothing.
        let short = MemoryPlan { context: 128, ..p };
        assert_eq!(short.context_within(1100 + 10 * 128, 512), Some(128));
        assert_eq!(short.context_within(1100 + 10 * 127, 512), None);
    }
}
