//! `config.json` of every supported checkpoint, as written by `transformers`, read into one
//! [`ModelConfig`]: a vision tower (absent for text-only models), a connector and a decoder.
//!
//! Each family's missing fields take the defaults of its transformers config classes (5.23):
//! `ModelConfig` / `Idefics3VisionConfig`, `LlavaConfig` / `CLIPVisionConfig`, and the
//! decoders' `LlamaConfig`, `Qwen2Config`, `PhiConfig`. Both the classic `rope_theta` field and
//! the transformers-5 `rope_parameters` object are read.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ModelError, Result};

const FILE: &str = "config.json";

/// A model family: one graph layout and one set of checkpoint names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// SmolVLM / Idefics3: SigLIP tower, pixel-shuffle connector, Llama decoder.
    Idefics3,
    /// LLaVA-1.5 (and MobileVLM-style LLaVA checkpoints): CLIP tower, 2-layer MLP projector.
    Llava,
    /// Text-only Llama decoders (SmolLM2, Llama 2/3 without rope scaling).
    Llama,
    /// Text-only Qwen2 / Qwen2.5 decoders (q/k/v bias).
    Qwen2,
    /// Text-only Phi-2 (parallel attention + MLP, partial rotary, LayerNorm, GELU).
    Phi,
    /// Qwen2-VL: ViT over dynamic-resolution patches with 2-D RoPE, 2×2 patch merger, Qwen2
    /// decoder with M-RoPE.
    Qwen2Vl,
    /// Qwen2.5-VL: Qwen2-VL with RMSNorm/SwiGLU vision blocks and windowed attention.
    Qwen25Vl,
}

/// Every family, in the order they are documented.
pub const FAMILIES: &[Family] =
    &[Family::Idefics3, Family::Llava, Family::Qwen2Vl, Family::Qwen25Vl, Family::Llama, Family::Qwen2, Family::Phi];

impl Family {
    /// The family a top-level `model_type` selects.
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        FAMILIES.iter().copied().find(|f| f.model_types().contains(&model_type))
    }

    /// `model_type` values of this family.
    pub fn model_types(self) -> &'static [&'static str] {
        match self {
            Self::Idefics3 => &["idefics3", "smolvlm"],
            Self::Llava => &["llava"],
            Self::Llama => &["llama"],
            Self::Qwen2 => &["qwen2"],
            Self::Phi => &["phi"],
            Self::Qwen2Vl => &["qwen2_vl"],
            Self::Qwen25Vl => &["qwen2_5_vl"],
        }
    }

    /// The transformers classes whose checkpoints this family loads.
    pub fn architectures(self) -> &'static [&'static str] {
        match self {
            Self::Idefics3 => &["Idefics3ForConditionalGeneration", "SmolVLMForConditionalGeneration"],
            Self::Llava => &["LlavaForConditionalGeneration"],
            Self::Llama => &["LlamaForCausalLM"],
            Self::Qwen2 => &["Qwen2ForCausalLM"],
            Self::Phi => &["PhiForCausalLM"],
            Self::Qwen2Vl => &["Qwen2VLForConditionalGeneration"],
            Self::Qwen25Vl => &["Qwen2_5_VLForConditionalGeneration"],
        }
    }

    /// A human name for `webvlm info` and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Idefics3 => "SmolVLM / Idefics3",
            Self::Llava => "LLaVA",
            Self::Llama => "Llama",
            Self::Qwen2 => "Qwen2",
            Self::Phi => "Phi",
            Self::Qwen2Vl => "Qwen2-VL",
            Self::Qwen25Vl => "Qwen2.5-VL",
        }
    }

    /// Whether the family has a vision tower.
    pub fn has_vision(self) -> bool {
        matches!(self, Self::Idefics3 | Self::Llava | Self::Qwen2Vl | Self::Qwen25Vl)
    }

    /// Whether the decoder uses multimodal RoPE (t, h, w positions per token).
    pub fn mrope(self) -> bool {
        matches!(self, Self::Qwen2Vl | Self::Qwen25Vl)
    }

    /// The decoder of a text-only family.
    fn text_decoder(self) -> Option<DecoderKind> {
        match self {
            Self::Llama => Some(DecoderKind::Llama),
            Self::Qwen2 => Some(DecoderKind::Qwen2),
            Self::Phi => Some(DecoderKind::Phi),
            Self::Idefics3 | Self::Llava | Self::Qwen2Vl | Self::Qwen25Vl => None,
        }
    }
}

/// `model_type` values this runtime implements, comma-separated (for error messages).
pub fn supported_model_types() -> String {
    FAMILIES.iter().flat_map(|f| f.model_types()).copied().collect::<Vec<_>>().join(", ")
}

/// Architecture classes this runtime implements, comma-separated (for error messages).
pub fn supported_architectures() -> String {
    FAMILIES.iter().flat_map(|f| f.architectures()).copied().collect::<Vec<_>>().join(", ")
}

/// The decoder layout: which projections carry biases, which norm and MLP, how blocks combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecoderKind {
    /// `LlamaDecoderLayer`: RMSNorm, SwiGLU, biases only with `attention_bias` / `mlp_bias`.
    #[default]
    Llama,
    /// `Qwen2DecoderLayer`: Llama with bias on q/k/v (not o).
    Qwen2,
    /// `PhiDecoderLayer`: one LayerNorm feeding attention and MLP in parallel, partial rotary,
    /// GELU MLP (fc1/fc2), biases everywhere, `final_layernorm`, lm_head with bias.
    Phi,
}

impl DecoderKind {
    fn from_model_type(model_type: &str) -> Option<Self> {
        match model_type {
            "llama" => Some(Self::Llama),
            "qwen2" => Some(Self::Qwen2),
            "phi" => Some(Self::Phi),
            _ => None,
        }
    }

    /// Defaults of the transformers config class for fields a checkpoint may omit.
    fn defaults(self) -> Value {
        match self {
            Self::Llama => json!({
                "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                "num_attention_heads": 32, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "hidden_act": "silu",
            }),
            Self::Qwen2 => json!({
                "vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32,
                "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 32768,
                "rms_norm_eps": 1e-6, "hidden_act": "silu",
            }),
            Self::Phi => json!({
                "vocab_size": 51200, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24,
                "num_attention_heads": 32, "max_position_embeddings": 2048, "layer_norm_eps": 1e-5,
                "hidden_act": "gelu_new", "partial_rotary_factor": 0.5,
            }),
        }
    }
}

/// The vision tower layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VisionKind {
    /// Idefics3's SigLIP: patch conv with bias, no class token, `post_layernorm` applied.
    #[default]
    Siglip,
    /// CLIP (LLaVA): bias-free patch conv, class token, `pre_layrnorm`; LLaVA takes a hidden
    /// state before `post_layernorm`.
    Clip,
    /// Qwen2-VL: Conv3d patches, 2-D RoPE, LayerNorm + GELU-MLP blocks, fused qkv.
    Qwen2Vl,
    /// Qwen2.5-VL: RMSNorm + SwiGLU blocks, windowed attention outside `fullatt_block_indexes`.
    Qwen25Vl,
}

/// Which vision tokens LLaVA hands to the projector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureSelect {
    /// Drop the class token (`"default"`).
    Patches,
    /// Keep it (`"full"`).
    Full,
}

/// A model's `config.json`, normalised: text-only checkpoints (whose config *is* the decoder's)
/// get their fields moved under `text_config`.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelConfig {
    /// As written; one of [`Family::model_types`].
    pub model_type: String,
    /// Class names, e.g. `["Idefics3ForConditionalGeneration"]`.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// The vision tower (unused by a text-only model).
    #[serde(default)]
    pub vision_config: VisionConfig,
    /// The decoder.
    pub text_config: TextConfig,
    /// Idefics3: pixel-shuffle factor of the connector (each side of the patch grid shrinks by it).
    #[serde(default = "default_scale_factor")]
    pub scale_factor: usize,
    /// Token id of the image placeholder, whose embeddings are replaced by image features.
    #[serde(default = "default_image_token_id", alias = "image_token_index")]
    pub image_token_id: u32,
    /// Whether `lm_head` shares the token embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// LLaVA: which hidden state of the tower feeds the projector (negative: from the end;
    /// `hidden_states[0]` is the embedding output).
    #[serde(default = "default_feature_layer")]
    pub vision_feature_layer: Value,
    /// LLaVA: `"default"` (drop the class token) or `"full"`.
    #[serde(default = "default_select_strategy")]
    pub vision_feature_select_strategy: String,
    /// LLaVA: the projector's activation.
    #[serde(default = "default_projector_act")]
    pub projector_hidden_act: String,
    /// LLaVA: whether the projector's linears carry biases.
    #[serde(default = "default_true")]
    pub multimodal_projector_bias: bool,
    /// The family `model_type` selects.
    #[serde(skip, default = "default_family")]
    pub family: Family,
    /// A text-only checkpoint: no vision tower, no connector.
    #[serde(skip)]
    pub text_only: bool,
}

impl Default for VisionConfig {
    fn default() -> Self {
        serde_json::from_value(json!({})).expect("every VisionConfig field has a default")
    }
}

/// `vision_config` (Idefics3VisionConfig or CLIPVisionConfig).
#[derive(Debug, Clone, Deserialize)]
pub struct VisionConfig {
    /// Width of the vision transformer.
    #[serde(default = "d_vision_hidden")]
    pub hidden_size: usize,
    /// Width of the MLP inside each vision layer.
    #[serde(default = "d_vision_intermediate")]
    pub intermediate_size: usize,
    /// Number of encoder layers.
    #[serde(default = "d_vision_layers")]
    pub num_hidden_layers: usize,
    /// Attention heads per layer (head_dim = hidden_size / heads).
    #[serde(default = "d_vision_heads")]
    pub num_attention_heads: usize,
    /// Input channels (RGB).
    #[serde(default = "d_channels")]
    pub num_channels: usize,
    /// Side of the square tile the tower sees, in pixels.
    #[serde(default = "d_image_size")]
    pub image_size: usize,
    /// Side of a square patch, in pixels.
    #[serde(default = "d_patch_size")]
    pub patch_size: usize,
    /// MLP activation: `gelu_pytorch_tanh` (SigLIP), `quick_gelu` (CLIP) or `gelu` (erf).
    #[serde(default = "d_vision_act")]
    pub hidden_act: String,
    /// LayerNorm epsilon.
    #[serde(default = "d_ln_eps")]
    pub layer_norm_eps: f64,
    /// Qwen-VL: frames per patch along time (an image is repeated to fill them).
    #[serde(default = "d_temporal")]
    pub temporal_patch_size: usize,
    /// Qwen-VL: side of the patch block the merger folds into one token.
    #[serde(default = "d_temporal")]
    pub spatial_merge_size: usize,
    /// Qwen-VL: width of the merger's output (the decoder's hidden size).
    #[serde(default)]
    pub out_hidden_size: usize,
    /// Qwen2.5-VL: side of an attention window, in pixels.
    #[serde(default)]
    pub window_size: usize,
    /// Qwen2.5-VL: blocks that attend over the whole image instead of windows.
    #[serde(default)]
    pub fullatt_block_indexes: Vec<usize>,
    /// The tower's layout, from the family.
    #[serde(skip)]
    pub kind: VisionKind,
}

/// `text_config` (LlamaConfig, Qwen2Config or PhiConfig).
#[derive(Debug, Clone, Deserialize)]
pub struct TextConfig {
    /// `llama`, `qwen2` or `phi`.
    #[serde(default = "d_text_type")]
    pub model_type: String,
    /// Vocabulary size (rows of the embedding and of lm_head).
    pub vocab_size: usize,
    /// Width of the decoder.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); defaults to the query heads.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; defaults to hidden_size / num_attention_heads.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// RMSNorm epsilon (Llama, Qwen2).
    #[serde(default = "d_rms_eps")]
    pub rms_norm_eps: f64,
    /// LayerNorm epsilon (Phi).
    #[serde(default = "d_ln_eps_text")]
    pub layer_norm_eps: f64,
    /// Fraction of each head's width that is rotated (Phi); the rest passes through.
    #[serde(default)]
    pub partial_rotary_factor: Option<f64>,
    /// Classic RoPE base (transformers 4.x).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// transformers-5 RoPE description: `{rope_theta, rope_type, ...}`.
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    /// transformers-4 RoPE scaling (only `null` / `default` are supported).
    #[serde(default)]
    pub rope_scaling: Option<RopeParameters>,
    /// Context window in tokens.
    #[serde(default = "d_max_pos")]
    pub max_position_embeddings: usize,
    /// MLP activation: `silu` for the gated MLP (Llama, Qwen2), a GELU for Phi.
    #[serde(default = "d_text_act")]
    pub hidden_act: String,
    /// Llama: bias on q/k/v/o projections.
    #[serde(default)]
    pub attention_bias: bool,
    /// Llama: bias on the MLP projections.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Phi: LayerNorm on queries and keys (not implemented; refused).
    #[serde(default)]
    pub qk_layernorm: bool,
    /// Qwen2: sliding-window attention (not implemented; refused when on).
    #[serde(default)]
    pub use_sliding_window: bool,
    /// Tie lm_head to the embeddings (some checkpoints put it here rather than at the top).
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    /// End-of-sequence id(s): an int or a list.
    #[serde(default)]
    pub eos_token_id: Option<Value>,
    /// Beginning-of-sequence id.
    #[serde(default)]
    pub bos_token_id: Option<Value>,
    /// The decoder's layout, from `model_type`.
    #[serde(skip)]
    pub decoder: DecoderKind,
}

/// RoPE description (`rope_parameters` in transformers 5, `rope_scaling` before).
#[derive(Debug, Clone, Deserialize)]
pub struct RopeParameters {
    /// Base of the rotary frequencies.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// `default` is the only type implemented.
    #[serde(default, alias = "type")]
    pub rope_type: Option<String>,
    /// Phi in transformers 5 keeps its partial rotary factor here.
    #[serde(default)]
    pub partial_rotary_factor: Option<f64>,
    /// Qwen-VL's M-RoPE: how many of the head_dim/2 frequencies follow the t, h and w positions.
    #[serde(default)]
    pub mrope_section: Option<Vec<usize>>,
}

fn default_family() -> Family {
    Family::Idefics3
}
fn default_scale_factor() -> usize {
    2
}
fn default_image_token_id() -> u32 {
    128257
}
fn default_feature_layer() -> Value {
    json!(-2)
}
fn default_select_strategy() -> String {
    "default".into()
}
fn default_projector_act() -> String {
    "gelu".into()
}
fn default_true() -> bool {
    true
}
fn d_vision_hidden() -> usize {
    1152
}
fn d_vision_intermediate() -> usize {
    3072
}
fn d_vision_layers() -> usize {
    12
}
fn d_vision_heads() -> usize {
    16
}
fn d_channels() -> usize {
    3
}
fn d_image_size() -> usize {
    224
}
fn d_patch_size() -> usize {
    32
}
fn d_vision_act() -> String {
    "gelu_pytorch_tanh".into()
}
fn d_temporal() -> usize {
    2
}
fn d_ln_eps() -> f64 {
    1e-6
}
fn d_ln_eps_text() -> f64 {
    1e-5
}
fn d_text_type() -> String {
    "llama".into()
}
fn d_rms_eps() -> f64 {
    1e-6
}
fn d_max_pos() -> usize {
    2048
}
fn d_text_act() -> String {
    "silu".into()
}

/// An activation function, by its transformers name (`ACT2FN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// tanh approximation (`gelu_pytorch_tanh`, `gelu_new`, `gelu_fast`).
    GeluTanh,
    /// exact erf GELU (`gelu`).
    Gelu,
    /// `x·sigmoid(1.702x)` (`quick_gelu`, CLIP).
    QuickGelu,
    /// `x·sigmoid(x)` (`silu`).
    Silu,
}

impl Activation {
    /// Parse `what`'s activation name.
    pub fn parse(name: &str, what: &str) -> Result<Self> {
        match name {
            "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Ok(Self::GeluTanh),
            "gelu" => Ok(Self::Gelu),
            "quick_gelu" => Ok(Self::QuickGelu),
            "silu" | "swish" => Ok(Self::Silu),
            other => Err(ModelError::config(
                FILE,
                format!("{what} `{other}` is not supported (gelu, gelu_new, gelu_pytorch_tanh, quick_gelu, silu)"),
            )),
        }
    }
}

/// Fill `fields` missing from `target` (an object; `null` counts as missing).
fn merge_defaults(target: &mut Value, defaults: Value) {
    if !target.is_object() {
        *target = json!({});
    }
    if let (Some(t), Value::Object(d)) = (target.as_object_mut(), defaults) {
        for (k, v) in d {
            if t.get(&k).is_none_or(Value::is_null) {
                t.insert(k, v);
            }
        }
    }
}

impl ModelConfig {
    /// Parse and validate `config.json`.
    pub fn from_json(text: &str) -> Result<Self> {
        let raw: Value = serde_json::from_str(text).map_err(|e| ModelError::config(FILE, e.to_string()))?;
        let model_type = raw.get("model_type").and_then(Value::as_str).unwrap_or("<missing>");
        let family = Family::from_model_type(model_type).ok_or_else(|| ModelError::UnsupportedModel {
            found: format!("model_type `{model_type}`"),
            supported: format!("model_type {}", supported_model_types()),
        })?;
        let architectures: Vec<String> = raw
            .get("architectures")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        if !architectures.is_empty() && !architectures.iter().any(|a| family.architectures().contains(&a.as_str())) {
            return Err(ModelError::UnsupportedModel {
                found: format!("architectures {architectures:?} (model_type `{model_type}`)"),
                supported: format!("architectures {}", supported_architectures()),
            });
        }
        let normalised = match family.text_decoder() {
            // A text-only config.json is the decoder's config itself.
            Some(kind) => {
                let mut text = raw.clone();
                merge_defaults(&mut text, kind.defaults());
                json!({
                    "model_type": model_type,
                    "architectures": architectures,
                    "tie_word_embeddings": raw.get("tie_word_embeddings").cloned().unwrap_or(json!(false)),
                    "text_config": text,
                })
            }
            None if family == Family::Llava => llava_with_defaults(raw)?,
            None if family.mrope() => qwen_vl_normalised(raw, family)?,
            None => raw,
        };
        let mut config: Self =
            serde_json::from_value(normalised).map_err(|e| ModelError::config(FILE, e.to_string()))?;
        config.family = family;
        config.text_only = !family.has_vision();
        config.vision_config.kind = match family {
            Family::Llava => VisionKind::Clip,
            Family::Qwen2Vl => VisionKind::Qwen2Vl,
            Family::Qwen25Vl => VisionKind::Qwen25Vl,
            _ => VisionKind::Siglip,
        };
        let text_type = config.text_config.model_type.as_str();
        let allowed: &[&str] = match family {
            Family::Idefics3 => &["llama"],
            Family::Llava => &["llama", "qwen2", "phi"],
            Family::Qwen2Vl | Family::Qwen25Vl => &["qwen2"],
            _ => family.model_types(),
        };
        config.text_config.decoder = match DecoderKind::from_model_type(text_type) {
            Some(kind) if allowed.contains(&text_type) => kind,
            _ => {
                return Err(ModelError::UnsupportedModel {
                    found: format!("text_config.model_type `{text_type}` in a {} model", family.name()),
                    supported: allowed.join(", "),
                });
            }
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if self.text_only {
            return self.validate_text();
        }
        let v = &self.vision_config;
        let bad = |m: String| Err(ModelError::config(FILE, m));
        if v.patch_size == 0 || v.image_size % v.patch_size != 0 {
            return bad(format!(
                "vision_config.image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        if v.num_attention_heads == 0 || v.hidden_size % v.num_attention_heads != 0 {
            return bad(format!(
                "vision_config.hidden_size {} is not divisible by num_attention_heads {}",
                v.hidden_size, v.num_attention_heads
            ));
        }
        match self.family {
            Family::Idefics3 => {
                let side = self.patches_per_side();
                if self.scale_factor == 0 || side % self.scale_factor != 0 {
                    return bad(format!("scale_factor {} does not divide the patch grid side {side}", self.scale_factor));
                }
            }
            Family::Llava => {
                self.feature_layer()?;
                self.feature_select()?;
                self.projector_activation()?;
            }
            Family::Qwen2Vl | Family::Qwen25Vl => {
                let m = v.spatial_merge_size;
                if m == 0 || v.temporal_patch_size == 0 || v.out_hidden_size == 0 {
                    return bad("vision_config: spatial_merge_size, temporal_patch_size and the merger width must be at least 1".into());
                }
                let hd = v.hidden_size / v.num_attention_heads;
                if hd % 4 != 0 {
                    return bad(format!("vision head_dim {hd} must be a multiple of 4 for the 2-D rotary embedding"));
                }
                if self.family == Family::Qwen25Vl && (v.window_size == 0 || v.window_size % (m * v.patch_size) != 0) {
                    return bad(format!(
                        "vision_config.window_size {} must be a positive multiple of patch_size × spatial_merge_size",
                        v.window_size
                    ));
                }
                let section = self.text_config.mrope_section().unwrap_or_default();
                if section.len() != 3 || section.iter().sum::<usize>() * 2 != self.text_config.head_dim() {
                    return bad(format!(
                        "rope mrope_section {section:?} must be three numbers summing to head_dim/2 = {}",
                        self.text_config.head_dim() / 2
                    ));
                }
            }
            _ => {}
        }
        self.vision_activation()?;
        self.validate_text()
    }

    fn validate_text(&self) -> Result<()> {
        let t = &self.text_config;
        let bad = |m: String| Err(ModelError::config(FILE, m));
        let act = Activation::parse(&t.hidden_act, "text_config.hidden_act")?;
        match t.decoder {
            DecoderKind::Llama | DecoderKind::Qwen2 if act != Activation::Silu => {
                return bad(format!("text_config.hidden_act `{}` is not supported by the gated MLP (only silu)", t.hidden_act));
            }
            DecoderKind::Phi if act == Activation::Silu => {
                return bad(format!("text_config.hidden_act `{}` is not supported by Phi's MLP (a GELU)", t.hidden_act));
            }
            _ => {}
        }
        if t.num_attention_heads == 0 || t.num_key_value_heads() == 0 || t.num_attention_heads % t.num_key_value_heads() != 0 {
            return bad(format!(
                "text_config.num_attention_heads {} is not a multiple of num_key_value_heads {}",
                t.num_attention_heads,
                t.num_key_value_heads()
            ));
        }
        let rot = t.rotary_dim();
        if rot == 0 || rot % 2 != 0 || rot > t.head_dim() {
            return bad(format!(
                "text_config: the rotary width {rot} (head_dim {} × partial_rotary_factor) must be even and at most head_dim",
                t.head_dim()
            ));
        }
        if t.qk_layernorm {
            return bad("text_config.qk_layernorm is not supported".into());
        }
        if t.use_sliding_window {
            return bad("text_config.use_sliding_window is not supported (full attention only)".into());
        }
        t.rope_theta()?;
        Ok(())
    }

    /// The vision MLP activation.
    pub fn vision_activation(&self) -> Result<Activation> {
        Activation::parse(&self.vision_config.hidden_act, "vision_config.hidden_act")
    }

    /// LLaVA's projector activation.
    pub fn projector_activation(&self) -> Result<Activation> {
        Activation::parse(&self.projector_hidden_act, "projector_hidden_act")
    }

    /// LLaVA: index into the tower's hidden states (0 = embeddings, i = after layer i), which is
    /// also how many layers have to run.
    pub fn feature_layer(&self) -> Result<usize> {
        let layers = self.vision_config.num_hidden_layers as i64;
        let bad = || {
            ModelError::config(
                FILE,
                format!(
                    "vision_feature_layer {} is not supported: one integer in -{}..={layers} (a list of layers is not implemented)",
                    self.vision_feature_layer,
                    layers + 1
                ),
            )
        };
        let layer = self.vision_feature_layer.as_i64().ok_or_else(bad)?;
        let index = if layer < 0 { layers + 1 + layer } else { layer };
        if !(0..=layers).contains(&index) {
            return Err(bad());
        }
        Ok(index as usize)
    }

    /// LLaVA: which vision tokens the projector sees.
    pub fn feature_select(&self) -> Result<FeatureSelect> {
        match self.vision_feature_select_strategy.as_str() {
            "default" => Ok(FeatureSelect::Patches),
            "full" => Ok(FeatureSelect::Full),
            other => Err(ModelError::config(
                FILE,
                format!("vision_feature_select_strategy `{other}` is not supported (default, full)"),
            )),
        }
    }

    /// Patches per side of a tile.
    pub fn patches_per_side(&self) -> usize {
        self.vision_config.image_size / self.vision_config.patch_size
    }

    /// Image tokens per tile (0 for a text-only model): after Idefics3's pixel shuffle, or
    /// LLaVA's patches (plus the class token with the `full` strategy).
    pub fn image_seq_len(&self) -> usize {
        let side = self.patches_per_side();
        match self.family {
            Family::Idefics3 => (side / self.scale_factor.max(1)).pow(2),
            // Dynamic resolution: the count depends on each image (see the image processor).
            Family::Qwen2Vl | Family::Qwen25Vl => 0,
            Family::Llava => side * side + usize::from(self.feature_select().ok() == Some(FeatureSelect::Full)),
            _ => 0,
        }
    }

    /// Whether lm_head may be taken from the token embeddings.
    pub fn tied_embeddings(&self) -> bool {
        self.tie_word_embeddings || self.text_config.tie_word_embeddings.unwrap_or(false)
    }
}

/// A LLaVA config with `LlavaConfig`'s defaults: a CLIP ViT-L/14-336 tower when
/// `vision_config` is absent, `CLIPVisionConfig`'s defaults for fields it omits, and the
/// decoder's config class defaults for `text_config`.
fn llava_with_defaults(mut raw: Value) -> Result<Value> {
    let clip = json!({
        "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
        "num_channels": 3, "image_size": 224, "patch_size": 32, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
    });
    let vision = match raw.get("vision_config") {
        None | Some(Value::Null) => json!({
            "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
            "image_size": 336, "patch_size": 14,
        }),
        Some(v) => v.clone(),
    };
    let vision_type = vision.get("model_type").and_then(Value::as_str).unwrap_or("clip_vision_model");
    if vision_type != "clip_vision_model" {
        return Err(ModelError::UnsupportedModel {
            found: format!("vision_config.model_type `{vision_type}` in a LLaVA model"),
            supported: "clip_vision_model".into(),
        });
    }
    let mut vision = vision;
    merge_defaults(&mut vision, clip);
    let mut text = raw.get("text_config").cloned().unwrap_or(Value::Null);
    merge_defaults(&mut text, json!({ "model_type": "llama" }));
    let text_type = text["model_type"].as_str().unwrap_or("llama").to_string();
    if let Some(kind) = DecoderKind::from_model_type(&text_type) {
        merge_defaults(&mut text, kind.defaults());
    }
    raw["vision_config"] = vision;
    raw["text_config"] = text;
    if raw.get("image_token_id").is_none_or(Value::is_null) && raw.get("image_token_index").is_none_or(Value::is_null) {
        raw["image_token_id"] = json!(32000);
    }
    if let Some(index) = raw.as_object_mut().and_then(|o| o.remove("image_token_index")) {
        if raw.get("image_token_id").is_none_or(Value::is_null) {
            raw["image_token_id"] = index;
        }
    }
    Ok(raw)
}

/// A Qwen2-VL / Qwen2.5-VL config in the common shape: the decoder's fields (at the top level
/// in transformers 4 and on the Hub, under `text_config` in transformers 5) become a `qwen2`
/// text config, and the tower's names (`depth`, `embed_dim`, `num_heads`, ...) the common ones.
fn qwen_vl_normalised(mut raw: Value, family: Family) -> Result<Value> {
    let mut text = match raw.get("text_config") {
        Some(t) if t.is_object() => t.clone(),
        _ => {
            let mut t = raw.clone();
            if let Some(o) = t.as_object_mut() {
                o.remove("vision_config");
                o.remove("architectures");
            }
            t
        }
    };
    text["model_type"] = json!("qwen2");
    merge_defaults(&mut text, json!({
        "vocab_size": 152064, "hidden_size": 8192, "intermediate_size": 29568, "num_hidden_layers": 80,
        "num_attention_heads": 64, "num_key_value_heads": 8, "max_position_embeddings": 32768, "rms_norm_eps": 1e-5,
        "hidden_act": "silu",
    }));
    let mut v = raw.get("vision_config").cloned().unwrap_or(json!({}));
    let qwen2 = family == Family::Qwen2Vl;
    let defaults = if qwen2 {
        json!({"depth": 32, "embed_dim": 1280, "hidden_size": 3584, "hidden_act": "quick_gelu", "mlp_ratio": 4,
               "num_heads": 16, "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2})
    } else {
        json!({"depth": 32, "hidden_size": 3584, "hidden_act": "silu", "intermediate_size": 3420, "num_heads": 16,
               "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
               "out_hidden_size": 3584, "fullatt_block_indexes": [7, 15, 23, 31]})
    };
    merge_defaults(&mut v, defaults);
    let num = |key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
    let (width, out, inter) = if qwen2 {
        (num("embed_dim"), num("hidden_size"), num("embed_dim") * num("mlp_ratio"))
    } else {
        (num("hidden_size"), num("out_hidden_size"), num("intermediate_size"))
    };
    let mut vision = json!({
        "hidden_size": width, "out_hidden_size": out, "intermediate_size": inter,
        "num_hidden_layers": num("depth"), "num_attention_heads": num("num_heads"),
        "num_channels": v.get("in_channels").or(v.get("in_chans")).cloned().unwrap_or(json!(3)),
        "patch_size": num("patch_size"), "spatial_merge_size": num("spatial_merge_size"),
        "temporal_patch_size": num("temporal_patch_size"), "hidden_act": v["hidden_act"].clone(),
        "layer_norm_eps": 1e-6, "image_size": num("patch_size"),
    });
    if !qwen2 {
        vision["window_size"] = v["window_size"].clone();
        vision["fullatt_block_indexes"] = v["fullatt_block_indexes"].clone();
    }
    raw["vision_config"] = vision;
    raw["text_config"] = text;
    if raw.get("image_token_id").is_none_or(Value::is_null) {
        raw["image_token_id"] = json!(151655);
    }
    Ok(raw)
}

impl TextConfig {
    pub fn num_key_value_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Leading width of each head that RoPE rotates (`int(head_dim · partial_rotary_factor)`).
    pub fn rotary_dim(&self) -> usize {
        let factor = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.partial_rotary_factor)
            .or(self.partial_rotary_factor)
            .unwrap_or(1.0);
        (self.head_dim() as f64 * factor) as usize
    }

    /// The epsilon of the decoder's norms (RMSNorm, or LayerNorm for Phi).
    pub fn norm_eps(&self) -> f64 {
        match self.decoder {
            DecoderKind::Phi => self.layer_norm_eps,
            DecoderKind::Llama | DecoderKind::Qwen2 => self.rms_norm_eps,
        }
    }

    /// Qwen-VL's M-RoPE sections (t, h, w), when the config has them.
    pub fn mrope_section(&self) -> Option<Vec<usize>> {
        [&self.rope_parameters, &self.rope_scaling].into_iter().flatten().find_map(|p| p.mrope_section.clone())
    }

    /// The RoPE base, from whichever of the two config forms is present.
    pub fn rope_theta(&self) -> Result<f64> {
        for params in [&self.rope_parameters, &self.rope_scaling].into_iter().flatten() {
            if let Some(kind) = &params.rope_type {
                // `mrope` names Qwen-VL's sectioned RoPE, whose frequencies are the default ones.
                if kind != "default" && !(kind == "mrope" && params.mrope_section.is_some()) {
                    return Err(ModelError::config(
                        FILE,
                        format!("rope type `{kind}` is not supported (only `default`)"),
                    ));
                }
            }
        }
        let theta = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10000.0);
        if !(theta.is_finite() && theta > 1.0) {
            return Err(ModelError::config(FILE, format!("rope_theta {theta} is not a valid base")));
        }
        Ok(theta)
    }

    /// All end-of-sequence ids named by the config.
    pub fn eos_token_ids(&self) -> Vec<u32> {
        match &self.eos_token_id {
            Some(Value::Number(n)) => n.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_u64).map(|v| v as u32).collect(),
            _ => Vec::new(),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{"model_type":"idefics3","vision_config":{"hidden_size":32,"intermediate_size":64,
        "num_hidden_layers":1,"num_attention_heads":4,"image_size":32,"patch_size":8},
        "text_config":{"model_type":"llama","vocab_size":10,"hidden_size":16,"intermediate_size":32,
        "num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":2ROPE},"scale_factor":2}"#;

    fn with_rope(rope: &str) -> String {
        BASE.replace("ROPE", rope)
    }

    #[test]
    fn reads_both_rope_forms() {
        let classic = ModelConfig::from_json(&with_rope(r#","rope_theta":123456.0"#)).unwrap();
        assert_eq!(classic.text_config.rope_theta().unwrap(), 123456.0);
        let v5 = ModelConfig::from_json(&with_rope(
            r#","rope_parameters":{"rope_theta":777.0,"rope_type":"default"}"#,
        ))
        .unwrap();
        assert_eq!(v5.text_config.rope_theta().unwrap(), 777.0);
        assert_eq!(v5.image_seq_len(), 4);
        assert_eq!(v5.text_config.head_dim(), 4);
    }

    #[test]
    fn rejects_unknown_rope_type_and_model_type() {
        let e = ModelConfig::from_json(&with_rope(r#","rope_scaling":{"rope_type":"llama3","factor":8.0}"#))
            .unwrap_err();
        assert!(e.to_string().contains("llama3"), "{e}");
        let e = ModelConfig::from_json(&BASE.replace("idefics3", "qwen3_vl").replace("ROPE", "")).unwrap_err();
        assert!(matches!(e, ModelError::UnsupportedModel { .. }), "{e}");
        assert!(e.to_string().contains("qwen3_vl") && e.to_string().contains("idefics3"));
    }

    #[test]
    fn rejects_inconsistent_shapes() {
        let e = ModelConfig::from_json(&with_rope("").replace(r#""patch_size":8"#, r#""patch_size":5"#))
            .unwrap_err();
        assert!(e.to_string().contains("patch_size"), "{e}");
    }

    #[test]
    fn llava_1_5_config_as_on_the_hub_gets_transformers_defaults() {
        // The fields llava-hf/llava-1.5-7b-hf's config.json actually writes.
        let cfg = ModelConfig::from_json(
            r#"{"architectures":["LlavaForConditionalGeneration"],"ignore_index":-100,"image_token_index":32000,
            "model_type":"llava","pad_token_id":32001,"projector_hidden_act":"gelu",
            "text_config":{"architectures":["LlamaForCausalLM"],"max_position_embeddings":4096,"model_type":"llama",
              "rms_norm_eps":1e-05,"torch_dtype":"float16","vocab_size":32064},
            "tie_word_embeddings":false,"torch_dtype":"float16","transformers_version":"4.36.0.dev0",
            "vision_config":{"hidden_size":1024,"image_size":336,"intermediate_size":4096,"model_type":"clip_vision_model",
              "num_attention_heads":16,"num_hidden_layers":24,"patch_size":14,"projection_dim":768,"vocab_size":32000},
            "vision_feature_layer":-2,"vision_feature_select_strategy":"default","vocab_size":32064}"#,
        )
        .unwrap();
        assert_eq!(cfg.family, Family::Llava);
        assert_eq!(cfg.image_token_id, 32000);
        assert_eq!(cfg.image_seq_len(), 576);
        assert_eq!(cfg.feature_layer().unwrap(), 23);
        assert_eq!(cfg.vision_activation().unwrap(), Activation::QuickGelu);
        assert_eq!(cfg.vision_config.layer_norm_eps, 1e-5);
        let t = &cfg.text_config;
        assert_eq!((t.hidden_size, t.num_hidden_layers, t.num_attention_heads, t.intermediate_size), (4096, 32, 32, 11008));
        assert_eq!((t.vocab_size, t.max_position_embeddings, t.decoder), (32064, 4096, DecoderKind::Llama));
        let e = ModelConfig::from_json(
            r#"{"model_type":"llava","vision_feature_layer":[-2,-5],"text_config":{"model_type":"llama"}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("vision_feature_layer"), "{e}");
    }

    #[test]
    fn text_only_families_read_their_own_layouts() {
        let phi = ModelConfig::from_json(
            r#"{"model_type":"phi","architectures":["PhiForCausalLM"],"hidden_size":2560,"num_attention_heads":32,
            "num_hidden_layers":32,"intermediate_size":10240,"partial_rotary_factor":0.4,"vocab_size":51200}"#,
        )
        .unwrap();
        assert_eq!((phi.family, phi.text_config.decoder), (Family::Phi, DecoderKind::Phi));
        assert_eq!((phi.text_config.head_dim(), phi.text_config.rotary_dim()), (80, 32));
        assert_eq!(phi.text_config.norm_eps(), 1e-5);
        let qwen = ModelConfig::from_json(
            r#"{"model_type":"qwen2","architectures":["Qwen2ForCausalLM"],"hidden_size":1536,"num_attention_heads":12,
            "num_key_value_heads":2,"num_hidden_layers":28,"intermediate_size":8960,"vocab_size":151936,
            "rope_theta":1000000.0,"tie_word_embeddings":true,"use_sliding_window":false}"#,
        )
        .unwrap();
        assert_eq!((qwen.family, qwen.text_config.decoder, qwen.tied_embeddings()), (Family::Qwen2, DecoderKind::Qwen2, true));
        assert_eq!(qwen.image_seq_len(), 0);
        let e = ModelConfig::from_json(r#"{"model_type":"llama","architectures":["LlamaForSequenceClassification"],"vocab_size":4}"#)
            .unwrap_err();
        assert!(e.to_string().contains("LlamaForSequenceClassification") && e.to_string().contains("LlamaForCausalLM"), "{e}");
        let e = ModelConfig::from_json(r#"{"model_type":"qwen2","use_sliding_window":true}"#).unwrap_err();
        assert!(e.to_string().contains("use_sliding_window"), "{e}");
    }

    #[test]
    fn qwen2_vl_config_as_on_the_hub_is_normalised() {
        // Qwen/Qwen2-VL-2B-Instruct's config.json (transformers 4 layout: decoder at the top).
        let cfg = ModelConfig::from_json(
            r#"{"architectures":["Qwen2VLForConditionalGeneration"],"attention_dropout":0.0,"bos_token_id":151643,
            "eos_token_id":151645,"vision_start_token_id":151652,"vision_end_token_id":151653,"vision_token_id":151654,
            "image_token_id":151655,"video_token_id":151656,"hidden_act":"silu","hidden_size":1536,"initializer_range":0.02,
            "intermediate_size":8960,"max_position_embeddings":32768,"max_window_layers":28,"model_type":"qwen2_vl",
            "num_attention_heads":12,"num_hidden_layers":28,"num_key_value_heads":2,"rms_norm_eps":1e-06,"rope_theta":1000000.0,
            "sliding_window":32768,"tie_word_embeddings":true,"torch_dtype":"bfloat16","transformers_version":"4.41.2",
            "use_cache":true,"use_sliding_window":false,
            "vision_config":{"depth":32,"embed_dim":1280,"mlp_ratio":4,"num_heads":16,"in_chans":3,"hidden_size":1536,
              "patch_size":14,"spatial_merge_size":2,"spatial_patch_size":14,"temporal_patch_size":2},
            "rope_scaling":{"type":"mrope","mrope_section":[16,24,24]},"vocab_size":151936}"#,
        )
        .unwrap();
        assert_eq!(cfg.family, Family::Qwen2Vl);
        let (v, t) = (&cfg.vision_config, &cfg.text_config);
        assert_eq!((v.hidden_size, v.out_hidden_size, v.intermediate_size, v.num_hidden_layers), (1280, 1536, 5120, 32));
        assert_eq!((v.kind, v.patch_size, v.spatial_merge_size, v.temporal_patch_size), (VisionKind::Qwen2Vl, 14, 2, 2));
        assert_eq!((t.decoder, t.hidden_size, t.head_dim(), t.num_key_value_heads()), (DecoderKind::Qwen2, 1536, 128, 2));
        assert_eq!(t.mrope_section(), Some(vec![16, 24, 24]));
        assert_eq!(t.rope_theta().unwrap(), 1e6);
        assert!(cfg.tied_embeddings());
        assert_eq!(cfg.image_token_id, 151655);
        // Sections must cover head_dim/2.
        let bad = ModelConfig::from_json(&serde_json::json!({
            "model_type": "qwen2_5_vl", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 1,
            "intermediate_size": 8, "vocab_size": 10, "rope_scaling": {"type": "mrope", "mrope_section": [2, 2, 2]},
            "vision_config": {"depth": 1, "hidden_size": 16, "num_heads": 2, "out_hidden_size": 64, "intermediate_size": 8,
                              "patch_size": 2, "window_size": 8}
        }).to_string())
        .unwrap_err();
        assert!(bad.to_string().contains("mrope_section"), "{bad}");
    }
}
