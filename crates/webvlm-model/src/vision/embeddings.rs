//! Patch embedding (a stride-`patch` convolution, done as one matmul over unfolded patches) plus
//! learned position embeddings.

use burn::tensor::{Device, Tensor, TensorData};

use crate::config::VisionConfig;
use crate::error::Result;
use crate::nn::Linear;
use crate::weights::WeightReader;

/// `Idefics3VisionEmbeddings`.
#[derive(Clone, Debug)]
pub struct VisionEmbeddings {
    /// The conv kernel `[hidden, C, p, p]` flattened to a `[hidden, C·p·p]` projection.
    patch: Linear,
    /// `[num_patches, hidden]`
    position: Tensor<2>,
}

impl VisionEmbeddings {
    pub fn load(vb: &mut WeightReader, cfg: &VisionConfig) -> Result<Self> {
        let p = cfg.patch_size;
        let c = cfg.num_channels;
        let d = cfg.hidden_size;
        let n = (cfg.image_size / p).pow(2);
        let mut pe = vb.pp("patch_embedding");
        let kernel: Tensor<4> = pe.take("weight", [d, c, p, p])?;
        let bias = pe.take("bias", [d])?;
        let patch = Linear::from_weight(kernel.reshape([d, c * p * p]), Some(bias));
        let position = vb.pp("position_embedding").take("weight", [n, d])?;
        Ok(Self { patch, position })
    }

    /// A full (unpadded) tile: every patch is valid, so position ids are `0..num_patches`
    /// (what `torch.bucketize` in transformers yields for an all-ones patch mask).
    ///
    /// # Shapes
    /// `patches: [num_patches, C·p·p]` → `[num_patches, hidden]`
    pub fn forward(&self, patches: Tensor<2>) -> Result<Tensor<2>> {
        Ok(self.patch.forward(patches)? + self.position.clone())
    }
}

/// Unfold one CHW tile into rows of `C·p·p` values ordered (c, ky, kx), matching the conv
/// weight layout, patches in row-major grid order.
///
/// # Shapes
/// `tile: [C, side·p, side·p]` (flat) → `[side², C·p·p]` on `device`
pub fn extract_patches(tile: &[f32], channels: usize, side_px: usize, patch: usize, device: &Device) -> Tensor<2> {
    let side = side_px / patch;
    let row = channels * patch * patch;
    let mut out = vec![0f32; side * side * row];
    for py in 0..side {
        for px in 0..side {
            let base = (py * side + px) * row;
            for c in 0..channels {
                for ky in 0..patch {
                    let src = c * side_px * side_px + (py * patch + ky) * side_px + px * patch;
                    let dst = base + c * patch * patch + ky * patch;
                    out[dst..dst + patch].copy_from_slice(&tile[src..src + patch]);
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(out, [side * side, row]), device)
}
