//! `nn.Linear`: y = x·Wᵀ + b, with W stored as the checkpoint has it (`[out, in]`).

use burn::tensor::Tensor;

use crate::error::Result;
use crate::weights::WeightReader;

/// A dense projection.
#[derive(Clone, Debug)]
pub struct Linear {
    /// `[in, out]`: a transposed view of the checkpoint's `[out, in]`, so forward is one matmul.
    weight_t: Tensor<2>,
    /// `[out]`
    bias: Option<Tensor<1>>,
    in_features: usize,
    out_features: usize,
}

impl Linear {
    /// Load `{name}.weight` (`[out, in]`) and, when `bias`, `{name}.bias` (`[out]`).
    pub fn load(vb: &mut WeightReader, name: &str, in_features: usize, out_features: usize, bias: bool) -> Result<Self> {
        let mut vb = vb.pp(name);
        let weight = vb.take("weight", [out_features, in_features])?;
        let bias = if bias { Some(vb.take("bias", [out_features])?) } else { None };
        Ok(Self::from_weight(weight, bias))
    }

    /// From a `[out, in]` matrix, e.g. a tied embedding.
    pub fn from_weight(weight: Tensor<2>, bias: Option<Tensor<1>>) -> Self {
        let [out_features, in_features] = weight.dims();
        Self { weight_t: weight.transpose(), bias, in_features, out_features }
    }

    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// # Shapes
    /// `x: [.., in]` → `[.., out]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dims = x.dims();
        let rows: usize = dims[..D - 1].iter().product();
        let x2: Tensor<2> = x.reshape([rows, self.in_features]);
        let mut y = x2.matmul(self.weight_t.clone());
        if let Some(b) = &self.bias {
            y = y + b.clone().unsqueeze::<2>();
        }
        let mut out_dims = dims;
        out_dims[D - 1] = self.out_features;
        y.reshape(out_dims)
    }
}
