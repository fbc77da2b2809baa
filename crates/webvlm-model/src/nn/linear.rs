//! `nn.Linear`: y = x·Wᵀ + b, with W stored as the checkpoint has it (`[out, in]`).

use burn::tensor::Tensor;
use webvlm_kernels::{Act, DeviceQuantMatrix, quant_matmul, quant_matmul_epilogue, quant_matmul_fused};

use crate::config::Activation;

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

    /// One layer computing `parts` side by side: `[x·W₀ᵀ | x·W₁ᵀ | …]` from one weight with
    /// their rows stacked (and their biases, zeros for a part without one). q, k and v, or gate
    /// and up, then cost one matrix product per token. `None` when the weights cannot be
    /// joined (see [`DeviceQuantMatrix::concat_rows`]; dense and quantised do not mix).
    pub fn concat_rows(parts: &[&Linear]) -> Option<Linear> {
        let first = parts.first()?;
        let in_features = first.in_features;
        if parts.iter().any(|p| p.in_features != in_features) {
            return None;
        }
        let out_features = parts.iter().map(|p| p.out_features).sum();
        let weight = match &first.weight {
            Weight::Dense(_) => {
                let ws = parts.iter().map(|p| match &p.weight { Weight::Dense(w) => Some(w.clone()), Weight::Quant(_) => None }).collect::<Option<Vec<_>>>()?;
                Weight::Dense(Tensor::cat(ws, 1))
            }
            Weight::Quant(_) => {
                let ms = parts.iter().map(|p| match &p.weight { Weight::Quant(m) => Some(m), Weight::Dense(_) => None }).collect::<Option<Vec<_>>>()?;
                Weight::Quant(DeviceQuantMatrix::concat_rows(&ms)?)
            }
        };
        let bias = if parts.iter().any(|p| p.bias.is_some()) {
            let device = match &first.weight {
                Weight::Dense(w) => w.device(),
                Weight::Quant(_) => parts.iter().find_map(|p| p.bias.as_ref())?.device(),
            };
            let bs = parts.iter().map(|p| p.bias.clone().unwrap_or_else(|| Tensor::zeros([p.out_features], &device))).collect();
            Some(Tensor::cat(bs, 0))
        } else {
            None
        };
        Some(Linear { weight, bias, in_features, out_features })
    }

    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// A kernel's refusal, named after this layer's shape and scheme.
    fn kernel_error(&self, q: &DeviceQuantMatrix, e: webvlm_kernels::KernelError) -> ModelError {
        ModelError::Kernel { name: format!("{}x{} {} linear", self.out_features, self.in_features, q.scheme().name()), source: e }
    }

    /// `y = x·Wᵀ + b + residual`, with `swiglu` reading `x` as a `[gate | up]` row pair and
    /// multiplying `silu(gate)·up` (a joined gate/up product's output). For a quantised weight,
    /// one dispatch for one token (the prologue and the additions inside the matvec); for several
    /// rows the gate is its own kernel and the additions are the tiled matmul's epilogue. Dense
    /// weights: the same operations one after another.
    ///
    /// # Shapes
    /// `x: [n, in]` (`[n, 2·in]` with `swiglu`), `residual: [n, out]` → `[n, out]`
    pub fn forward_fused(&self, x: Tensor<2>, swiglu: bool, residual: Option<Tensor<2>>) -> Result<Tensor<2>> {
        let [n, _] = x.dims();
        if let (Weight::Quant(q), 1) = (&self.weight, n) {
            let mut addends: Vec<Tensor<1>> = self.bias.iter().cloned().collect();
            addends.extend(residual.map(|r| r.reshape([self.out_features])));
            return quant_matmul_fused(x, q, swiglu, &addends).map_err(|e| self.kernel_error(q, e));
        }
        let x = if swiglu {
            webvlm_kernels::ops::swiglu_joined(x, self.in_features)
                .map_err(|e| ModelError::Kernel { name: "swiglu".into(), source: e })?
        } else {
            x
        };
        if let Weight::Quant(q) = &self.weight {
            // Several rows (prefill): bias and residual in the tiled matmul's epilogue.
            return quant_matmul_epilogue(x, q, self.bias.as_ref(), Act::None, residual).map_err(|e| self.kernel_error(q, e));
        }
        let y = self.forward(x)?;
        Ok(match residual {
            Some(r) => y + r,
            None => y,
        })
    }

    /// `act(x·Wᵀ + b) + residual`: one dispatch for a quantised weight on wgpu (the tiled
    /// matmul's epilogue for several rows; for one row the matvec's, with `act` after it),
    /// else the same operations one after another.
    ///
    /// # Shapes
    /// `x: [n, in]`, `residual: [n, out]` → `[n, out]`
    pub fn forward_epilogue(&self, x: Tensor<2>, act: Option<Activation>, residual: Option<Tensor<2>>) -> Result<Tensor<2>> {
        let [n, _] = x.dims();
        match (&self.weight, act) {
            (Weight::Quant(q), _) if n > 1 => quant_matmul_epilogue(x, q, self.bias.as_ref(), kernel_act(act), residual).map_err(|e| self.kernel_error(q, e)),
            (_, None) => self.forward_fused(x, false, residual),
            (_, Some(act)) => {
                let y = webvlm_kernels::ops::activate(self.forward_fused(x, false, None)?, kernel_act(Some(act)));
                Ok(match residual {
                    Some(r) => y + r,
                    None => y,
                })
            }
        }
    }

    /// # Shapes
    /// `x: [.., in]` → `[.., out]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        let dims = x.dims();
        let rows: usize = dims[..D - 1].iter().product();
        let x2: Tensor<2> = x.reshape([rows, self.in_features]);
        let mut y = match &self.weight {
            Weight::Dense(w_t) => x2.matmul(w_t.clone()),
            Weight::Quant(q) => quant_matmul(x2, q).map_err(|e| self.kernel_error(q, e))?,
        };
        if let Some(b) = &self.bias {
            y = y + b.clone().unsqueeze::<2>();
        }
        let mut out_dims = dims;
        out_dims[D - 1] = self.out_features;
        Ok(y.reshape(out_dims))
    }
}

/// The kernels' name for an activation.
fn kernel_act(act: Option<Activation>) -> Act {
    match act {
        None => Act::None,
        Some(Activation::Gelu) => Act::GeluErf,
        Some(Activation::GeluTanh) => Act::GeluTanh,
        Some(Activation::QuickGelu) => Act::QuickGelu,
        Some(Activation::Silu) => Act::Silu,
    }
}
