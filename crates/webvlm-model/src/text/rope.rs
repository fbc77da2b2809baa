//! Rotary position embeddings, "default" type, `rotate_half` convention (first half / second
//! half of each head), as Llama in transformers.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{ModelError, Result};

/// Precomputed cos/sin tables for every position of the context.
#[derive(Clone, Debug)]
pub struct Rope {
    /// `[max_positions, head_dim]`
    cos: Tensor<2>,
    /// `[max_positions, head_dim]`
    sin: Tensor<2>,
}

impl Rope {
    /// Frequencies `theta^(-2i/d)` in f32 like transformers; angles and their cos/sin in f64
    /// (then rounded), which is at least as exact as torch's f32 path.
    pub fn new(head_dim: usize, theta: f64, max_positions: usize, device: &Device) -> Self {
        let half = head_dim / 2;
        let inv_freq: Vec<f32> =
            (0..half).map(|i| (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32).collect();
        let mut cos = Vec::with_capacity(max_positions * head_dim);
        let mut sin = Vec::with_capacity(max_positions * head_dim);
        for pos in 0..max_positions {
            for j in 0..head_dim {
                let angle = (pos as f32 * inv_freq[j % half]) as f64;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        Self {
            cos: Tensor::from_data(TensorData::new(cos, [max_positions, head_dim]), device),
            sin: Tensor::from_data(TensorData::new(sin, [max_positions, head_dim]), device),
        }
    }

    /// Rotate a projection's output whose rows sit at positions `start..start+n`, split
    /// into heads (one fused kernel on wgpu).
    ///
    /// # Shapes
    /// `x: [n, heads·head_dim]` → `[heads, n, head_dim]`
    pub fn apply(&self, x: Tensor<2>, heads: usize, start: usize) -> Result<Tensor<3>> {
        webvlm_kernels::ops::rope(x, heads, &self.cos, &self.sin, start)
            .map_err(|e| ModelError::Kernel { name: "rope".into(), message: e.to_string() })
    }
}
