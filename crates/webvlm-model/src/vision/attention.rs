//! Bidirectional multi-head self-attention of the vision tower (q/k/v/out with biases).

use burn::tensor::Tensor;
use webvlm_kernels::ops::{Mask, attention_softmax};

use crate::config::VisionConfig;
use crate::error::Result;
use crate::nn::Linear;
use crate::weights::WeightReader;

/// `Idefics3VisionAttention`.
#[derive(Clone, Debug)]
pub struct VisionAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
    head_dim: usize,
}

impl VisionAttention {
    pub fn load(vb: &mut WeightReader, cfg: &VisionConfig) -> Result<Self> {
        let d = cfg.hidden_size;
        Ok(Self {
            q: Linear::load(vb, "q_proj", d, d, true)?,
            k: Linear::load(vb, "k_proj", d, d, true)?,
            v: Linear::load(vb, "v_proj", d, d, true)?,
            out: Linear::load(vb, "out_proj", d, d, true)?,
            heads: cfg.num_attention_heads,
            head_dim: d / cfg.num_attention_heads,
        })
    }

    /// # Shapes
    /// `x: [n, hidden]` → `[n, hidden]`
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        let [n, d] = x.dims();
        let split = |t: Tensor<2>| t.reshape([n, self.heads, self.head_dim]).swap_dims(0, 1);
        let q = split(self.q.forward(x.clone())?);
        let k = split(self.k.forward(x.clone())?);
        let v = split(self.v.forward(x)?);
        let scale = (self.head_dim as f64).powf(-0.5);
        let scores = q.matmul(k.swap_dims(1, 2));
        let ctx = attention_softmax(scores, scale, Mask::None).map_err(kernel_error)?.matmul(v); // [heads, n, head_dim]
        self.out.forward(ctx.swap_dims(0, 1).reshape([n, d]))
    }
}

fn kernel_error(e: webvlm_kernels::KernelError) -> crate::error::ModelError {
    crate::error::ModelError::Kernel { name: "vision attention softmax".into(), message: e.to_string() }
}
