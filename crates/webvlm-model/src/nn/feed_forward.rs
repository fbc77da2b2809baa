//! Two projections around an activation, `fc2(act(fc1(x)))` (the vision towers' MLPs, Phi's
//! MLP, LLaVA's projector and Qwen-VL's merger are all this one layer under different names),
//! and the gated SwiGLU form `down(silu(gate(x)) · up(x))` (Llama-style decoders and
//! Qwen2.5-VL's vision blocks).

use burn::tensor::Tensor;

use super::Linear;
use crate::config::Activation;
use crate::error::{ModelError, Result};
use crate::weights::WeightReader;

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
        self.forward_residual(x, None)
    }

    /// `residual + fc2(act(fc1(x)))`: the bias and activation inside fc1, the bias and the
    /// addition inside fc2 (quantised weights on wgpu; see [`Linear::forward_epilogue`]).
    ///
    /// # Shapes
    /// `x: [n, dim]`, `residual: [n, out]` → `[n, out]`
    pub fn forward_residual(&self, x: Tensor<2>, residual: Option<Tensor<2>>) -> Result<Tensor<2>> {
        self.fc2.forward_epilogue(self.fc1.forward_epilogue(x, Some(self.act), None)?, None, residual)
    }
}

/// `down(silu(gate(x)) · up(x))`. gate and up are one weight with their rows stacked when they
/// can be joined; then the down projection reads the `[gate | up]` row itself (SwiGLU in its
/// prologue) and a token costs two matrix products and no separate gate kernel.
#[derive(Clone, Debug)]
pub struct GatedFeedForward {
    gate_up: GateUp,
    down: Linear,
}

#[derive(Clone, Debug)]
enum GateUp {
    /// `[gate | up]` rows.
    Joined(Linear),
    Apart { gate: Linear, up: Linear },
}

impl GatedFeedForward {
    /// Load `gate_proj`, `up_proj` (`dim → hidden`) and `down_proj` (`hidden → dim`).
    pub fn load(vb: &mut WeightReader, dim: usize, hidden: usize, bias: bool) -> Result<Self> {
        let gate = Linear::load(vb, "gate_proj", dim, hidden, bias)?;
        let up = Linear::load(vb, "up_proj", dim, hidden, bias)?;
        let gate_up = Linear::concat_rows(&[&gate, &up]).map_or(GateUp::Apart { gate, up }, GateUp::Joined);
        Ok(Self { gate_up, down: Linear::load(vb, "down_proj", hidden, dim, bias)? })
    }

    pub fn weight_bytes(&self) -> u64 {
        let gate_up = match &self.gate_up {
            GateUp::Joined(l) => l.weight_bytes(),
            GateUp::Apart { gate, up } => gate.weight_bytes() + up.weight_bytes(),
        };
        gate_up + self.down.weight_bytes()
    }

    /// # Shapes
    /// `x: [n, dim]` → same
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        self.forward_residual(x, None)
    }

    /// `residual + down(silu(gate(x)) · up(x))`, the addition inside the down projection.
    ///
    /// # Shapes
    /// `x, residual: [n, dim]` → same
    pub fn forward_residual(&self, x: Tensor<2>, residual: Option<Tensor<2>>) -> Result<Tensor<2>> {
        match &self.gate_up {
            GateUp::Joined(gate_up) => self.down.forward_fused(gate_up.forward(x)?, true, residual),
            GateUp::Apart { gate, up } => {
                let gated = webvlm_kernels::ops::swiglu(gate.forward(x.clone())?, up.forward(x)?)
                    .map_err(|e| ModelError::Kernel { name: "swiglu".into(), source: e })?;
                self.down.forward_fused(gated, false, residual)
            }
        }
    }
}
