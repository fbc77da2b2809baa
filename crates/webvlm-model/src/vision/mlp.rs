//! The vision MLP: fc1 → GELU (tanh approximation in SigLIP) → fc2.

use burn::tensor::{Tensor, activation};

use crate::config::{VisionActivation, VisionConfig};
use crate::error::Result;
use crate::nn::Linear;
use crate::weights::WeightReader;

/// `Idefics3VisionMLP`.
#[derive(Clone, Debug)]
pub struct VisionMlp {
    fc1: Linear,
    fc2: Linear,
    act: VisionActivation,
}

impl VisionMlp {
    pub fn load(vb: &mut WeightReader, cfg: &VisionConfig, act: VisionActivation) -> Result<Self> {
        Ok(Self {
            fc1: Linear::load(vb, "fc1", cfg.hidden_size, cfg.intermediate_size, true)?,
            fc2: Linear::load(vb, "fc2", cfg.intermediate_size, cfg.hidden_size, true)?,
            act,
        })
    }

    /// # Shapes
    /// `x: [n, hidden]` → `[n, hidden]`
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        let h = self.fc1.forward(x)?;
        let h = match self.act {
            VisionActivation::GeluTanh => activation::gelu_approximate(h),
            VisionActivation::Gelu => activation::gelu(h),
        };
        self.fc2.forward(h)
    }
}
