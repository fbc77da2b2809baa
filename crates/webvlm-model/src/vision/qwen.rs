//! Qwen2-VL's and Qwen2.5-VL's vision transformer: patches of any image size (dynamic
//! resolution), a 2-D rotary embedding over each patch's (row, column), and a merger that folds
//! each `merge × merge` block of patches into one decoder token. Qwen2.5-VL uses RMSNorm and
//! SwiGLU in its blocks and, outside `fullatt_block_indexes`, attends within windows.
//!
//! Follows `Qwen2VisionTransformerPretrainedModel` and `Qwen2_5_VisionTransformerPretrainedModel`
//! in transformers 5.23. Patch rows arrive block-major (`merge × merge` blocks in row-major
//! order, row-major inside a block), as the image processor lays them out.

use std::ops::Range;

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::attention::VisionAttention;
use crate::config::{Activation, ModelConfig, VisionKind};
use crate::error::{ModelError, Result};
use crate::nn::{FeedForward, GatedFeedForward, Linear, Norm};
use crate::text::mlp::Mlp;
use crate::text::{RopeAt, inverse_frequencies, rope_tables};
use crate::weights::WeightReader;

/// One `Qwen2VLVisionBlock` / `Qwen2_5_VLVisionBlock`.
#[derive(Clone, Debug)]
struct Block {
    norm1: Norm,
    attn: VisionAttention,
    norm2: Norm,
    mlp: Mlp,
    /// Attends over the whole image (Qwen2-VL always; Qwen2.5-VL in `fullatt_block_indexes`).
    full: bool,
}

/// The tower and its merger.
#[derive(Clone, Debug)]
pub struct QwenVision {
    /// The Conv3d kernel `[E, C, T, p, p]` as a bias-free `[E, C·T·p·p]` projection.
    patch: Linear,
    blocks: Vec<Block>,
    merger_norm: Norm,
    merger: FeedForward,
    /// Frequencies of the 2-D RoPE (`head_dim/4` of them, shared by rows and columns).
    inv_freq: Vec<f32>,
    head_dim: usize,
    merge: usize,
    /// Qwen2.5-VL: side of a window in merged units.
    window: Option<usize>,
    device: Device,
}

/// A preprocessed image's patches, as [`QwenVision::forward`] takes them.
pub struct Patches<'a> {
    /// `[grid_h · grid_w, C·T·p·p]`, block-major.
    pub rows: &'a [f32],
    pub grid_h: usize,
    pub grid_w: usize,
}

/// The tower's two outputs for one image.
pub struct QwenFeatures {
    /// `[patches, vision_hidden]` after the last block, in the image's patch order.
    pub blocks_output: Tensor<2>,
    /// `[patches / merge², out_hidden]`: the decoder's image tokens.
    pub merged: Tensor<2>,
}

impl QwenVision {
    /// `vb` is rooted at the tower (`model.visual`).
    pub fn load(vb: &mut WeightReader, cfg: &ModelConfig) -> Result<Self> {
        let v = &cfg.vision_config;
        let (d, c, t, p, m) = (v.hidden_size, v.num_channels, v.temporal_patch_size, v.patch_size, v.spatial_merge_size);
        let qwen25 = v.kind == VisionKind::Qwen25Vl;
        let kernel: Tensor<5> = vb.pp("patch_embed.proj").take("weight", [d, c, t, p, p])?;
        let patch = Linear::from_weight(kernel.reshape([d, c * t * p * p]), None);
        let act = cfg.vision_activation()?;
        let mut blocks = Vec::with_capacity(v.num_hidden_layers);
        for i in 0..v.num_hidden_layers {
            let mut b = vb.pp(format!("blocks.{i}"));
            let mlp = if qwen25 {
                if act != Activation::Silu {
                    return Err(ModelError::config("config.json", format!("Qwen2.5-VL vision_config.hidden_act `{}`: only silu", v.hidden_act)));
                }
                Mlp::Gated(GatedFeedForward::load(&mut b.pp("mlp"), d, v.intermediate_size, true)?)
            } else {
                Mlp::Plain(FeedForward::load(&mut b.pp("mlp"), ("fc1", "fc2"), (d, v.intermediate_size, d), true, act)?)
            };
            blocks.push(Block {
                norm1: Norm::load(&mut b, "norm1", d, 1e-6, qwen25)?,
                attn: VisionAttention::load_fused(&mut b.pp("attn"), v)?,
                norm2: Norm::load(&mut b, "norm2", d, 1e-6, qwen25)?,
                mlp,
                full: !qwen25 || v.fullatt_block_indexes.contains(&i),
            });
        }
        let mut merger = vb.pp("merger");
        let merger_norm = Norm::load(&mut merger, "ln_q", d, 1e-6, qwen25)?;
        let wide = d * m * m;
        let merger = FeedForward::load(&mut merger.pp("mlp"), ("0", "2"), (wide, wide, v.out_hidden_size), true, Activation::Gelu)?;
        let head_dim = d / v.num_attention_heads;
        let window = qwen25.then(|| v.window_size / m / p);
        let inv_freq = inverse_frequencies(head_dim / 2, 10000.0);
        Ok(Self { patch, blocks, merger_norm, merger, inv_freq, head_dim, merge: m, window, device: vb.device() })
    }

    /// Encode one image.
    pub fn forward(&self, patches: &Patches<'_>) -> Result<QwenFeatures> {
        let (gh, gw, m) = (patches.grid_h, patches.grid_w, self.merge);
        let n = gh * gw;
        if gh % m != 0 || gw % m != 0 || n == 0 || patches.rows.len() % n != 0 {
            return Err(ModelError::InvalidRequest(format!("a {gh}×{gw} patch grid does not fold into {m}×{m} blocks")));
        }
        let device = self.device.clone();
        let width = patches.rows.len() / n;
        let x = self.patch.forward(Tensor::<2>::from_data(TensorData::new(patches.rows.to_vec(), [n, width]), &device))?;

        // (row, column) of each patch, block-major like the rows.
        let (bh, bw) = (gh / m, gw / m);
        let mut pos = Vec::with_capacity(n);
        for by in 0..bh {
            for bx in 0..bw {
                for my in 0..m {
                    for mx in 0..m {
                        pos.push((by * m + my, bx * m + mx));
                    }
                }
            }
        }
        // Qwen2.5-VL: merged units regrouped window by window; everything runs in that order and
        // is put back before the merger (which treats units independently).
        let (order, windows) = match self.window {
            Some(w) => window_order(bh, bw, w),
            None => ((0..bh * bw).collect(), vec![bh * bw]),
        };
        let unit = m * m;
        let rows: Vec<usize> = order.iter().flat_map(|&u| u * unit..(u + 1) * unit).collect();
        let reordered = self.window.is_some();
        let mut x = if reordered { select_rows(x, &rows)? } else { x };
        let quarter = self.head_dim / 4;
        let (cos, sin) = rope_tables(n, self.head_dim, |r, i| {
            let (y, xx) = pos[rows[r]];
            if i < quarter { y as f32 * self.inv_freq[i] } else { xx as f32 * self.inv_freq[i - quarter] }
        }, &device);
        let rope = RopeAt::from_tables(cos, sin);
        let mut window_segments: Vec<Range<usize>> = Vec::with_capacity(windows.len());
        let mut start = 0;
        for count in windows {
            window_segments.push(start..start + count * unit);
            start += count * unit;
        }
        let whole = [0..n];
        for block in &self.blocks {
            let segments: &[Range<usize>] = if block.full { &whole } else { &window_segments };
            x = block.attn.forward(block.norm1.forward(x.clone())?, Some(&rope), segments, Some(x))?;
            x = block.mlp.forward_residual(block.norm2.forward(x.clone())?, x)?;
        }
        if reordered {
            let mut inverse = vec![0; n];
            for (i, &r) in rows.iter().enumerate() {
                inverse[r] = i;
            }
            x = select_rows(x, &inverse)?;
        }
        let [_, d] = x.dims();
        let merged = self.merger.forward(self.merger_norm.forward(x.clone())?.reshape([n / unit, d * unit]))?;
        Ok(QwenFeatures { blocks_output: x, merged })
    }

}

/// Rows `idx` of `x`, in that order.
fn select_rows(x: Tensor<2>, idx: &[usize]) -> Result<Tensor<2>> {
    let ids: Vec<i32> = idx.iter().map(|&i| i as i32).collect();
    let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [idx.len()]), &x.device());
    Ok(x.select(0, ids))
}

/// Qwen2.5-VL's `get_window_index` for one image of `bh × bw` merged units and windows of
/// `w × w` units: the units window by window (windows row-major, units row-major inside, edge
/// windows cut short), and how many units each non-empty window holds.
pub fn window_order(bh: usize, bw: usize, w: usize) -> (Vec<usize>, Vec<usize>) {
    let (wy, wx) = (bh.div_ceil(w), bw.div_ceil(w));
    let mut order = Vec::with_capacity(bh * bw);
    let mut counts = Vec::new();
    for y0 in 0..wy {
        for x0 in 0..wx {
            let before = order.len();
            for y in y0 * w..((y0 + 1) * w).min(bh) {
                for x in x0 * w..((x0 + 1) * w).min(bw) {
                    order.push(y * bw + x);
                }
            }
            counts.push(order.len() - before);
        }
    }
    (order, counts)
}

#[cfg(test)]
mod tests {
    use super::window_order;

    #[test]
    fn windows_cover_every_unit_once_row_major() {
        // 3×5 units, windows of 2: windows (0,0) (0,1) (0,2) (1,0) (1,1) (1,2).
        let (order, counts) = window_order(3, 5, 2);
        assert_eq!(counts, vec![4, 4, 2, 2, 2, 1]);
        assert_eq!(&order[..4], &[0, 1, 5, 6]);
        assert_eq!(&order[8..10], &[4, 9]);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..15).collect::<Vec<_>>());
    }
}
