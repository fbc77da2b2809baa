//! A loaded vision-language model: weights on the device plus everything needed to turn a
//! question and an image into input ids and image features (tokenizer, chat template, image
//! processor), read from a model in the standard Hugging Face layout.

use burn::tensor::{Device, Tensor};

use crate::config::{Family, ModelConfig};
use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::preprocess::RgbImage;
use crate::preprocess::PreprocessError;
use crate::preprocess::clip::ClipProcessorConfig;
use crate::preprocess::idefics3::{ImageProcessorConfig, ProcessedImage};
use crate::preprocess::qwen2_vl::Qwen2VlProcessorConfig;
use crate::prompt::{ChatTemplate, END_OF_UTTERANCE, IMAGE_TOKEN, Message, expand_images, expand_placeholders};
use crate::source::{GgufMetadataSource, ModelSource};
use crate::tokenizer::Tokenizer;
use crate::weights::packed::{self, Check, FileEntry, ShardReader};
use crate::weights::{LoadOptions, WeightStore};
pub use webvlm_kernels::QuantScheme;

/// A prompt ready for the decoder.
#[derive(Debug, Clone)]
pub struct PreparedPrompt {
    /// The chat-template output before image expansion.
    pub rendered: String,
    /// Token ids after image expansion.
    pub input_ids: Vec<u32>,
    /// The preprocessed image, when the prompt has one.
    pub image: Option<ProcessedImage>,
    /// M-RoPE (Qwen-VL): each token's (t, h, w) position; `None` when positions are the indices.
    pub positions: Option<Vec<[u32; 3]>>,
}

/// A family's image processor.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageProcessor {
    /// SmolVLM: tiles plus a global image.
    Idefics3(ImageProcessorConfig),
    /// LLaVA: one center-cropped image.
    Clip(ClipProcessorConfig),
    /// Qwen-VL: one image at its own (budgeted) resolution.
    Qwen2Vl(Qwen2VlProcessorConfig),
}

impl ImageProcessor {
    /// Whether images are cut into tiles (only Idefics3 can).
    pub fn splits_images(&self) -> bool {
        matches!(self, Self::Idefics3(p) if p.do_image_splitting)
    }

    /// Preprocess one image; `splitting` overrides Idefics3's `do_image_splitting`.
    pub fn preprocess(&self, image: &RgbImage, splitting: Option<bool>) -> Result<ProcessedImage, PreprocessError> {
        match self {
            Self::Idefics3(p) => match splitting {
                Some(split) if split != p.do_image_splitting => {
                    ImageProcessorConfig { do_image_splitting: split, ..p.clone() }.preprocess(image)
                }
                _ => p.preprocess(image),
            },
            Self::Clip(p) => p.preprocess(image),
            Self::Qwen2Vl(p) => p.preprocess(image),
        }
    }
}

/// Model + tokenizer + template + image processor.
#[derive(Debug)]
pub struct Vlm {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub template: ChatTemplate,
    /// `None` for a text-only model.
    pub image_processor: Option<ImageProcessor>,
    /// Image tokens per tile.
    pub image_seq_len: usize,
    /// Ids that end a reply (config EOS, tokenizer EOS, `<end_of_utterance>`).
    pub stop_ids: Vec<u32>,
}

impl Vlm {
    /// Load a model from `source` onto `device`, weights as stored.
    pub fn load(source: &dyn ModelSource, device: &Device) -> Result<Self> {
        Self::load_with(source, device, None)
    }

    /// Load, quantising a Hugging Face checkpoint's linear weights to `quant` on the way (a
    /// packed model is already quantised; `quant` must then be `None` or its own scheme).
    pub fn load_with(source: &dyn ModelSource, device: &Device, quant: Option<QuantScheme>) -> Result<Self> {
        // A llama.cpp-style directory (a text GGUF, plus an mmproj GGUF for images) may carry no
        // config.json: then config, tokenizer, chat template and image processor come from the
        // GGUF metadata.
        let overlay = GgufMetadataSource::new(source)?;
        let source: &dyn ModelSource = &overlay;
        let parts = Parts::read(source)?;
        let options = LoadOptions { quant, tied_lm_head: parts.config.tied_embeddings() };
        let store = WeightStore::load(source, device, options)?;
        parts.assemble(store)
    }

    pub fn config(&self) -> &ModelConfig {
        self.model.config()
    }

    /// Render one user turn (image first, then text) with the generation prompt, preprocess the
    /// image, expand its tokens and tokenize: `processor(apply_chat_template(...), images)`.
    pub fn prepare(&self, text: &str, image: Option<&RgbImage>) -> Result<PreparedPrompt> {
        self.prepare_chat(&[Message::user(text, image.is_some())], image)
    }

    /// Same for a whole conversation; `image` fills the conversation's one `<image>`.
    pub fn prepare_chat(&self, messages: &[Message], image: Option<&RgbImage>) -> Result<PreparedPrompt> {
        self.prepare_chat_with(messages, image, None)
    }

    /// [`Vlm::prepare_chat`], with the model's `do_image_splitting` overridden when
    /// `image_splitting` is given (one tile instead of many: faster, less detail).
    pub fn prepare_chat_with(&self, messages: &[Message], image: Option<&RgbImage>, image_splitting: Option<bool>) -> Result<PreparedPrompt> {
        let rendered = self.template.render(messages, true)?;
        let processed = match (image, &self.image_processor) {
            (Some(img), Some(processor)) => Some(processor.preprocess(img, image_splitting)?),
            (Some(_), None) => return Err(ModelError::NoVision { model_type: self.config().model_type.clone() }),
            (None, _) => None,
        };
        let expanded = match self.config().family {
            Family::Idefics3 => {
                let layout: Vec<(usize, usize)> = processed.iter().map(|p| (p.rows, p.cols)).collect();
                expand_images(&rendered, &layout, self.image_seq_len)?
            }
            _ if self.model.has_vision() => {
                let token = self.tokenizer.id_to_token(self.config().image_token_id).unwrap_or_else(|| IMAGE_TOKEN.to_string());
                let merge = self.config().vision_config.spatial_merge_size.max(1);
                let count = |p: &ProcessedImage| match p.patch_grid {
                    Some((gh, gw)) => gh * gw / (merge * merge),
                    None => self.image_seq_len * p.num_tiles,
                };
                let expansions: Vec<String> = processed.iter().map(|p| token.repeat(count(p))).collect();
                expand_placeholders(&rendered, &token, &expansions)?
            }
            _ => rendered.clone(),
        };
        let input_ids = self.tokenizer.encode(&expanded)?;
        let context = self.model.context_length();
        if input_ids.len() >= context {
            return Err(ModelError::ContextOverflow { tokens: input_ids.len(), context });
        }
        let grids: Vec<(usize, usize)> = processed.iter().filter_map(|p| p.patch_grid).collect();
        let positions = self.model.mrope_positions(&input_ids, &grids)?;
        Ok(PreparedPrompt { rendered, input_ids, image: processed, positions })
    }

    /// Embeddings of a prepared prompt, with the image encoded and merged.
    ///
    /// # Shapes
    /// → `[input_ids.len(), text_hidden]`
    pub fn embed_prompt(&self, prompt: &PreparedPrompt) -> Result<Tensor<2>> {
        let features = match &prompt.image {
            Some(img) => Some(self.model.encode_image(img)?),
            None => None,
        };
        self.model.embed(&prompt.input_ids, features.as_ref())
    }
}

/// Everything of a model but its weights: config, tokenizer, chat template, image processor.
struct Parts {
    config: ModelConfig,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    image_processor: Option<ImageProcessor>,
    image_seq_len: usize,
    stop_ids: Vec<u32>,
}

impl Parts {
    fn read(source: &dyn ModelSource) -> Result<Self> {
        let config_text = source.read_string("config.json")?.ok_or_else(|| ModelError::MissingFile {
            file: "config.json".into(),
            why: format!("{} is not a Hugging Face, packed or GGUF model directory", source.describe()),
        })?;
        let config = ModelConfig::from_json(&config_text)?;

        let tokenizer_json = source.read("tokenizer.json")?.ok_or_else(|| ModelError::MissingFile {
            file: "tokenizer.json".into(),
            why: "the tokenizer is required".into(),
        })?;
        let tokenizer = Tokenizer::from_bytes(&tokenizer_json)?;
        let tok_cfg: serde_json::Value = match source.read_string("tokenizer_config.json")? {
            Some(t) => serde_json::from_str(&t).map_err(|e| ModelError::config("tokenizer_config.json", e.to_string()))?,
            None => serde_json::Value::Null,
        };
        let bos = special_token(&tok_cfg, "bos_token");
        let eos = special_token(&tok_cfg, "eos_token");
        let template = ChatTemplate::new(&chat_template(source, &tok_cfg)?, &bos, &eos)?.with_text_content(config.text_only);

        let (image_processor, image_seq_len) = if config.text_only {
            (None, 0)
        } else {
            let processor: serde_json::Value = match source.read_string("processor_config.json")? {
                Some(t) => serde_json::from_str(&t).map_err(|e| ModelError::config("processor_config.json", e.to_string()))?,
                None => serde_json::Value::Null,
            };
            let image_seq_len = config.image_seq_len();
            if config.family == Family::Idefics3 {
                if let Some(n) = processor.get("image_seq_len").and_then(|v| v.as_u64()) {
                    if n as usize != image_seq_len {
                        return Err(ModelError::config(
                            "processor_config.json",
                            format!(
                                "image_seq_len {n} does not match the model's {image_seq_len} ((image_size/patch_size)^2 / scale_factor^2)"
                            ),
                        ));
                    }
                }
            }
            (Some(image_processor_config(source, &processor, &config)?), image_seq_len)
        };

        let mut stop_ids = config.text_config.eos_token_ids();
        for token in [eos.as_str(), END_OF_UTTERANCE] {
            if let Some(id) = tokenizer.token_id(token) {
                stop_ids.push(id);
            }
        }
        if let Some(gen_cfg) = source.read_string("generation_config.json")? {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&gen_cfg) {
                match v.get("eos_token_id") {
                    Some(serde_json::Value::Number(n)) => stop_ids.extend(n.as_u64().map(|x| x as u32)),
                    Some(serde_json::Value::Array(a)) => stop_ids.extend(a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32)),
                    _ => {}
                }
            }
        }
        stop_ids.sort_unstable();
        stop_ids.dedup();
        Ok(Self { config, tokenizer, template, image_processor, image_seq_len, stop_ids })
    }

    fn assemble(self, store: WeightStore) -> Result<Vlm> {
        let model = Model::load(store, &self.config)?;
        let Self { tokenizer, template, image_processor, image_seq_len, stop_ids, .. } = self;
        Ok(Vlm { model, tokenizer, template, image_processor, image_seq_len, stop_ids })
    }
}

/// A packed model loaded one shard at a time by a caller that reads the shards itself (the
/// browser's worker awaits between shards, so an abort lands within one and the page's other
/// model stays in use until [`PackedLoad::finish`]). Dropping it frees what was uploaded.
pub struct PackedLoad {
    parts: Parts,
    options: LoadOptions,
    store: WeightStore,
    reader: ShardReader,
}

impl PackedLoad {
    /// Read the manifest and the small files (config, tokenizer, processor settings) from
    /// `source`; the shards are fed afterwards, in [`PackedLoad::next_shard`] order.
    pub fn begin(source: &dyn ModelSource, device: &Device) -> Result<Self> {
        let text = source.read_string(packed::MANIFEST)?.ok_or_else(|| ModelError::MissingFile {
            file: packed::MANIFEST.into(),
            why: format!("{} is not a packed model", source.describe()),
        })?;
        let reader = ShardReader::new(packed::Manifest::from_json(&text)?);
        let parts = Parts::read(source)?;
        let options = LoadOptions { quant: None, tied_lm_head: parts.config.tied_embeddings() };
        Ok(Self { parts, options, store: WeightStore::empty(device), reader })
    }

    /// The shard to feed next (`None`: all were).
    pub fn next_shard(&self) -> Option<&FileEntry> {
        self.reader.next_shard()
    }

    /// Every shard, in feeding order.
    pub fn shards(&self) -> &[FileEntry] {
        &self.reader.manifest().shards
    }

    /// Upload the tensors `bytes` (the next shard) completes.
    pub fn feed(&mut self, bytes: &[u8], check: Check) -> Result<()> {
        self.store.feed_packed(&mut self.reader, bytes, check, self.options)
    }

    /// The model, once every shard was fed.
    pub fn finish(self) -> Result<Vlm> {
        self.reader.finish()?;
        self.parts.assemble(self.store)
    }
}

/// `bos_token` / `eos_token` from tokenizer_config.json: a string or an AddedToken object.
fn special_token(cfg: &serde_json::Value, key: &str) -> String {
    match cfg.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Object(o)) => o.get("content").and_then(|c| c.as_str()).unwrap_or("").to_string(),
        _ => String::new(),
    }
}

/// The chat template, looked up where transformers 5 and 4 put it.
fn chat_template(source: &dyn ModelSource, tok_cfg: &serde_json::Value) -> Result<String> {
    if let Some(t) = source.read_string("chat_template.jinja")? {
        return Ok(t);
    }
    if let Some(t) = source.read_string("chat_template.json")? {
        let v: serde_json::Value =
            serde_json::from_str(&t).map_err(|e| ModelError::config("chat_template.json", e.to_string()))?;
        if let Some(s) = v.get("chat_template").and_then(|s| s.as_str()) {
            return Ok(s.to_string());
        }
    }
    match tok_cfg.get("chat_template") {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .and_then(|t| t.get("template")?.as_str())
            .map(str::to_string)
            .ok_or_else(|| ModelError::config("tokenizer_config.json", "no template named `default`")),
        _ => Err(ModelError::MissingFile {
            file: "chat_template.jinja".into(),
            why: "no chat template in chat_template.jinja, chat_template.json or tokenizer_config.json".into(),
        }),
    }
}

/// Image processor settings: `preprocessor_config.json` (transformers 4) or the
/// `image_processor` object inside `processor_config.json` (transformers 5), read as the
/// family's processor.
fn image_processor_config(source: &dyn ModelSource, processor: &serde_json::Value, config: &ModelConfig) -> Result<ImageProcessor> {
    let (file, value) = if let Some(t) = source.read_string("preprocessor_config.json")? {
        let v: serde_json::Value =
            serde_json::from_str(&t).map_err(|e| ModelError::config("preprocessor_config.json", e.to_string()))?;
        ("preprocessor_config.json", v)
    } else if let Some(v) = processor.get("image_processor") {
        ("processor_config.json", v.clone())
    } else {
        return Err(ModelError::MissingFile {
            file: "preprocessor_config.json".into(),
            why: "no image processor settings (nor an `image_processor` in processor_config.json)".into(),
        });
    };
    let bad = |e: String| ModelError::config(file, e);
    Ok(match config.family {
        Family::Llava => {
            let p: ClipProcessorConfig = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
            p.validate()?;
            ImageProcessor::Clip(p)
        }
        Family::Qwen2Vl | Family::Qwen25Vl => {
            let p: Qwen2VlProcessorConfig = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
            p.validate()?;
            let v = &config.vision_config;
            if (p.patch_size, p.merge_size, p.temporal_patch_size) != (v.patch_size, v.spatial_merge_size, v.temporal_patch_size) {
                return Err(bad(format!(
                    "patch_size {} / merge_size {} / temporal_patch_size {} differ from the vision tower's {} / {} / {}",
                    p.patch_size, p.merge_size, p.temporal_patch_size, v.patch_size, v.spatial_merge_size, v.temporal_patch_size
                )));
            }
            ImageProcessor::Qwen2Vl(p)
        }
        _ => ImageProcessor::Idefics3(serde_json::from_value(value).map_err(|e| bad(e.to_string()))?),
    })
}
