//! Patch embedding (a stride-`patch` convolution, done as one matmul over unfolded patches),
//! CLIP's class token, and learned position embeddings.

use burn::tensor::Tensor;

use crate::config::{VisionConfig, VisionKind};
use crate::error::{ModelError, Result};
use crate::nn::Linear;
use crate::weights::WeightReader;

/// `Idefics3VisionEmbeddings` / `CLIPVisionEmbeddings`.
#[derive(Clone, Debug)]
pub struct VisionEmbeddings {
    /// The conv kernel `[hidden, C, p, p]` flattened to a `[hidden, C·p·p]` projection (with
    /// a bias in SigLIP, without in CLIP).
    patch: Linear,
    /// CLIP's learned class token `[1, hidden]`, prepended to the patches.
    class: Option<Tensor<2>>,
    /// `[tokens, hidden]` (tokens = patches, plus one with a class token)
    position: Tensor<2>,
}

impl VisionEmbeddings {
    pub fn load(vb: &mut WeightReader, cfg: &VisionConfig) -> Result<Self> {
        let p = cfg.patch_size;
        let c = cfg.num_channels;
        let d = cfg.hidden_size;
        let n = (cfg.image_size / p).pow(2);
        let clip = cfg.kind == VisionKind::Clip;
        let class = if clip { Some(vb.take::<1>("class_embedding", [d])?.reshape([1, d])) } else { None };
        let mut pe = vb.pp("patch_embedding");
        let kernel: Tensor<4> = pe.take("weight", [d, c, p, p])?;
        let bias = if clip { None } else { Some(pe.take("bias", [d])?) };
        let patch = Linear::from_weight(kernel.reshape([d, c * p * p]), bias);
        let tokens = n + usize::from(clip);
        let position = vb.pp("position_embedding").take("weight", [tokens, d])?;
        Ok(Self { patch, class, position })
    }

    /// Full (unpadded) tiles: every patch is valid, so position ids are `0..tokens` (what
    /// `torch.bucketize` in Idefics3 yields for an all-ones patch mask, and CLIP's fixed ids).
    /// Several tiles' patches follow one another; with CLIP's class token, one tile only.
    ///
    /// # Shapes
    /// `patches: [tiles · num_patches, C·p·p]` → `[tiles · tokens, hidden]`
    pub fn forward_tiles(&self, patches: Tensor<2>, tiles: usize) -> Result<Tensor<2>> {
        let x = self.patch.forward(patches)?;
        let x = match (&self.class, tiles) {
            (Some(class), 1) => Tensor::cat(vec![class.clone(), x], 0),
            (Some(_), _) => return Err(ModelError::InvalidRequest(format!("a tower with a class token embeds one tile at a time, not {tiles}"))),
            (None, _) => x,
        };
        let position = if tiles == 1 { self.position.clone() } else { self.position.clone().repeat_dim(0, tiles) };
        Ok(x + position)
    }

    /// Whether several tiles can be embedded together (no class token).
    pub fn batches_tiles(&self) -> bool {
        self.class.is_none()
    }
}

/// Unfold one CHW tile into rows of `C·p·p` values ordered (c, ky, kx), matching the conv
/// weight layout, patches in row-major grid order.
///
/// # Shapes
/// `tile: [C, side·p, side·p]` (flat) → `[side², C·p·p]` (flat)
pub fn unfold_patches(tile: &[f32], channels: usize, side_px: usize, patch: usize) -> Vec<f32> {
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
    out
}
