//! Rotary position embeddings, `rotate_half` convention (first half / second half of the rotated
//! width), as Llama in transformers; with partial rotary (Phi: only the first `rot` values of a
//! head turn) and Qwen-VL's multimodal RoPE (M-RoPE: the frequencies are split in three sections
//! that follow a token's temporal, height and width positions).

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{ModelError, Result};

/// Where the tokens of one forward call sit.
#[derive(Debug, Clone, Copy)]
pub enum Positions<'a> {
    /// Consecutive positions from this one (text; M-RoPE with t = h = w).
    From(usize),
    /// One (t, h, w) triple per token (M-RoPE over an image).
    Mrope(&'a [[u32; 3]]),
}

/// Precomputed cos/sin tables for every position of the context.
#[derive(Clone, Debug)]
pub struct Rope {
    /// `[max_positions, rot]`
    cos: Tensor<2>,
    /// `[max_positions, rot]`
    sin: Tensor<2>,
    /// `[rot/2]`
    inv_freq: Vec<f32>,
    /// M-RoPE: how many of the `rot/2` frequencies follow t, h and w.
    mrope_section: Option<[usize; 3]>,
}

/// cos/sin rows for the tokens of one forward call.
#[derive(Clone, Debug)]
pub struct RopeAt {
    cos: Tensor<2>,
    sin: Tensor<2>,
    /// First row of the tables the call's first token uses.
    start: usize,
}

/// Frequencies `theta^(-2i/dim)`, `i < dim/2`, in f32 like transformers.
pub fn inverse_frequencies(dim: usize, theta: f64) -> Vec<f32> {
    (0..dim / 2).map(|i| (1.0 / theta.powf((2 * i) as f64 / dim as f64)) as f32).collect()
}

/// cos/sin tables `[rows, width]` of `angle(row, i)`, `i < width/2`, repeated for both halves.
/// The angle is an f32 product like transformers'; its cos/sin are taken in f64, then rounded,
/// which is at least as exact as torch's f32 path.
pub fn rope_tables(rows: usize, width: usize, angle: impl Fn(usize, usize) -> f32, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let half = width / 2;
    let mut cos = Vec::with_capacity(rows * width);
    let mut sin = Vec::with_capacity(rows * width);
    for r in 0..rows {
        for j in 0..width {
            let a = angle(r, j % half) as f64;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    (Tensor::from_data(TensorData::new(cos, [rows, width]), device), Tensor::from_data(TensorData::new(sin, [rows, width]), device))
}

impl Rope {
    /// Tables for `max_positions` consecutive positions, rotating the first `dim` values of
    /// each head.
    pub fn new(dim: usize, theta: f64, max_positions: usize, mrope_section: Option<[usize; 3]>, device: &Device) -> Self {
        let inv_freq = inverse_frequencies(dim, theta);
        let (cos, sin) = rope_tables(max_positions, dim, |p, i| p as f32 * inv_freq[i], device);
        Self { cos, sin, inv_freq, mrope_section }
    }

    /// The rows for `n` tokens at `positions`.
    pub fn at(&self, positions: Positions<'_>, n: usize) -> Result<RopeAt> {
        match positions {
            Positions::From(start) => Ok(RopeAt { cos: self.cos.clone(), sin: self.sin.clone(), start }),
            Positions::Mrope(pos) => {
                let Some(section) = self.mrope_section else {
                    return Err(ModelError::InvalidRequest("per-token (t, h, w) positions given to a model without M-RoPE".into()));
                };
                if pos.len() != n {
                    return Err(ModelError::InvalidRequest(format!("{} M-RoPE positions for {n} tokens", pos.len())));
                }
                // Frequency i follows stream 0 (t) below section[0], 1 (h) below section[0] +
                // section[1], else 2 (w): transformers' `split(mrope_section)` with `i % 3`.
                let stream = |i: usize| if i < section[0] { 0 } else if i < section[0] + section[1] { 1 } else { 2 };
                let width = 2 * self.inv_freq.len();
                let (cos, sin) = rope_tables(n, width, |r, i| pos[r][stream(i)] as f32 * self.inv_freq[i], &self.cos.device());
                Ok(RopeAt { cos, sin, start: 0 })
            }
        }
    }
}

impl RopeAt {
    /// Per-token tables made elsewhere (the vision tower's 2-D RoPE).
    pub fn from_tables(cos: Tensor<2>, sin: Tensor<2>) -> Self {
        Self { cos, sin, start: 0 }
    }

    /// The cos/sin tables (`[rows, rot]`) and the row of the call's first token.
    pub fn tables(&self) -> (&Tensor<2>, &Tensor<2>, usize) {
        (&self.cos, &self.sin, self.start)
    }

    /// Rotate a projection's output split into heads (one fused kernel on wgpu).
    ///
    /// # Shapes
    /// `x: [n, heads·head_dim]` → `[heads, n, head_dim]`
    pub fn apply(&self, x: Tensor<2>, heads: usize) -> Result<Tensor<3>> {
        webvlm_kernels::ops::rope(x, heads, &self.cos, &self.sin, self.start)
            .map_err(|e| ModelError::Kernel { name: "rope".into(), source: e })
    }
}
