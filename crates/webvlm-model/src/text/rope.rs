//! Rotary position embeddings, "default" type, `rotate_half` convention (first half / second
//! half of each head), as Llama in transformers.

use burn::tensor::{Device, Tensor, TensorData};

/// Precomputed cos/sin tables for every position of the context.
#[derive(Clone, Debug)]
pub struct Rope {
    /// `[max_positions, head_dim]`
    cos: Tensor<2>,
    /// `[max_positions, head_dim]`
    sin: Tensor<2>,
    half: usize,
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
            half,
        }
    }

    /// Rotate `x` whose rows sit at positions `start..start+n`.
    ///
    /// # Shapes
    /// `x: [heads, n, head_dim]` → same
    pub fn apply(&self, x: Tensor<3>, start: usize) -> Tensor<3> {
        let [_, n, d] = x.dims();
        let cos = self.cos.clone().slice([start..start + n, 0..d]).unsqueeze::<3>();
        let sin = self.sin.clone().slice([start..start + n, 0..d]).unsqueeze::<3>();
        let x1 = x.clone().slice_dim(2, 0..self.half);
        let x2 = x.clone().slice_dim(2, self.half..d);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 2);
        x * cos + rotated * sin
    }
}
