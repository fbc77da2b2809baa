//! One decoder layer: `x + attn(norm(x))`, then `x + mlp(norm(x))`; or, for Phi, attention
//! and MLP side by side on one norm: `x + attn(norm(x)) + mlp(norm(x))`.

use burn::tensor::Tensor;

use super::attention::Attention;
use super::kv_cache::KvCache;
use super::mlp::Mlp;
use super::rope::RopeAt;
use crate::config::{DecoderKind, TextConfig};
use crate::error::Result;
use crate::nn::Norm;
use crate::weights::WeightReader;

/// `LlamaDecoderLayer`, `Qwen2DecoderLayer`, `PhiDecoderLayer`.
#[derive(Clone, Debug)]
pub struct DecoderLayer {
    input_norm: Norm,
    attn: Attention,
    /// `None` for the parallel (Phi) layout.
    post_attn_norm: Option<Norm>,
    mlp: Mlp,
}

impl DecoderLayer {
    pub fn load(vb: &mut WeightReader, cfg: &TextConfig) -> Result<Self> {
        let (d, eps) = (cfg.hidden_size, cfg.norm_eps());
        let parallel = cfg.decoder == DecoderKind::Phi;
        let rms = !parallel;
        Ok(Self {
            input_norm: Norm::load(vb, "input_layernorm", d, eps, rms)?,
            attn: Attention::load(&mut vb.pp("self_attn"), cfg)?,
            post_attn_norm: if parallel { None } else { Some(Norm::load(vb, "post_attention_layernorm", d, eps, rms)?) },
            mlp: Mlp::load(&mut vb.pp("mlp"), cfg)?,
        })
    }

    /// Weight bytes one token reads in this layer.
    pub fn weight_bytes(&self) -> u64 {
        self.input_norm.weight_bytes()
            + self.attn.weight_bytes()
            + self.post_attn_norm.as_ref().map_or(0, Norm::weight_bytes)
            + self.mlp.weight_bytes()
    }

    /// # Shapes
    /// `x: [n, hidden]` → same
    pub fn forward(&self, x: Tensor<2>, rope: &RopeAt, cache: &mut KvCache, layer: usize) -> Result<Tensor<2>> {
        let Some(post_attn_norm) = &self.post_attn_norm else {
            let h = self.input_norm.forward(x.clone())?;
            let attn = self.attn.forward(h.clone(), rope, cache, layer, None)?;
            return Ok(attn + self.mlp.forward(h)? + x);
        };
        // The residual additions happen inside the o- and down projections.
        let x = self.attn.forward(self.input_norm.forward(x.clone())?, rope, cache, layer, Some(x))?;
        self.mlp.forward_residual(post_attn_norm.forward(x.clone())?, x)
    }
}
