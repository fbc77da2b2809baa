//! `config.json` of an Idefics3 / SmolVLM checkpoint, as written by `transformers`.
//!
//! Defaults match `Idefics3Config`, `Idefics3VisionConfig` and `LlamaConfig` in transformers 5.23
//! (`models/idefics3/configuration_idefics3.py`, `models/llama/configuration_llama.py`). Both the
//! classic `rope_theta` field and the transformers-5 `rope_parameters` object are read.

use serde::Deserialize;

use crate::error::{ModelError, Result};

const FILE: &str = "config.json";

/// `model_type` values this runtime implements with the Idefics3 graph. `llama` is a text-only
/// checkpoint (`LlamaForCausalLM`: SmolLM2, the text backbone of SmolVLM), which runs as the same
/// graph without vision tower and connector.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["idefics3", "smolvlm", "llama"];

/// Top level of an Idefics3 / SmolVLM `config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Idefics3Config {
    /// Architecture family; must be one of [`SUPPORTED_MODEL_TYPES`].
    pub model_type: String,
    /// Class names, e.g. `["Idefics3ForConditionalGeneration"]`.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// The SigLIP-style vision tower (unused by a text-only model).
    #[serde(default)]
    pub vision_config: VisionConfig,
    /// The Llama-style text decoder.
    pub text_config: TextConfig,
    /// Pixel-shuffle factor of the connector: each side of the patch grid shrinks by it.
    #[serde(default = "default_scale_factor")]
    pub scale_factor: usize,
    /// Token id of `<image>`, whose embeddings are replaced by image features.
    #[serde(default = "default_image_token_id")]
    pub image_token_id: u32,
    /// Whether `lm_head` shares the token embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// A text-only checkpoint (`model_type` `llama`): no vision tower, no connector.
    #[serde(skip)]
    pub text_only: bool,
}

impl Default for VisionConfig {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every VisionConfig field has a default")
    }
}

/// `vision_config` (Idefics3VisionConfig).
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
    /// MLP activation: `gelu_pytorch_tanh` (SigLIP) or `gelu` (erf).
    #[serde(default = "d_vision_act")]
    pub hidden_act: String,
    /// LayerNorm epsilon.
    #[serde(default = "d_ln_eps")]
    pub layer_norm_eps: f64,
}

/// `text_config` (LlamaConfig).
#[derive(Debug, Clone, Deserialize)]
pub struct TextConfig {
    /// Expected `llama` (the decoder family).
    #[serde(default = "d_text_type")]
    pub model_type: String,
    /// Vocabulary size (rows of the embedding and of lm_head).
    pub vocab_size: usize,
    /// Width of the decoder.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
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
    /// RMSNorm epsilon.
    #[serde(default = "d_rms_eps")]
    pub rms_norm_eps: f64,
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
    /// MLP activation; the Llama decoder uses `silu`.
    #[serde(default = "d_text_act")]
    pub hidden_act: String,
    /// Bias on q/k/v/o projections.
    #[serde(default)]
    pub attention_bias: bool,
    /// Bias on the MLP projections.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Tie lm_head to the embeddings (some checkpoints put it here rather than at the top).
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    /// End-of-sequence id(s): an int or a list.
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
    /// Beginning-of-sequence id.
    #[serde(default)]
    pub bos_token_id: Option<serde_json::Value>,
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
}

fn default_scale_factor() -> usize {
    2
}
fn default_image_token_id() -> u32 {
    128257
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
fn d_ln_eps() -> f64 {
    1e-6
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

/// Vision MLP activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisionActivation {
    /// tanh approximation (`gelu_pytorch_tanh`).
    GeluTanh,
    /// exact erf GELU.
    Gelu,
}

impl Idefics3Config {
    /// Parse and validate `config.json`.
    pub fn from_json(text: &str) -> Result<Self> {
        let raw: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ModelError::config(FILE, e.to_string()))?;
        let model_type = raw.get("model_type").and_then(|v| v.as_str()).unwrap_or("<missing>");
        if !SUPPORTED_MODEL_TYPES.contains(&model_type) {
            return Err(ModelError::UnsupportedModel {
                found: model_type.to_string(),
                supported: SUPPORTED_MODEL_TYPES.join(", "),
            });
        }
        let text_only = model_type == "llama";
        let raw = if text_only {
            // A Llama config.json is the text config itself.
            serde_json::json!({
                "model_type": "llama",
                "architectures": raw.get("architectures").cloned().unwrap_or(serde_json::json!([])),
                "tie_word_embeddings": raw.get("tie_word_embeddings").cloned().unwrap_or(serde_json::json!(false)),
                "text_config": raw,
            })
        } else {
            raw
        };
        let mut config: Self =
            serde_json::from_value(raw).map_err(|e| ModelError::config(FILE, e.to_string()))?;
        config.text_only = text_only;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let v = &self.vision_config;
        let t = &self.text_config;
        let bad = |m: String| Err(ModelError::config(FILE, m));
        if t.model_type != "llama" {
            return Err(ModelError::UnsupportedModel {
                found: format!("text_config.model_type = {}", t.model_type),
                supported: "llama".into(),
            });
        }
        if self.text_only {
            return self.validate_text();
        }
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
        let side = v.image_size / v.patch_size;
        if self.scale_factor == 0 || side % self.scale_factor != 0 {
            return bad(format!("scale_factor {} does not divide the patch grid side {side}", self.scale_factor));
        }
        self.vision_activation()?;
        self.validate_text()
    }

    fn validate_text(&self) -> Result<()> {
        let t = &self.text_config;
        let bad = |m: String| Err(ModelError::config(FILE, m));
        if t.hidden_act != "silu" {
            return bad(format!("text_config.hidden_act `{}` is not supported (only silu)", t.hidden_act));
        }
        if t.num_attention_heads == 0 || t.num_attention_heads % t.num_key_value_heads() != 0 {
            return bad(format!(
                "text_config.num_attention_heads {} is not a multiple of num_key_value_heads {}",
                t.num_attention_heads,
                t.num_key_value_heads()
            ));
        }
        if t.head_dim() % 2 != 0 {
            return bad(format!("text_config.head_dim {} must be even for RoPE", t.head_dim()));
        }
        t.rope_theta()?;
        Ok(())
    }

    /// The vision MLP activation.
    pub fn vision_activation(&self) -> Result<VisionActivation> {
        match self.vision_config.hidden_act.as_str() {
            "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Ok(VisionActivation::GeluTanh),
            "gelu" => Ok(VisionActivation::Gelu),
            other => Err(ModelError::config(
                FILE,
                format!("vision_config.hidden_act `{other}` is not supported (gelu_pytorch_tanh, gelu)"),
            )),
        }
    }

    /// Patches per side of a tile.
    pub fn patches_per_side(&self) -> usize {
        self.vision_config.image_size / self.vision_config.patch_size
    }

    /// `<image>` tokens per tile after the pixel shuffle (0 for a text-only model).
    pub fn image_seq_len(&self) -> usize {
        if self.text_only {
            return 0;
        }
        let side = self.patches_per_side() / self.scale_factor;
        side * side
    }

    /// Whether lm_head may be taken from the token embeddings.
    pub fn tied_embeddings(&self) -> bool {
        self.tie_word_embeddings || self.text_config.tie_word_embeddings.unwrap_or(false)
    }
}

impl TextConfig {
    pub fn num_key_value_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// The RoPE base, from whichever of the two config forms is present.
    pub fn rope_theta(&self) -> Result<f64> {
        for params in [&self.rope_parameters, &self.rope_scaling].into_iter().flatten() {
            if let Some(kind) = &params.rope_type {
                if kind != "default" {
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
            Some(serde_json::Value::Number(n)) => n.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
            Some(serde_json::Value::Array(list)) => {
                list.iter().filter_map(|v| v.as_u64()).map(|v| v as u32).collect()
            }
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
        let classic = Idefics3Config::from_json(&with_rope(r#","rope_theta":123456.0"#)).unwrap();
        assert_eq!(classic.text_config.rope_theta().unwrap(), 123456.0);
        let v5 = Idefics3Config::from_json(&with_rope(
            r#","rope_parameters":{"rope_theta":777.0,"rope_type":"default"}"#,
        ))
        .unwrap();
        assert_eq!(v5.text_config.rope_theta().unwrap(), 777.0);
        assert_eq!(v5.image_seq_len(), 4);
        assert_eq!(v5.text_config.head_dim(), 4);
    }

    #[test]
    fn rejects_unknown_rope_type_and_model_type() {
        let e = Idefics3Config::from_json(&with_rope(r#","rope_scaling":{"rope_type":"llama3","factor":8.0}"#))
            .unwrap_err();
        assert!(e.to_string().contains("llama3"), "{e}");
        let e = Idefics3Config::from_json(&BASE.replace("idefics3", "qwen2_vl").replace("ROPE", "")).unwrap_err();
        assert!(matches!(e, ModelError::UnsupportedModel { .. }), "{e}");
        assert!(e.to_string().contains("qwen2_vl") && e.to_string().contains("idefics3"));
    }

    #[test]
    fn rejects_inconsistent_shapes() {
        let e = Idefics3Config::from_json(&with_rope("").replace(r#""patch_size":8"#, r#""patch_size":5"#))
            .unwrap_err();
        assert!(e.to_string().contains("patch_size"), "{e}");
    }
}
