//! Encoder layers (pre-norm residual blocks) and the whole vision transformer.

use burn::tensor::Tensor;

use super::attention::VisionAttention;
use super::embeddings::VisionEmbeddings;
use super::mlp::VisionMlp;
use crate::config::Idefics3Config;
use crate::error::Result;
use crate::nn::LayerNorm;
use crate::weights::WeightReader;

/// `Idefics3EncoderLayer`: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Clone, Debug)]
pub struct VisionLayer {
    ln1: LayerNorm,
    attn: VisionAttention,
    ln2: LayerNorm,
    mlp: VisionMlp,
}

impl VisionLayer {
    fn load(vb: &mut WeightReader, cfg: &Idefics3Config) -> Result<Self> {
        let v = &cfg.vision_config;
        Ok(Self {
            ln1: LayerNorm::load(vb, "layer_norm1", v.hidden_size, v.layer_norm_eps)?,
            attn: VisionAttention::load(&mut vb.pp("self_attn"), v)?,
            ln2: LayerNorm::load(vb, "layer_norm2", v.hidden_size, v.layer_norm_eps)?,
            mlp: VisionMlp::load(&mut vb.pp("mlp"), v, cfg.vision_activation()?)?,
        })
    }

    /// # Shapes
    /// `x: [n, hidden]` → same
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        let x = x.clone() + self.attn.forward(self.ln1.forward(x))?;
        Ok(x.clone() + self.mlp.forward(self.ln2.forward(x))?)
    }
}

/// `Idefics3VisionTransformer`: embeddings → layers → post_layernorm.
#[derive(Clone, Debug)]
pub struct VisionTransformer {
    embeddings: VisionEmbeddings,
    layers: Vec<VisionLayer>,
    post_layernorm: LayerNorm,
}

impl VisionTransformer {
    /// `vb` is rooted at the tower (`model.vision_model`).
    pub fn load(vb: &mut WeightReader, cfg: &Idefics3Config) -> Result<Self> {
        let v = &cfg.vision_config;
        let embeddings = VisionEmbeddings::load(&mut vb.pp("embeddings"), v)?;
        let mut layers = Vec::with_capacity(v.num_hidden_layers);
        for i in 0..v.num_hidden_layers {
            layers.push(VisionLayer::load(&mut vb.pp(format!("encoder.layers.{i}")), cfg)?);
        }
        let post_layernorm = LayerNorm::load(vb, "post_layernorm", v.hidden_size, v.layer_norm_eps)?;
        Ok(Self { embeddings, layers, post_layernorm })
    }

    /// One tile's unfolded patches to its last hidden state.
    ///
    /// # Shapes
    /// `patches: [num_patches, C·p·p]` → `[num_patches, hidden]`
    pub fn forward(&self, patches: Tensor<2>) -> Result<Tensor<2>> {
        let mut x = self.embeddings.forward(patches)?;
        for layer in &self.layers {
            x = layer.forward(x)?;
        }
        Ok(self.post_layernorm.forward(x))
    }
}
