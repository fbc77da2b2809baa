//! Encoder layers (pre-norm residual blocks) and the whole vision transformer, in its SigLIP
//! (Idefics3) and CLIP (LLaVA) forms.

use burn::tensor::Tensor;

use super::attention::VisionAttention;
use super::embeddings::VisionEmbeddings;
use crate::config::{FeatureSelect, ModelConfig, VisionKind};
use crate::error::Result;
use crate::nn::{FeedForward, LayerNorm};
use crate::weights::WeightReader;

/// `Idefics3EncoderLayer` / `CLIPEncoderLayer`: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Clone, Debug)]
pub struct VisionLayer {
    ln1: LayerNorm,
    attn: VisionAttention,
    ln2: LayerNorm,
    mlp: FeedForward,
}

impl VisionLayer {
    fn load(vb: &mut WeightReader, cfg: &ModelConfig) -> Result<Self> {
        let v = &cfg.vision_config;
        let d = v.hidden_size;
        Ok(Self {
            ln1: LayerNorm::load(vb, "layer_norm1", d, v.layer_norm_eps)?,
            attn: VisionAttention::load(&mut vb.pp("self_attn"), v)?,
            ln2: LayerNorm::load(vb, "layer_norm2", d, v.layer_norm_eps)?,
            mlp: FeedForward::load(&mut vb.pp("mlp"), ("fc1", "fc2"), (d, v.intermediate_size, d), true, cfg.vision_activation()?)?,
        })
    }

    /// `segments`: consecutive row ranges tiling `x` (one per tile), each attending only to itself.
    ///
    /// # Shapes
    /// `x: [n, hidden]` → same
    pub fn forward(&self, x: Tensor<2>, segments: &[std::ops::Range<usize>]) -> Result<Tensor<2>> {
        // The residual additions happen inside the output projection and fc2.
        let x = self.attn.forward(self.ln1.forward(x.clone())?, None, segments, Some(x))?;
        self.mlp.forward_residual(self.ln2.forward(x.clone())?, Some(x))
    }
}

/// The tower: embeddings → (CLIP: `pre_layrnorm`) → layers → (SigLIP: `post_layernorm`).
///
/// LLaVA reads `hidden_states[vision_feature_layer]`, the output of an inner layer before
/// `post_layernorm`: the layers after it are never run (their weights are dropped at load),
/// and with the `default` strategy the class token is dropped from the output.
#[derive(Clone, Debug)]
pub struct VisionTransformer {
    embeddings: VisionEmbeddings,
    pre_layernorm: Option<LayerNorm>,
    layers: Vec<VisionLayer>,
    post_layernorm: Option<LayerNorm>,
    drop_class_token: bool,
}

impl VisionTransformer {
    /// `vb` is rooted at the tower (`model.vision_model`, `model.vision_tower`).
    pub fn load(vb: &mut WeightReader, cfg: &ModelConfig) -> Result<Self> {
        let v = &cfg.vision_config;
        let embeddings = VisionEmbeddings::load(&mut vb.pp("embeddings"), v)?;
        let clip = v.kind == VisionKind::Clip;
        // CLIP's historical spelling of its pre-norm.
        let pre_layernorm = if clip { Some(LayerNorm::load(vb, "pre_layrnorm", v.hidden_size, v.layer_norm_eps)?) } else { None };
        let run = if clip { cfg.feature_layer()? } else { v.num_hidden_layers };
        let mut layers = Vec::with_capacity(run);
        for i in 0..v.num_hidden_layers {
            let name = format!("encoder.layers.{i}");
            if i < run {
                layers.push(VisionLayer::load(&mut vb.pp(&name), cfg)?);
            } else {
                vb.discard(&name);
            }
        }
        let post_layernorm = if clip {
            vb.discard("post_layernorm");
            None
        } else {
            Some(LayerNorm::load(vb, "post_layernorm", v.hidden_size, v.layer_norm_eps)?)
        };
        let drop_class_token = clip && cfg.feature_select()? == FeatureSelect::Patches;
        Ok(Self { embeddings, pre_layernorm, layers, post_layernorm, drop_class_token })
    }

    /// One tile's unfolded patches to the features the connector takes.
    ///
    /// # Shapes
    /// `patches: [num_patches, C·p·p]` → `[tokens, hidden]` (tokens = patches, plus the class
    /// token with LLaVA's `full` strategy)
    pub fn forward(&self, patches: Tensor<2>) -> Result<Tensor<2>> {
        self.forward_tiles(patches, 1)
    }

    /// Whether [`Self::forward_tiles`] takes more than one tile (no class token).
    pub fn batches_tiles(&self) -> bool {
        self.embeddings.batches_tiles()
    }

    /// Several tiles at once, their patches one after another: one launch per operation for
    /// all of them (attention stays within each tile).
    ///
    /// # Shapes
    /// `patches: [tiles · num_patches, C·p·p]` → `[tiles · tokens, hidden]`
    pub fn forward_tiles(&self, patches: Tensor<2>, tiles: usize) -> Result<Tensor<2>> {
        let mut x = self.embeddings.forward_tiles(patches, tiles)?;
        let [n, _] = x.dims();
        let per_tile = n / tiles.max(1);
        let segments: Vec<_> = (0..tiles).map(|t| t * per_tile..(t + 1) * per_tile).collect();
        if let Some(ln) = &self.pre_layernorm {
            x = ln.forward(x)?;
        }
        for layer in &self.layers {
            x = layer.forward(x, &segments)?;
        }
        if let Some(ln) = &self.post_layernorm {
            x = ln.forward(x)?;
        }
        if self.drop_class_token {
            let [n, _] = x.dims();
            x = x.slice_dim(0, 1..n);
        }
        Ok(x)
    }
}
