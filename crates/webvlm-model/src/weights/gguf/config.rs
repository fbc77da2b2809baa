//! `config.json` and `preprocessor_config.json` equivalents from GGUF metadata.
//!
//! The text file carries `llama.*` hyperparameters and `tokenizer.ggml.*`; the mmproj carries
//! `clip.vision.*` (keys from `gguf-py/gguf/constants.py`, written by `convert_hf_to_gguf.py`'s
//! `LlamaModel` and `SmolVLMModel`). The JSON produced has the fields `crate::config` reads, so
//! the rest of the loader treats a GGUF pair like a Hugging Face directory. What GGUF does not
//! record is derived as llama.cpp derives it: lm_head is tied when there is no `output.weight`,
//! the `<image>` token id is looked up in the token list, the vision activation is the tanh GELU
//! (`clip.use_gelu`), and images are always split into tiles when the preprocessing size exceeds
//! the tile size (clip.cpp has no switch for it).

use serde_json::{Value as Json, json};

use super::error::{GgufError, Result};
use super::names::FileKind;
use super::parse::GgufFile;

/// transformers' Idefics3 default when the mmproj has no `projector.scale_factor`
/// (the converter writes `config.scale_factor` or 2).
const DEFAULT_SCALE_FACTOR: u64 = 2;
/// ggml's and transformers' Llama default RoPE base.
const DEFAULT_ROPE_THETA: f64 = 10000.0;

fn expect_kind(file: &GgufFile, kind: FileKind, role: &str) -> Result<()> {
    let found = file.kind()?;
    if found == kind {
        Ok(())
    } else {
        Err(GgufError::Mismatch { message: format!("the {role} file is a {} file", found.name()) })
    }
}

fn finite(key: &str, v: f64) -> Result<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(GgufError::BadValue { key: key.to_string(), value: v.to_string(), why: "not a finite number".into() })
    }
}

fn nonzero(file: &GgufFile, key: &str) -> Result<u64> {
    match file.require_u64(key)? {
        0 => Err(GgufError::BadValue { key: key.to_string(), value: "0".into(), why: "must be at least 1".into() }),
        n => Ok(n),
    }
}

/// An Idefics3 `config.json` for a text + mmproj pair, or a Llama `config.json` for a text
/// GGUF alone.
pub fn config_json(text: &GgufFile, mmproj: Option<&GgufFile>) -> Result<Json> {
    expect_kind(text, FileKind::Text, "text")?;
    if let Some(mmproj) = mmproj {
        expect_kind(mmproj, FileKind::Mmproj, "mmproj")?;
    }
    let arch = text.architecture()?;
    let k = |s: &str| format!("{arch}.{s}");

    let hidden = nonzero(text, &k("embedding_length"))?;
    let heads = nonzero(text, &k("attention.head_count"))?;
    let kv_heads = match text.u64_key(&k("attention.head_count_kv"))? {
        Some(_) => nonzero(text, &k("attention.head_count_kv"))?,
        None => heads,
    };
    let head_dim = text.u64_key(&k("attention.key_length"))?.unwrap_or(hidden / heads);
    if let Some(v) = text.u64_key(&k("attention.value_length"))?
        && v != head_dim
    {
        return Err(GgufError::BadValue {
            key: k("attention.value_length"),
            value: v.to_string(),
            why: format!("differs from the key length {head_dim}; webvlm needs one head_dim"),
        });
    }
    let phi = arch == "phi2";
    let rotary = text.u64_key(&k("rope.dimension_count"))?;
    if let Some(r) = rotary
        && r != head_dim
        && !(phi && r > 0 && r <= head_dim && r % 2 == 0)
    {
        return Err(GgufError::BadValue {
            key: k("rope.dimension_count"),
            value: r.to_string(),
            why: format!("partial rotary embeddings are not supported (head_dim {head_dim})"),
        });
    }
    let tokens = text.array_key("tokenizer.ggml.tokens")?;
    let vocab_size = match (tokens, text.u64_key(&k("vocab_size"))?, text.tensor("token_embd.weight")) {
        (Some(t), _, _) => t.len() as u64,
        (None, Some(v), _) => v,
        (None, None, Some(embd)) => embd.n_rows(),
        (None, None, None) => return Err(GgufError::MissingKey { key: "tokenizer.ggml.tokens".into() }),
    };
    // Phi-2 normalises with LayerNorm (`layer_norm_epsilon`), the others with RMSNorm.
    let eps_key = if phi { k("attention.layer_norm_epsilon") } else { k("attention.layer_norm_rms_epsilon") };
    let norm_eps =
        finite(&eps_key, text.f64_key(&eps_key)?.ok_or_else(|| GgufError::MissingKey { key: eps_key.clone() })?)?;
    let theta_key = k("rope.freq_base");
    let rope_theta = finite(&theta_key, text.f64_key(&theta_key)?.unwrap_or(DEFAULT_ROPE_THETA))?;
    let tied = text.tensor("output.weight").is_none();

    let (model_type, class) = match arch {
        "qwen2" => ("qwen2", "Qwen2ForCausalLM"),
        "phi2" => ("phi", "PhiForCausalLM"),
        _ => ("llama", "LlamaForCausalLM"),
    };
    let mut text_config = json!({
        "model_type": model_type,
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": text.require_u64(&k("feed_forward_length"))?,
        "num_hidden_layers": text.require_u64(&k("block_count"))?,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "rms_norm_eps": norm_eps,
        "layer_norm_eps": norm_eps,
        "rope_theta": rope_theta,
        "max_position_embeddings": text.require_u64(&k("context_length"))?,
        "hidden_act": if phi { "gelu_new" } else { "silu" },
        "partial_rotary_factor": rotary.unwrap_or(head_dim) as f64 / head_dim as f64,
        "attention_bias": text.tensor("blk.0.attn_q.bias").is_some(),
        "mlp_bias": text.tensor("blk.0.ffn_up.bias").is_some(),
        "tie_word_embeddings": tied,
    });
    if let Some(scaling) = text.str_key(&k("rope.scaling.type"))?
        && scaling != "none"
    {
        // Passed on so that config validation names the unsupported rope type.
        text_config["rope_scaling"] = json!({ "rope_type": scaling });
    }
    for (gguf_key, hf_key) in [
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
        ("tokenizer.ggml.padding_token_id", "pad_token_id"),
    ] {
        if let Some(id) = text.u64_key(gguf_key)? {
            text_config[hf_key] = json!(id);
        }
    }

    let Some(mmproj) = mmproj else {
        text_config["architectures"] = json!([class]);
        return Ok(text_config);
    };
    if arch != "llama" {
        return Err(GgufError::Mismatch {
            message: format!("an mmproj pairs with a `llama` text model (SmolVLM), not `{arch}`"),
        });
    }
    let v = |s: &str| format!("clip.vision.{s}");
    let v_hidden = nonzero(mmproj, &v("embedding_length"))?;
    if let Some(p) = mmproj.u64_key(&v("projection_dim"))?
        && p != hidden
    {
        return Err(GgufError::Mismatch {
            message: format!("clip.vision.projection_dim is {p} but the text model's embedding_length is {hidden}"),
        });
    }
    let ln_key = v("attention.layer_norm_epsilon");
    let ln_eps =
        finite(&ln_key, mmproj.f64_key(&ln_key)?.ok_or_else(|| GgufError::MissingKey { key: ln_key.clone() })?)?;
    let channels = mmproj.tensor("v.patch_embd.weight").and_then(|t| t.ne.get(2).copied()).unwrap_or(3);
    let act = if mmproj.bool_key("clip.use_silu")? == Some(true) { "silu" } else { "gelu_pytorch_tanh" };
    let vision_config = json!({
        "model_type": "idefics3_vision",
        "hidden_size": v_hidden,
        "intermediate_size": mmproj.require_u64(&v("feed_forward_length"))?,
        "num_hidden_layers": mmproj.require_u64(&v("block_count"))?,
        "num_attention_heads": nonzero(mmproj, &v("attention.head_count"))?,
        "num_channels": channels,
        "image_size": nonzero(mmproj, &v("image_size"))?,
        "patch_size": nonzero(mmproj, &v("patch_size"))?,
        "hidden_act": act,
        "layer_norm_eps": ln_eps,
    });

    let mut config = json!({
        "model_type": "idefics3",
        "architectures": ["Idefics3ForConditionalGeneration"],
        "scale_factor": mmproj.u64_key(&v("projector.scale_factor"))?.unwrap_or(DEFAULT_SCALE_FACTOR),
        "tie_word_embeddings": tied,
        "text_config": text_config,
        "vision_config": vision_config,
    });
    let image_token = tokens.and_then(|t| t.iter().position(|s| s.as_str() == Some("<image>")));
    if let Some(id) = image_token {
        config["image_token_id"] = json!(id);
    }
    Ok(config)
}

/// A `preprocessor_config.json` (Idefics3ImageProcessor) for an mmproj: tile size
/// (`clip.vision.image_size`), first-resize size (`clip.vision.preproc_image_size`, else four
/// tiles, transformers' default ratio), mean and std. The rest are the Idefics3 defaults
/// (1/255 rescale, Lanczos), which clip.cpp also applies.
pub fn preprocessor_config_json(mmproj: &GgufFile) -> Result<Json> {
    expect_kind(mmproj, FileKind::Mmproj, "mmproj")?;
    let tile = nonzero(mmproj, "clip.vision.image_size")?;
    let size = match mmproj.u64_key("clip.vision.preproc_image_size")? {
        Some(s) => s,
        None => tile.saturating_mul(4),
    };
    let per_channel = |key: &str| -> Result<Vec<f64>> {
        let items = mmproj.array_key(key)?.ok_or_else(|| GgufError::MissingKey { key: key.to_string() })?;
        let values: Option<Vec<f64>> = items.iter().map(|x| x.as_f64().filter(|f| f.is_finite())).collect();
        match values {
            Some(v) if v.len() == 3 => Ok(v),
            _ => Err(GgufError::BadValue {
                key: key.to_string(),
                value: format!("{} items", items.len()),
                why: "expected three finite numbers (R, G, B)".into(),
            }),
        }
    };
    Ok(json!({
        "image_processor_type": "Idefics3ImageProcessor",
        "do_resize": true,
        "size": { "longest_edge": size },
        "max_image_size": { "longest_edge": tile },
        "do_image_splitting": size > tile,
        "do_rescale": true,
        "rescale_factor": 1.0 / 255.0,
        "do_normalize": true,
        "image_mean": per_channel("clip.vision.image_mean")?,
        "image_std": per_channel("clip.vision.image_std")?,
        "resample": 1,
        "do_convert_rgb": true,
        "do_pad": true,
    }))
}

/// The chat template of a text file (`tokenizer.chat_template`), if it has one.
pub fn chat_template<'f>(text: &'f GgufFile) -> Result<Option<&'f str>> {
    text.str_key("tokenizer.chat_template")
}
