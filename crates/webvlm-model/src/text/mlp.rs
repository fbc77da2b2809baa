//! SwiGLU MLP: `down(silu(gate(x)) * up(x))`.

use burn::tensor::Tensor;

use crate::config::TextConfig;
use crate::error::Result;
use crate::nn::Linear;
use crate::weights::WeightReader;

/// `LlamaMLP`.
#[derive(Clone, Debug)]
pub struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Mlp {
    pub fn load(vb: &mut WeightReader, cfg: &TextConfig) -> Result<Self> {
        let (d, i, b) = (cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias);
        Ok(Self {
            gate: Linear::load(vb, "gate_proj", d, i, b)?,
            up: Linear::load(vb, "up_proj", d, i, b)?,
            down: Linear::load(vb, "down_proj", i, d, b)?,
        })
    }

    pub fn weight_bytes(&self) -> u64 {
        self.gate.weight_bytes() + self.up.weight_bytes() + self.down.weight_bytes()
    }

    /// # Shapes
    /// `x: [n, hidden]` → same
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        let gated = webvlm_kernels::ops::swiglu(self.gate.forward(x.clone())?, self.up.forward(x)?)
            .map_err(|e| crate::error::ModelError::Kernel { name: "swiglu".into(), message: e.to_string() })?;
        self.down.forward(gated)
    }
}
