//! `nn.Linear`: y = x·Wᵀ + b, with W stored as the checkpoint has it (`[out, in]`).

use burn::tensor::Tensor;
use webvlm_kernels::{DeviceQuantMatrix, quant_matmul};

use crate::error::{ModelError, Result};
use crate::weights::{LinearWeight, WeightReader};

/// The weight, by storage: quantisation is a dtype this layer dispatches on, not a second model.
#[derive(Clone, Debug)]
enum Weight {
    /// `[in, out]`: a transposed view of the checkpoint's `[out, in]`, so forward is one matmul.
    Dense(Tensor<2>),
    /// Block-quantised `[out, in]`, multiplied by webvlm's WGSL kernels.
    Quant(DeviceQuantMatrix),
}

/// A projection.
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Weight,
    /// `[out]`
    bias: Option<Tensor<1>>,
    in_features: usize,
    out_features: usize,
}

impl Linear {
    /// Load `{name}.weight` (`[out, in]`) and, when `bias`, `{name}.bias` (`[out]`).
    pub fn load(vb: &mut WeightReader, name: &str, in_features: usize, out_features: usize, bias: bool) -> Result<Self> {
        let mut vb = vb.pp(name);
        let weight = vb.take_linear("weight", out_features, in_features)?;
        let bias = if bias { Some(vb.take("bias", [out_features])?) } else { None };
        Ok(match weight {
            LinearWeight::Dense(w) => Self::from_weight(w, bias),
            LinearWeight::Quant(q) => Self { weight: Weight::Quant(q), bias, in_features, out_features },
        })
    }

    /// From a `[out, in]` matrix, e.g. a tied embedding.
    pub fn from_weight(weight: Tensor<2>, bias: Option<Tensor<1>>) -> Self {
        let [out_features, in_features] = weight.dims();
        Self { weight: Weight::Dense(weight.transpose()), bias, in_features, out_features }
    }

    /// Bytes one forward reads from the weight and bias (the decode roofline's unit).
    pub fn weight_bytes(&self) -> u64 {
        let w = match &self.weight {
            Weight::Dense(w) => super::tensor_bytes(w),
            Weight::Quant(q) => q.byte_size(),
        };
        w + self.bias.as_ref().map_or(0, super::tensor_bytes)
    }

    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// # Shapes
    /// `x: [.., in]` → `[.., out]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        let dims = x.dims();
        let rows: usize = dims[..D - 1].iter().product();
        let x2: Tensor<2> = x.reshape([rows, self.in_features]);
        let mut y = match &self.weight {
            Weight::Dense(w_t) => x2.matmul(w_t.clone()),
            Weight::Quant(q) => quant_matmul(x2, q).map_err(|e| ModelError::Kernel {
                name: format!("{}x{} {} linear", self.out_features, self.in_features, q.scheme().name()),
                message: e.to_string(),
            })?,
        };
        if let Some(b) = &self.bias {
            y = y + b.clone().unsqueeze::<2>();
        }
        let mut out_dims = dims;
        out_dims[D - 1] = self.out_features;
        Ok(y.reshape(out_dims))
    }
}
