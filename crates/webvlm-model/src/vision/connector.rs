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
        match self {
            Self::PixelShuffle { proj, scale } => proj.forward(pixel_shuffle(x, *scale)),
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
    let [seq, e] = x.dims();
    let h = (seq as f64).sqrt().round() as usize;
    let w = h;
    let x: Tensor<3> = x.reshape([h, w / s, e * s]);
    let x = x.swap_dims(0, 1); // [w/s, h, e·s]
    let x: Tensor<3> = x.reshape([w / s, h / s, e * s * s]);
    let x = x.swap_dims(0, 1); // [h/s, w/s, e·s²]
    x.reshape([seq / (s * s), e * s * s])
}
