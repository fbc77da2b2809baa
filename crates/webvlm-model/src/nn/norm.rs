//! LayerNorm (vision towers, Phi) and RMSNorm (Llama-style decoders), computed in f32 as
//! transformers does.

use burn::tensor::Tensor;

use crate::error::Result;
use crate::weights::WeightReader;

/// `nn.LayerNorm` with weight and bias.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// `[dim]`
    weight: Tensor<1>,
    /// `[dim]`
    bias: Tensor<1>,
    eps: f64,
}

impl LayerNorm {
    pub fn load(vb: &mut WeightReader, name: &str, dim: usize, eps: f64) -> Result<Self> {
        let mut vb = vb.pp(name);
        Ok(Self { weight: vb.take("weight", [dim])?, bias: vb.take("bias", [dim])?, eps })
    }

    pub fn weight_bytes(&self) -> u64 {
        super::tensor_bytes(&self.weight) + super::tensor_bytes(&self.bias)
    }

    /// # Shapes
    /// `x: [.., dim]` → same
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        let dims = x.dims();
        let cols = dims[D - 1];
        let rows = dims[..D - 1].iter().product::<usize>();
        let y = webvlm_kernels::ops::layer_norm(x.reshape([rows, cols]), &self.weight, &self.bias, self.eps)
            .map_err(|e| crate::error::ModelError::Kernel { name: "layer_norm".into(), source: e })?;
        Ok(y.reshape(dims))
    }
}

/// Llama's RMSNorm: `x / sqrt(mean(x²) + eps) * weight`.
#[derive(Clone, Debug)]
pub struct RmsNorm {
    /// `[dim]`
    weight: Tensor<1>,
    eps: f64,
}

impl RmsNorm {
    pub fn load(vb: &mut WeightReader, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self { weight: vb.pp(name).take("weight", [dim])?, eps })
    }

    pub fn weight_bytes(&self) -> u64 {
        super::tensor_bytes(&self.weight)
    }

    /// # Shapes
    /// `x: [.., dim]` → same
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        let dims = x.dims();
        let cols = dims[D - 1];
        let rows = dims[..D - 1].iter().product::<usize>();
        let y = webvlm_kernels::ops::rms_norm(x.reshape([rows, cols]), &self.weight, self.eps)
            .map_err(|e| crate::error::ModelError::Kernel { name: "rms_norm".into(), source: e })?;
        Ok(y.reshape(dims))
    }
}

/// A decoder's norm: RMSNorm (Llama, Qwen2) or LayerNorm with bias (Phi).
#[derive(Clone, Debug)]
pub enum Norm {
    Rms(RmsNorm),
    Layer(LayerNorm),
}

impl Norm {
    /// `rms` picks RMSNorm (weight only) over LayerNorm (weight and bias).
    pub fn load(vb: &mut WeightReader, name: &str, dim: usize, eps: f64, rms: bool) -> Result<Self> {
        Ok(if rms { Self::Rms(RmsNorm::load(vb, name, dim, eps)?) } else { Self::Layer(LayerNorm::load(vb, name, dim, eps)?) })
    }

    pub fn weight_bytes(&self) -> u64 {
        match self {
            Self::Rms(n) => n.weight_bytes(),
            Self::Layer(n) => n.weight_bytes(),
        }
    }

    /// # Shapes
    /// `x: [.., dim]` → same
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        match self {
            Self::Rms(n) => n.forward(x),
            Self::Layer(n) => n.forward(x),
        }
    }
}
