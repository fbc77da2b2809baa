//! The decoder MLP: SwiGLU `down(silu(gate(x)) * up(x))` (Llama, Qwen2) or Phi's
//! `fc2(gelu(fc1(x)))`.

use burn::tensor::Tensor;

use crate::config::{Activation, DecoderKind, TextConfig};
use crate::error::{ModelError, Result};
use crate::nn::{FeedForward, Linear};
use crate::weights::WeightReader;

/// `LlamaMLP` / `Qwen2MLP` (gated) or `PhiMLP` (plain).
#[derive(Clone, Debug)]
pub enum Mlp {
    Gated { gate: Linear, up: Linear, down: Linear },
    Plain(FeedForward),
}

impl Mlp {
    pub fn load(vb: &mut WeightReader, cfg: &TextConfig) -> Result<Self> {
        let (d, i) = (cfg.hidden_size, cfg.intermediate_size);
        if cfg.decoder == DecoderKind::Phi {
            let act = Activation::parse(&cfg.hidden_act, "text_config.hidden_act")?;
            return Ok(Self::Plain(FeedForward::load(vb, ("fc1", "fc2"), (d, i, d), true, act)?));
        }
        let b = cfg.mlp_bias;
        Ok(Self::Gated {
            gate: Linear::load(vb, "gate_proj", d, i, b)?,
            up: Linear::load(vb, "up_proj", d, i, b)?,
            down: Linear::load(vb, "down_proj", i, d, b)?,
        })
    }

    pub fn weight_bytes(&self) -> u64 {
        match self {
            Self::Gated { gate, up, down } => gate.weight_bytes() + up.weight_bytes() + down.weight_bytes(),
            Self::Plain(ff) => ff.weight_bytes(),
        }
    }

    /// # Shapes
    /// `x: [n, hidden]` → same
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        match self {
            Self::Gated { gate, up, down } => {
                let gated = webvlm_kernels::ops::swiglu(gate.forward(x.clone())?, up.forward(x)?)
                    .map_err(|e| ModelError::Kernel { name: "swiglu".into(), message: e.to_string() })?;
                down.forward(gated)
            }
            Self::Plain(ff) => ff.forward(x),
        }
    }
}
