//! The decoder MLP: SwiGLU `down(silu(gate(x)) * up(x))` (Llama, Qwen2) or Phi's
//! `fc2(gelu(fc1(x)))`.

use burn::tensor::Tensor;

use crate::config::{Activation, DecoderKind, TextConfig};
use crate::error::Result;
use crate::nn::{FeedForward, GatedFeedForward};
use crate::weights::WeightReader;

/// `LlamaMLP` / `Qwen2MLP` (gated) or `PhiMLP` (plain).
#[derive(Clone, Debug)]
pub enum Mlp {
    Gated(GatedFeedForward),
    Plain(FeedForward),
}

impl Mlp {
    pub fn load(vb: &mut WeightReader, cfg: &TextConfig) -> Result<Self> {
        let (d, i) = (cfg.hidden_size, cfg.intermediate_size);
        if cfg.decoder == DecoderKind::Phi {
            let act = Activation::parse(&cfg.hidden_act, "text_config.hidden_act")?;
            return Ok(Self::Plain(FeedForward::load(vb, ("fc1", "fc2"), (d, i, d), true, act)?));
        }
        Ok(Self::Gated(GatedFeedForward::load(vb, d, i, cfg.mlp_bias)?))
    }

    pub fn weight_bytes(&self) -> u64 {
        match self {
            Self::Gated(ff) => ff.weight_bytes(),
            Self::Plain(ff) => ff.weight_bytes(),
        }
    }

    /// # Shapes
    /// `x: [n, hidden]` → same
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        match self {
            Self::Gated(ff) => ff.forward(x),
            Self::Plain(ff) => ff.forward(x),
        }
    }

    /// `residual + mlp(x)`, added inside the last projection.
    ///
    /// # Shapes
    /// `x, residual: [n, hidden]` → same
    pub fn forward_residual(&self, x: Tensor<2>, residual: Tensor<2>) -> Result<Tensor<2>> {
        match self {
            Self::Gated(ff) => ff.forward_residual(x, Some(residual)),
            Self::Plain(ff) => ff.forward_residual(x, Some(residual)),
        }
    }
}
