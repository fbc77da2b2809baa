//! Two projections around an activation, `fc2(act(fc1(x)))` (the vision towers' MLPs, Phi's
//! MLP, LLaVA's projector and Qwen-VL's merger are all this one layer under different names),
//! and the gated SwiGLU form `down(silu(gate(x)) · up(x))` (Llama-style decoders and
//! Qwen2.5-VL's vision blocks).

use burn::tensor::{Tensor, activation};

use super::Linear;
use crate::config::Activation;
use crate::error::{ModelError, Result};
use crate::weights::WeightReader;

/// `act` applied elementwise, as transformers' `ACT2FN[name]`.
pub fn activate<const D: usize>(x: Tensor<D>, act: Activation) -> Tensor<D> {
    match act {
        Activation::GeluTanh => activation::gelu_approximate(x),
        Activation::Gelu => activation::gelu(x),
        Activation::QuickGelu => activation::sigmoid(x.clone() * 1.702) * x,
        Activation::Silu => activation::silu(x),
    }
}

/// `fc1 → act → fc2`.
#[derive(Clone, Debug)]
pub struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

impl FeedForward {
    /// Load `{names.0}` (`dim → hidden`) and `{names.1}` (`hidden → out`).
    pub fn load(
        vb: &mut WeightReader,
        names: (&str, &str),
        (dim, hidden, out): (usize, usize, usize),
        bias: bool,
        act: Activation,
    ) -> Result<Self> {
        Ok(Self { fc1: Linear::load(vb, names.0, dim, hidden, bias)?, fc2: Linear::load(vb, names.1, hidden, out, bias)?, act })
    }

    pub fn weight_bytes(&self) -> u64 {
        self.fc1.weight_bytes() + self.fc2.weight_bytes()
    }

    /// # Shapes
    /// `x: [n, dim]` → `[n, out]`
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        self.fc2.forward(activate(self.fc1.forward(x)?, self.act))
    }
}

/// `down(silu(gate(x)) · up(x))`, the gate fused in one kernel on wgpu.
#[derive(Clone, Debug)]
pub struct GatedFeedForward {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl GatedFeedForward {
    /// Load `gate_proj`, `up_proj` (`dim → hidden`) and `down_proj` (`hidden → dim`).
    pub fn load(vb: &mut WeightReader, dim: usize, hidden: usize, bias: bool) -> Result<Self> {
        Ok(Self {
            gate: Linear::load(vb, "gate_proj", dim, hidden, bias)?,
            up: Linear::load(vb, "up_proj", dim, hidden, bias)?,
            down: Linear::load(vb, "down_proj", hidden, dim, bias)?,
        })
    }

    pub fn weight_bytes(&self) -> u64 {
        self.gate.weight_bytes() + self.up.weight_bytes() + self.down.weight_bytes()
    }

    /// # Shapes
    /// `x: [n, dim]` → same
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        let gated = webvlm_kernels::ops::swiglu(self.gate.forward(x.clone())?, self.up.forward(x)?)
            .map_err(|e| ModelError::Kernel { name: "swiglu".into(), message: e.to_string() })?;
        self.down.forward(gated)
    }
}
