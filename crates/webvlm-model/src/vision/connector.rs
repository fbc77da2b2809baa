//! Connectors from vision features to the decoder's embedding space: Idefics3's pixel shuffle
//! (space-to-depth by `scale_factor`) with a bias-free projection, and LLaVA's two-layer MLP
//! projector.

use burn::tensor::Tensor;

use crate::config::{Family, ModelConfig};
use crate::error::Result;
use crate::nn::{FeedForward, Linear};
use crate::weights::WeightReader;

/// `Idefics3Connector` / `LlavaMultiModalProjector`.
#[derive(Clone, Debug)]
pub enum Connector {
    PixelShuffle { proj: Linear, scale: usize },
    Mlp(FeedForward),
}

impl Connector {
    /// `vb` is rooted at the connector (`model.connector`, `model.multi_modal_projector`).
    pub fn load(vb: &mut WeightReader, cfg: &ModelConfig) -> Result<Self> {
        let (vision, text) = (cfg.vision_config.hidden_size, cfg.text_config.hidden_size);
        if cfg.family == Family::Llava {
            let dims = (vision, text, text);
            let act = cfg.projector_activation()?;
            return Ok(Self::Mlp(FeedForward::load(vb, ("linear_1", "linear_2"), dims, cfg.multimodal_projector_bias, act)?));
        }
        let s = cfg.scale_factor;
        let proj = Linear::load(&mut vb.pp("modality_projection"), "proj", vision * s * s, text, false)?;
        Ok(Self::PixelShuffle { proj, scale: s })
    }

    /// # Shapes
    /// `x: [tokens, vision_hidden]` → `[image_seq_len, text_hidden]`
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        self.forward_tiles(x, 1)
    }

    /// Several tiles' features one after another, each shuffled on its own grid.
    ///
    /// # Shapes
    /// `x: [tiles · tokens, vision_hidden]` → `[tiles · image_seq_len, text_hidden]`
    pub fn forward_tiles(&self, x: Tensor<2>, tiles: usize) -> Result<Tensor<2>> {
        match self {
            Self::PixelShuffle { proj, scale } => proj.forward(pixel_shuffle_tiles(x, *scale, tiles)),
            Self::Mlp(mlp) => mlp.forward(x),
        }
    }
}

/// The same index shuffle as transformers' `pixel_shuffle`: view as an h×w grid, fold `s`
/// columns into channels, transpose, fold `s` rows, transpose back.
///
/// # Shapes
/// `x: [seq, E]` (seq = h·w, h = w) → `[seq/s², E·s²]`
pub fn pixel_shuffle(x: Tensor<2>, s: usize) -> Tensor<2> {
    pixel_shuffle_tiles(x, s, 1)
}

/// [`pixel_shuffle`] of `tiles` grids stacked along the rows, each on its own.
///
/// # Shapes
/// `x: [tiles · seq, E]` → `[tiles · seq/s², E·s²]`
pub fn pixel_shuffle_tiles(x: Tensor<2>, s: usize, tiles: usize) -> Tensor<2> {
    let [rows, e] = x.dims();
    let b = tiles.max(1);
    let seq = rows / b;
    let h = (seq as f64).sqrt().round() as usize;
    let w = h;
    let x: Tensor<4> = x.reshape([b, h, w / s, e * s]);
    let x = x.swap_dims(1, 2); // [b, w/s, h, e·s]
    let x: Tensor<4> = x.reshape([b, w / s, h / s, e * s * s]);
    let x = x.swap_dims(1, 2); // [b, h/s, w/s, e·s²]
    x.reshape([b * seq / (s * s), e * s * s])
}
