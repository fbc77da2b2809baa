//! The connector: pixel shuffle (space-to-depth by `scale_factor`) and a bias-free projection
//! into the decoder's embedding space.

use burn::tensor::Tensor;

use crate::config::Idefics3Config;
use crate::error::Result;
use crate::nn::Linear;
use crate::weights::WeightReader;

/// `Idefics3Connector`.
#[derive(Clone, Debug)]
pub struct Connector {
    proj: Linear,
    scale: usize,
}

impl Connector {
    /// `vb` is rooted at `model.connector`.
    pub fn load(vb: &mut WeightReader, cfg: &Idefics3Config) -> Result<Self> {
        let s = cfg.scale_factor;
        let input = cfg.vision_config.hidden_size * s * s;
        let proj = Linear::load(&mut vb.pp("modality_projection"), "proj", input, cfg.text_config.hidden_size, false)?;
        Ok(Self { proj, scale: s })
    }

    /// The same index shuffle as transformers' `pixel_shuffle`: view as an h×w grid, fold `s`
    /// columns into channels, transpose, fold `s` rows, transpose back.
    ///
    /// # Shapes
    /// `x: [seq, E]` (seq = h·w, h = w) → `[seq/s², E·s²]`
    pub fn pixel_shuffle(&self, x: Tensor<2>) -> Tensor<2> {
        let [seq, e] = x.dims();
        let s = self.scale;
        let h = (seq as f64).sqrt().round() as usize;
        let w = h;
        let x: Tensor<3> = x.reshape([h, w / s, e * s]);
        let x = x.swap_dims(0, 1); // [w/s, h, e·s]
        let x: Tensor<3> = x.reshape([w / s, h / s, e * s * s]);
        let x = x.swap_dims(0, 1); // [h/s, w/s, e·s²]
        x.reshape([seq / (s * s), e * s * s])
    }

    /// # Shapes
    /// `x: [num_patches, vision_hidden]` → `[image_seq_len, text_hidden]`
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        self.proj.forward(self.pixel_shuffle(x))
    }
}
