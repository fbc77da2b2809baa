//! One decoder layer: `x + attn(norm(x))`, then `x + mlp(norm(x))`.

use burn::tensor::Tensor;

use super::attention::Attention;
use super::kv_cache::KvCache;
use super::mlp::Mlp;
use super::rope::Rope;
use crate::config::TextConfig;
use crate::error::Result;
use crate::nn::RmsNorm;
use crate::weights::WeightReader;

/// `LlamaDecoderLayer`.
#[derive(Clone, Debug)]
pub struct DecoderLayer {
    input_norm: RmsNorm,
    attn: Attention,
    post_attn_norm: RmsNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    pub fn load(vb: &mut WeightReader, cfg: &TextConfig) -> Result<Self> {
        Ok(Self {
            input_norm: RmsNorm::load(vb, "input_layernorm", cfg.hidden_size, cfg.rms_norm_eps)?,
            attn: Attention::load(&mut vb.pp("self_attn"), cfg)?,
            post_attn_norm: RmsNorm::load(vb, "post_attention_layernorm", cfg.hidden_size, cfg.rms_norm_eps)?,
            mlp: Mlp::load(&mut vb.pp("mlp"), cfg)?,
        })
    }

    /// Weight bytes one token reads in this layer.
    pub fn weight_bytes(&self) -> u64 {
        self.input_norm.weight_bytes() + self.attn.weight_bytes() + self.post_attn_norm.weight_bytes() + self.mlp.weight_bytes()
    }

    /// # Shapes
    /// `x: [n, hidden]` → same
    pub fn forward(&self, x: Tensor<2>, rope: &Rope, cache: &mut KvCache, layer: usize) -> Result<Tensor<2>> {
        let x = x.clone() + self.attn.forward(self.input_norm.forward(x)?, rope, cache, layer)?;
        Ok(x.clone() + self.mlp.forward(self.post_attn_norm.forward(x)?)?)
    }
}
