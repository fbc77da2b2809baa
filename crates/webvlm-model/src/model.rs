//! The graph every family shares: vision tower → connector → image features merged into the
//! token embeddings at the image placeholder tokens → decoder. Follows
//! `Idefics3ForConditionalGeneration` (`models/idefics3`), `LlavaForConditionalGeneration`
//! (`models/llava`) and the `*ForCausalLM` decoders in transformers.

use burn::tensor::{Device, Tensor, TensorData};

use crate::config::{Family, ModelConfig};
use crate::error::{ModelError, Result};
use crate::preprocess::idefics3::ProcessedImage;
use crate::text::{KvCache, TextDecoder};
use crate::vision::{Connector, Patches, QwenVision, VisionTransformer, unfold_patches};
use crate::weights::WeightStore;

/// Checkpoint prefixes of a family's components (vision tower, connector, decoder), in the
/// transformers-5 layout ([`crate::weights::canonical_name`] maps older layouts onto it).
struct Layout {
    vision: &'static str,
    connector: &'static str,
    text: &'static str,
}

fn layout(family: Family) -> Layout {
    match family {
        Family::Idefics3 => Layout { vision: "model.vision_model", connector: "model.connector", text: "model.text_model" },
        Family::Llava => {
            Layout { vision: "model.vision_tower", connector: "model.multi_modal_projector", text: "model.language_model" }
        }
        // The merger lives inside the tower (`model.visual.merger`).
        Family::Qwen2Vl | Family::Qwen25Vl => Layout { vision: "model.visual", connector: "", text: "model.language_model" },
        Family::Llama | Family::Qwen2 | Family::Phi => Layout { vision: "", connector: "", text: "model" },
    }
}

/// A vision tower with what turns its output into decoder tokens.
#[derive(Clone, Debug)]
enum Vision {
    /// Fixed-size tiles: SigLIP or CLIP, then a connector.
    Tiles { tower: VisionTransformer, connector: Connector },
    /// Qwen-VL: any size, merger included.
    Qwen(QwenVision),
}

/// The most tiles [`Model::encode_image`] encodes at once (SmolVLM's image splitting makes up
/// to 17): a bound on the activations a batch holds at a time, whatever the binding allows.
pub const MAX_TILES_PER_BATCH: usize = 8;

/// Names that only one family's checkpoints carry, and the family: a tensor with another
/// family's mark means the checkpoint mixes families (or the config names the wrong one).
const MARKS: &[(&str, Family)] = &[
    ("model.vision_model.", Family::Idefics3),
    ("model.connector.", Family::Idefics3),
    ("model.text_model.", Family::Idefics3),
    ("model.vision_tower.", Family::Llava),
    ("model.multi_modal_projector.", Family::Llava),
    ("model.visual.", Family::Qwen2Vl),
    (".self_attn.dense.", Family::Phi),
    ("model.final_layernorm.", Family::Phi),
    (".mlp.gate_proj.", Family::Llama),
];

/// Which family a tensor name marks, if any. Phi's and the gated decoders' layer names mark a
/// decoder kind, not a whole model: they are checked against the decoder the config names.
fn marked_family(name: &str) -> Option<Family> {
    MARKS.iter().find(|(mark, _)| if mark.starts_with('.') { name.contains(mark) } else { name.starts_with(mark) }).map(|&(_, f)| f)
}

/// Refuse a checkpoint whose tensors belong to another family than `config` names, naming the
/// first such tensor (before any component takes weights, so the error is about the mix and
/// not about whichever tensor happens to be missing).
fn check_family(store: &WeightStore, config: &ModelConfig) -> Result<()> {
    use crate::config::DecoderKind;
    let gated = config.text_config.decoder != DecoderKind::Phi;
    for name in store.names() {
        let Some(found) = marked_family(name) else { continue };
        let ok = match found {
            Family::Phi => !gated,
            Family::Llama => gated,
            Family::Qwen2Vl => config.family.mrope(),
            family => family == config.family,
        };
        if !ok {
            let found_name = match found {
                Family::Phi => "a Phi decoder",
                Family::Llama => "a Llama/Qwen2 (gated-MLP) decoder",
                Family::Qwen2Vl => "Qwen2-VL / Qwen2.5-VL",
                f => f.name(),
            };
            return Err(ModelError::MixedFamily {
                tensor: name.to_string(),
                found: found_name.into(),
                expected: format!("{} ({})", config.family.name(), config.model_type),
            });
        }
    }
    Ok(())
}

/// Vision tower output and connector output of one tile (named so a debug run can dump them).
#[derive(Clone, Debug)]
pub struct TileFeatures {
    /// `[num_patches, vision_hidden]`, after `post_layernorm`.
    pub vision_output: Tensor<2>,
    /// `[image_seq_len, text_hidden]`
    pub connector_output: Tensor<2>,
}

/// The whole model, weights on one device. A text-only checkpoint has no vision tower and
/// connector; everything else is the same graph.
#[derive(Clone, Debug)]
pub struct Model {
    vision: Option<Vision>,
    text: TextDecoder,
    config: ModelConfig,
    device: Device,
    /// A context shorter than the model's, chosen to fit the device's memory.
    context_limit: Option<usize>,
}

impl Model {
    /// Build every component from `store`; fails if a tensor is missing, misshapen or unused.
    pub fn load(mut store: WeightStore, config: &ModelConfig) -> Result<Self> {
        let device = store.device().clone();
        check_family(&store, config)?;
        let mut names = layout(config.family);
        if config.family.mrope() && !store.contains("model.language_model.embed_tokens.weight") {
            // Qwen-VL checkpoints on the Hub keep the decoder at `model.*`.
            names.text = "model";
        }
        let vision = if config.text_only {
            None
        } else if config.family.mrope() {
            Some(Vision::Qwen(QwenVision::load(&mut store.reader(names.vision), config)?))
        } else {
            Some(Vision::Tiles {
                tower: VisionTransformer::load(&mut store.reader(names.vision), config)?,
                connector: Connector::load(&mut store.reader(names.connector), config)?,
            })
        };
        let text = {
            // The decoder reads under its prefix, lm_head at the root: two readers of one store,
            // taken one after the other.
            let mut head_store = WeightStore::empty_like(&store);
            store.move_to("lm_head.weight", &mut head_store);
            store.move_to("lm_head.bias", &mut head_store);
            let mut head = head_store.reader("");
            let text = TextDecoder::load(&mut store.reader(names.text), &mut head, &config.text_config, config.tied_embeddings())?;
            head_store.finish()?;
            text
        };
        store.finish()?;
        Ok(Self { vision, text, config: config.clone(), device, context_limit: None })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The model family.
    pub fn family(&self) -> Family {
        self.config.family
    }

    /// Whether the model has a vision tower.
    pub fn has_vision(&self) -> bool {
        self.vision.is_some()
    }

    pub fn decoder(&self) -> &TextDecoder {
        &self.text
    }

    /// Encode tile `index` of a preprocessed image.
    pub fn encode_tile(&self, image: &ProcessedImage, index: usize) -> Result<TileFeatures> {
        let (vision, connector) = match &self.vision {
            None => return Err(ModelError::NoVision { model_type: self.config.model_type.clone() }),
            Some(Vision::Qwen(tower)) => {
                let Some((grid_h, grid_w)) = image.patch_grid.filter(|_| index == 0) else {
                    return Err(ModelError::InvalidRequest(format!("Qwen-VL encodes one patch grid per image, not tile {index}")));
                };
                let out = tower.forward(&Patches { rows: &image.pixel_values, grid_h, grid_w })?;
                return Ok(TileFeatures { vision_output: out.blocks_output, connector_output: out.merged });
            }
            Some(Vision::Tiles { tower, connector }) => (tower, connector),
        };
        let vision_output = vision.forward(self.tile_patches(image, index..index + 1)?)?;
        let connector_output = connector.forward(vision_output.clone())?;
        Ok(TileFeatures { vision_output, connector_output })
    }

    /// The unfolded patches of `tiles`, one tile's rows after another's, on the device.
    ///
    /// # Shapes
    /// → `[tiles.len() · num_patches, C·p·p]`
    fn tile_patches(&self, image: &ProcessedImage, tiles: std::ops::Range<usize>) -> Result<Tensor<2>> {
        let v = &self.config.vision_config;
        if image.height != v.image_size || image.width != v.image_size {
            return Err(ModelError::config(
                "preprocessor_config.json",
                format!(
                    "tiles are {}x{} but the vision tower takes {}x{} (max_image_size must equal vision_config.image_size)",
                    image.width, image.height, v.image_size, v.image_size
                ),
            ));
        }
        let per_tile = v.num_channels * v.image_size * v.image_size;
        let pixels = image
            .pixel_values
            .get(tiles.start * per_tile..tiles.end * per_tile)
            .ok_or_else(|| ModelError::InvalidRequest(format!("tiles {tiles:?} are out of range")))?;
        let rows: Vec<f32> = pixels.chunks_exact(per_tile).flat_map(|tile| unfold_patches(tile, v.num_channels, v.image_size, v.patch_size)).collect();
        let row = v.num_channels * v.patch_size * v.patch_size;
        let shape = [rows.len() / row.max(1), row];
        Ok(Tensor::from_data(TensorData::new(rows, shape), &self.device))
    }

    /// All tiles' connector outputs, in the order their `<image>` tokens appear.
    ///
    /// # Shapes
    /// → `[num_tiles · image_seq_len, text_hidden]`
    ///
    /// Tiles go through the tower in batches ([`Self::tiles_per_batch`]): one launch per
    /// operation for the batch, attention kept within each tile.
    pub fn encode_image(&self, image: &ProcessedImage) -> Result<Tensor<2>> {
        let batch = self.tiles_per_batch();
        let (Some(Vision::Tiles { tower, connector }), true) = (&self.vision, batch > 1 && image.num_tiles > 1) else {
            let mut feats = Vec::with_capacity(image.num_tiles);
            for i in 0..image.num_tiles {
                feats.push(self.encode_tile(image, i)?.connector_output);
            }
            return Ok(Tensor::cat(feats, 0));
        };
        let mut feats = Vec::new();
        for first in (0..image.num_tiles).step_by(batch) {
            let tiles = batch.min(image.num_tiles - first);
            let patches = self.tile_patches(image, first..first + tiles)?;
            feats.push(connector.forward_tiles(tower.forward_tiles(patches, tiles)?, tiles)?);
        }
        Ok(Tensor::cat(feats, 0))
    }

    /// Tiles the vision tower encodes together: as many as keep its widest activation (fc1's
    /// output, or the joined q/k/v) within one binding of the device, at most
    /// [`MAX_TILES_PER_BATCH`]; 1 for towers with a class token (LLaVA, one image anyway).
    pub fn tiles_per_batch(&self) -> usize {
        let Some(Vision::Tiles { tower, .. }) = &self.vision else { return 1 };
        if !tower.batches_tiles() {
            return 1;
        }
        let v = &self.config.vision_config;
        let tokens = (v.image_size / v.patch_size.max(1)).pow(2);
        let widest = (tokens * v.intermediate_size.max(3 * v.hidden_size) * 4).max(1) as u64;
        let limit = webvlm_kernels::DeviceCaps::of_device(&self.device).map_or(u64::MAX, |c| c.max_binding_bytes);
        usize::try_from(limit / widest).unwrap_or(usize::MAX).clamp(1, MAX_TILES_PER_BATCH)
    }

    /// Token embeddings with every `<image>` position replaced, in order, by a row of
    /// `image_features` (transformers' `inputs_merger`).
    ///
    /// # Shapes
    /// `ids: [n]`, `image_features: [k, hidden]` with k = count of image tokens → `[n, hidden]`
    /// The decoder's token embedding: how it is held on the device and its size.
    pub fn token_embedding(&self) -> &crate::nn::Embedding {
        self.text.embedding()
    }

    /// Text embeddings of token ids that live on the device (a token the device picked), so
    /// a decode step uploads nothing; `None` where the table is held in several blocks (then
    /// use [`Model::embed`]).
    ///
    /// # Shapes
    /// `ids: [n]` → `[n, hidden]`
    pub fn embed_device(&self, ids: Tensor<1, burn::tensor::Int>) -> Option<Tensor<2>> {
        self.text.embed_device(ids)
    }

    pub fn embed(&self, ids: &[u32], image_features: Option<&Tensor<2>>) -> Result<Tensor<2>> {
        if self.vision.is_none() {
            // No image token exists for a text-only model, whatever id the config defaults to.
            return match image_features {
                Some(_) => Err(ModelError::NoVision { model_type: self.config.model_type.clone() }),
                None => self.text.embed(ids),
            };
        }
        let image_id = self.config.image_token_id;
        let image_tokens = ids.iter().filter(|&&t| t == image_id).count();
        let available = image_features.map(|f| f.dims()[0]).unwrap_or(0);
        if image_tokens != available {
            return Err(ModelError::ImageTokenMismatch { tokens: image_tokens, features: available });
        }
        let Some(features) = image_features else { return self.text.embed(ids) };
        let mut pieces = Vec::new();
        let mut used = 0;
        let mut start = 0;
        while start < ids.len() {
            let is_image = ids[start] == image_id;
            let mut end = start;
            while end < ids.len() && (ids[end] == image_id) == is_image {
                end += 1;
            }
            if is_image {
                pieces.push(features.clone().slice_dim(0, used..used + (end - start)));
                used += end - start;
            } else {
                pieces.push(self.text.embed(&ids[start..end])?);
            }
            start = end;
        }
        Ok(Tensor::cat(pieces, 0))
    }

    /// A KV cache for up to `capacity` positions.
    pub fn new_cache(&self, capacity: usize) -> KvCache {
        self.text.new_cache(capacity)
    }

    /// Decoder forward over new positions; see [`TextDecoder::forward`].
    pub fn forward(&self, embeds: Tensor<2>, cache: &mut KvCache, all_logits: bool) -> Result<Tensor<2>> {
        self.text.forward(embeds, cache, all_logits)
    }

    /// Decoder forward with M-RoPE positions; see [`TextDecoder::forward_at`].
    pub fn forward_at(&self, embeds: Tensor<2>, cache: &mut KvCache, mrope: Option<&[[u32; 3]]>, all_logits: bool) -> Result<Tensor<2>> {
        self.text.forward_at(embeds, cache, mrope, all_logits)
    }

    /// Qwen-VL's `get_rope_index` for one prompt: text tokens advance t = h = w together; the
    /// image tokens of each run (one per merged patch block, `grids` in order) take
    /// (start, start + row, start + column); text after an image resumes at
    /// start + max(rows, columns). `None` for models without M-RoPE.
    pub fn mrope_positions(&self, ids: &[u32], grids: &[(usize, usize)]) -> Result<Option<Vec<[u32; 3]>>> {
        if !self.config.family.mrope() {
            return Ok(None);
        }
        let m = self.config.vision_config.spatial_merge_size;
        let image_id = self.config.image_token_id;
        let mut out = Vec::with_capacity(ids.len());
        let mut grids = grids.iter();
        let mut pos = 0u32;
        let mut i = 0;
        while i < ids.len() {
            if ids[i] != image_id {
                out.push([pos; 3]);
                pos += 1;
                i += 1;
                continue;
            }
            let &(gh, gw) = grids.next().ok_or(ModelError::ImageTokenMismatch { tokens: ids.iter().filter(|&&t| t == image_id).count(), features: 0 })?;
            let (h, w) = (gh / m, gw / m);
            let run = ids[i..].iter().take_while(|&&t| t == image_id).count();
            if run != h * w {
                return Err(ModelError::ImageTokenMismatch { tokens: run, features: h * w });
            }
            for y in 0..h {
                for x in 0..w {
                    out.push([pos, pos + y as u32, pos + x as u32]);
                }
            }
            pos += h.max(w) as u32;
            i += run;
        }
        Ok(Some(out))
    }

    /// Positions a conversation may hold: the model's context, or the limit set on it.
    pub fn context_length(&self) -> usize {
        let full = self.config.text_config.max_position_embeddings;
        self.context_limit.map_or(full, |l| l.min(full))
    }

    /// Hold at most `positions` in a conversation (its KV cache never grows past them): what a
    /// device with less memory than the model's whole context needs takes. Longer prompts are
    /// then a [`ModelError::ContextOverflow`].
    pub fn limit_context(&mut self, positions: usize) {
        self.context_limit = Some(positions.max(1));
    }
}
