//! The decoder stack: token embeddings, layers, final norm and lm_head.

use burn::tensor::Tensor;

use super::block::DecoderLayer;
use super::kv_cache::KvCache;
use super::rope::{Positions, Rope};
use crate::config::{DecoderKind, TextConfig};
use crate::error::{ModelError, Result};
use crate::nn::{Embedding, Linear, Norm};
use crate::weights::WeightReader;

/// `LlamaModel` / `Qwen2Model` / `PhiModel` + `lm_head`.
#[derive(Clone, Debug)]
pub struct TextDecoder {
    embed: Embedding,
    layers: Vec<DecoderLayer>,
    norm: Norm,
    lm_head: Linear,
    rope: Rope,
    cfg: TextConfig,
}

impl TextDecoder {
    /// `vb` is rooted at the decoder (`model.text_model`); `lm_head` is taken from `head`
    /// (the checkpoint root) when present, else tied to the embeddings if `tied` allows it.
    pub fn load(vb: &mut WeightReader, head: &mut WeightReader, cfg: &TextConfig, tied: bool) -> Result<Self> {
        let own_head = head.contains("lm_head.weight");
        let embed = Embedding::load(vb, "embed_tokens", cfg.vocab_size, cfg.hidden_size, tied && !own_head)?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            layers.push(DecoderLayer::load(&mut vb.pp(format!("layers.{i}")), cfg)?);
        }
        let phi = cfg.decoder == DecoderKind::Phi;
        let norm_name = if phi { "final_layernorm" } else { "norm" };
        let norm = Norm::load(vb, norm_name, cfg.hidden_size, cfg.norm_eps(), !phi)?;
        let lm_head = if own_head {
            Linear::load(head, "lm_head", cfg.hidden_size, cfg.vocab_size, phi)?
        } else if tied {
            Linear::from_weight(embed.weight()?, None)
        } else {
            return Err(ModelError::MissingTensor { name: head.full("lm_head.weight") });
        };
        let mrope = cfg.mrope_section().map(|s| [s[0], s[1], s[2]]);
        let rope = Rope::new(cfg.rotary_dim(), cfg.rope_theta()?, cfg.max_position_embeddings, mrope, &vb.device());
        Ok(Self { embed, layers, norm, lm_head, rope, cfg: cfg.clone() })
    }

    /// The token embedding (how it is held, what it costs).
    pub fn embedding(&self) -> &Embedding {
        &self.embed
    }

    pub fn config(&self) -> &TextConfig {
        &self.cfg
    }

    /// Bytes of weights one decoded token reads: every layer, the final norm, the lm_head
    /// and one embedding row. Divided into a device's bandwidth it bounds decode speed.
    pub fn decode_weight_bytes(&self) -> u64 {
        self.layers.iter().map(DecoderLayer::weight_bytes).sum::<u64>()
            + self.norm.weight_bytes()
            + self.lm_head.weight_bytes()
            + self.embed.row_bytes()
    }

    /// A cache for `capacity` positions (at most the context window).
    pub fn new_cache(&self, capacity: usize) -> KvCache {
        let capacity = capacity.min(self.cfg.max_position_embeddings);
        KvCache::new(
            self.cfg.num_hidden_layers,
            self.cfg.num_key_value_heads(),
            self.cfg.head_dim(),
            capacity,
            &self.embed.device(),
        )
    }

    /// # Shapes
    /// `ids: [n]` → `[n, hidden]`
    pub fn embed(&self, ids: &[u32]) -> Result<Tensor<2>> {
        self.embed.forward(ids)
    }

    /// [`TextDecoder::embed`] of ids on the device (see [`Embedding::forward_device`]).
    pub fn embed_device(&self, ids: Tensor<1, burn::tensor::Int>) -> Option<Tensor<2>> {
        self.embed.forward_device(ids)
    }

    /// Run `n` new positions through the stack, appending to `cache`, and return logits of the
    /// last position only (`all_logits = false`, what decoding needs) or of every new position.
    ///
    /// # Shapes
    /// `embeds: [n, hidden]` → `[1 or n, vocab]`
    pub fn forward(&self, embeds: Tensor<2>, cache: &mut KvCache, all_logits: bool) -> Result<Tensor<2>> {
        self.forward_at(embeds, cache, None, all_logits)
    }

    /// [`TextDecoder::forward`] with each token's (t, h, w) position given (M-RoPE over an
    /// image); without, tokens continue from the cache's next position.
    pub fn forward_at(&self, embeds: Tensor<2>, cache: &mut KvCache, mrope: Option<&[[u32; 3]]>, all_logits: bool) -> Result<Tensor<2>> {
        let [n, _] = embeds.dims();
        if cache.len() + n > cache.capacity() {
            return Err(ModelError::ContextOverflow { tokens: cache.len() + n, context: cache.capacity() });
        }
        let positions = match mrope {
            Some(p) => Positions::Mrope(p),
            None => Positions::From(cache.next_position()),
        };
        if let Positions::From(start) = positions {
            if start + n > self.cfg.max_position_embeddings {
                return Err(ModelError::ContextOverflow { tokens: start + n, context: self.cfg.max_position_embeddings });
            }
        }
        let rope = self.rope.at(positions, n)?;
        let mut x = embeds;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x, &rope, cache, i)?;
        }
        cache.advance(n);
        if let Some(p) = mrope {
            // Text after an image continues from its largest position + 1, not from its index.
            let next = p.iter().flat_map(|t| t.iter()).copied().max().map_or(0, |m| m as usize + 1);
            cache.set_next_position(next);
        }
        let x = if all_logits { x } else { x.slice_dim(0, n - 1..n) };
        self.lm_head.forward(self.norm.forward(x)?)
    }
}
