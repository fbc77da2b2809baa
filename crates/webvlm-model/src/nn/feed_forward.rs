//! Two projections around an activation: `fc2(act(fc1(x)))`. The vision towers' MLPs, Phi's
//! MLP and LLaVA's projector are all this one layer under different names.

use burn::tensor::{Tensor, activation};

use super::Linear;
use crate::config::Activation;
use crate::error::Result;
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
