//! Bidirectional multi-head self-attention of the vision towers: separate q/k/v/out projections
//! with biases (SigLIP, CLIP), or Qwen-VL's fused `qkv` and `proj` with a 2-D RoPE; optionally
//! restricted to segments of the sequence (Qwen2.5-VL's windows).

use std::ops::Range;

use burn::tensor::Tensor;
use webvlm_kernels::ops::{KeyRange, flash_attention, flash_attention_joined};

use crate::config::VisionConfig;
use crate::error::Result;
use crate::nn::Linear;
use crate::text::RopeAt;
use crate::weights::WeightReader;

#[derive(Clone, Debug)]
enum Projections {
    Separate { q: Linear, k: Linear, v: Linear },
    Fused(Linear),
}

/// `Idefics3VisionAttention` / `CLIPAttention` / Qwen-VL's `VisionAttention`.
#[derive(Clone, Debug)]
pub struct VisionAttention {
    qkv: Projections,
    out: Linear,
    heads: usize,
    head_dim: usize,
}

impl VisionAttention {
    /// `q_proj`, `k_proj`, `v_proj`, `out_proj`, all with biases; q, k and v joined into one
    /// weight where they can be (one matrix product and no slices).
    pub fn load(vb: &mut WeightReader, cfg: &VisionConfig) -> Result<Self> {
        let d = cfg.hidden_size;
        let q = Linear::load(vb, "q_proj", d, d, true)?;
        let k = Linear::load(vb, "k_proj", d, d, true)?;
        let v = Linear::load(vb, "v_proj", d, d, true)?;
        Ok(Self {
            qkv: Linear::concat_rows(&[&q, &k, &v]).map_or(Projections::Separate { q, k, v }, Projections::Fused),
            out: Linear::load(vb, "out_proj", d, d, true)?,
            heads: cfg.num_attention_heads,
            head_dim: d / cfg.num_attention_heads,
        })
    }

    /// Qwen-VL: one `qkv` projection (`d → 3d`, q then k then v) and `proj`, with biases.
    pub fn load_fused(vb: &mut WeightReader, cfg: &VisionConfig) -> Result<Self> {
        let d = cfg.hidden_size;
        Ok(Self {
            qkv: Projections::Fused(Linear::load(vb, "qkv", d, 3 * d, true)?),
            out: Linear::load(vb, "proj", d, d, true)?,
            heads: cfg.num_attention_heads,
            head_dim: d / cfg.num_attention_heads,
        })
    }

    /// Every token attends to the tokens of its segment (`segments` tile `0..n`; one segment
    /// for the whole sequence in SigLIP and CLIP), after RoPE on q and k when given; `residual`
    /// is added inside the output projection.
    ///
    /// # Shapes
    /// `x, residual: [n, hidden]` → `[n, hidden]`
    pub fn forward(&self, x: Tensor<2>, rope: Option<&RopeAt>, segments: &[Range<usize>], residual: Option<Tensor<2>>) -> Result<Tensor<2>> {
        let [n, d] = x.dims();
        let scale = (self.head_dim as f64).powf(-0.5);
        let keys = if segments.len() <= 1 { KeyRange::All } else { KeyRange::Segments(segments) };
        let split = |t: Tensor<2>| -> Tensor<3> { t.reshape([n, self.heads, self.head_dim]).swap_dims(0, 1) };
        // [n, hidden], heads side by side.
        let ctx = match (&self.qkv, rope) {
            // The kernel reads q, k and v straight from the joined projection's rows.
            (Projections::Fused(qkv), None) => flash_attention_joined(qkv.forward_epilogue(x, None, None)?, self.heads, self.heads, keys, scale),
            (qkv, rope) => {
                let (q, k, v) = match qkv {
                    Projections::Separate { q, k, v } => (q.forward(x.clone())?, k.forward(x.clone())?, v.forward(x)?),
                    Projections::Fused(qkv) => {
                        let y = qkv.forward_epilogue(x, None, None)?;
                        (y.clone().slice_dim(1, 0..d), y.clone().slice_dim(1, d..2 * d), y.slice_dim(1, 2 * d..3 * d))
                    }
                };
                let (q, k) = match rope {
                    Some(rope) => (rope.apply(q, self.heads)?, rope.apply(k, self.heads)?),
                    None => (split(q), split(k)),
                };
                flash_attention(q, k, split(v), n, keys, scale)
            }
        }
        .map_err(kernel_error)?;
        self.out.forward_epilogue(ctx, None, residual)
    }
}

fn kernel_error(e: webvlm_kernels::KernelError) -> crate::error::ModelError {
    crate::error::ModelError::Kernel { name: "vision attention".into(), source: e }
}
