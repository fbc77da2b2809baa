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
use super::names::{FileKind, Projector};
use super::parse::GgufFile;

/// transformers' Idefics3 default when the mmproj has no `projector.scale_factor`
/// (the converter writes `config.scale_factor` or 2).
const DEFAULT_SCALE_FACTOR: u64 = 2;
/// ggml's and transformers' Llama default RoPE base.
const DEFAULT_ROPE_THETA: f64 = 10000.0;

fn expect_text(file: &GgufFile) -> Result<()> {
    match file.kind()? {
        FileKind::Text => Ok(()),
        found => Err(GgufError::Mismatch { message: format!("the text file is a {} file", found.name()) }),
    }
}

fn expect_mmproj(file: &GgufFile) -> Result<Projector> {
    match file.kind()? {
        FileKind::Mmproj(p) => Ok(p),
        found => Err(GgufError::Mismatch { message: format!("the mmproj file is a {} file", found.name()) }),
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

/// The `config.json` of a text + mmproj pair (Idefics3, LLaVA, Qwen2-VL or Qwen2.5-VL, by the
/// mmproj's projector), or of a text GGUF alone (Llama, Qwen2, Phi).
pub fn config_json(text: &GgufFile, mmproj: Option<&GgufFile>) -> Result<Json> {
    expect_text(text)?;
    let projector = mmproj.map(expect_mmproj).transpose()?;
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
        // A Qwen2-VL decoder alone: its M-RoPE with one position per token is plain RoPE.
        "qwen2" | "qwen2vl" => ("qwen2", "Qwen2ForCausalLM"),
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

    let (Some(mmproj), Some(projector)) = (mmproj, projector) else {
        text_config["architectures"] = json!([class]);
        return Ok(text_config);
    };
    let decoders: &[&str] = match projector {
        Projector::Idefics3 | Projector::Llava => &["llama"],
        Projector::Qwen2Vl | Projector::Qwen25Vl => &["qwen2vl", "qwen2"],
    };
    if !decoders.contains(&arch) {
        return Err(GgufError::Mismatch {
            message: format!(
                "a `{}` mmproj pairs with a {} text model, not `{arch}`",
                projector.gguf_name(),
                decoders.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(" or ")
            ),
        });
    }
    let v = |s: &str| format!("clip.vision.{s}");
    if let Some(p) = mmproj.u64_key(&v("projection_dim"))?
        && p != hidden
        // The legacy LLaVA converter writes CLIP's own projection_dim, which LLaVA never uses.
        && projector != Projector::Llava
    {
        return Err(GgufError::Mismatch {
            message: format!("clip.vision.projection_dim is {p} but the text model's embedding_length is {hidden}"),
        });
    }
    let find_token = |s: &str| tokens.and_then(|t| t.iter().position(|x| x.as_str() == Some(s)));
    match projector {
        Projector::Idefics3 => idefics3_config(mmproj, text_config, tied, find_token("<image>")),
        Projector::Llava => llava_config(mmproj, text_config, tied, find_token("<image>")),
        Projector::Qwen2Vl | Projector::Qwen25Vl => {
            let sections = text.array_key(&k("rope.dimension_sections"))?;
            let ids = ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"].map(find_token);
            qwen_vl_config(mmproj, projector, text_config, tied, sections, ids)
        }
    }
}

/// `clip.vision.attention.layer_norm_epsilon`, required.
fn vision_eps(mmproj: &GgufFile) -> Result<f64> {
    let key = "clip.vision.attention.layer_norm_epsilon";
    finite(key, mmproj.f64_key(key)?.ok_or_else(|| GgufError::MissingKey { key: key.into() })?)
}

/// Extent `axis` (innermost first) of a tensor the projector must have.
fn extent(mmproj: &GgufFile, tensor: &str, axis: usize) -> Result<u64> {
    let info = mmproj.tensor(tensor).ok_or_else(|| GgufError::Mismatch { message: format!("the mmproj has no `{tensor}`") })?;
    info.ne.get(axis).copied().ok_or_else(|| GgufError::BadShape {
        name: tensor.to_string(),
        ne: info.ne.clone(),
        why: format!("needs at least {} dimensions", axis + 1),
    })
}

fn idefics3_config(mmproj: &GgufFile, text_config: Json, tied: bool, image_token: Option<usize>) -> Result<Json> {
    let v = |s: &str| format!("clip.vision.{s}");
    let channels = mmproj.tensor("v.patch_embd.weight").and_then(|t| t.ne.get(2).copied()).unwrap_or(3);
    let act = if mmproj.bool_key("clip.use_silu")? == Some(true) { "silu" } else { "gelu_pytorch_tanh" };
    let vision_config = json!({
        "model_type": "idefics3_vision",
        "hidden_size": nonzero(mmproj, &v("embedding_length"))?,
        "intermediate_size": mmproj.require_u64(&v("feed_forward_length"))?,
        "num_hidden_layers": mmproj.require_u64(&v("block_count"))?,
        "num_attention_heads": nonzero(mmproj, &v("attention.head_count"))?,
        "num_channels": channels,
        "image_size": nonzero(mmproj, &v("image_size"))?,
        "patch_size": nonzero(mmproj, &v("patch_size"))?,
        "hidden_act": act,
        "layer_norm_eps": vision_eps(mmproj)?,
    });
    let mut config = json!({
        "model_type": "idefics3",
        "architectures": ["Idefics3ForConditionalGeneration"],
        "scale_factor": mmproj.u64_key(&v("projector.scale_factor"))?.unwrap_or(DEFAULT_SCALE_FACTOR),
        "tie_word_embeddings": tied,
        "text_config": text_config,
        "vision_config": vision_config,
    });
    if let Some(id) = image_token {
        config["image_token_id"] = json!(id);
    }
    Ok(config)
}

/// LLaVA-1.5 from the legacy converter's mmproj: the file holds only the CLIP layers that run
/// (`block_count`; `clip.vision.feature_layer`, when written, is that same count), so the
/// feature layer is the last one stored; `clip.use_gelu` false means CLIP's quick_gelu. The
/// projector is LLaVA's GELU MLP, the class token is dropped (`default` strategy), as clip.cpp
/// does for `mlp`.
fn llava_config(mmproj: &GgufFile, text_config: Json, tied: bool, image_token: Option<usize>) -> Result<Json> {
    let v = |s: &str| format!("clip.vision.{s}");
    let blocks = nonzero(mmproj, &v("block_count"))?;
    if let Some(layers) = mmproj.array_key(&v("feature_layer"))? {
        let layers: Vec<Option<u64>> = layers.iter().map(|x| x.as_u64()).collect();
        if layers != [Some(blocks)] {
            return Err(GgufError::BadValue {
                key: v("feature_layer"),
                value: format!("{layers:?}"),
                why: format!("webvlm takes the features of one layer, the last of the {blocks} stored"),
            });
        }
    }
    let act = if mmproj.bool_key("clip.use_gelu")? == Some(true) { "gelu" } else { "quick_gelu" };
    let vision_config = json!({
        "model_type": "clip_vision_model",
        "hidden_size": nonzero(mmproj, &v("embedding_length"))?,
        "intermediate_size": mmproj.require_u64(&v("feed_forward_length"))?,
        "num_hidden_layers": blocks,
        "num_attention_heads": nonzero(mmproj, &v("attention.head_count"))?,
        "num_channels": extent(mmproj, "v.patch_embd.weight", 2)?,
        "image_size": nonzero(mmproj, &v("image_size"))?,
        "patch_size": nonzero(mmproj, &v("patch_size"))?,
        "hidden_act": act,
        "layer_norm_eps": vision_eps(mmproj)?,
    });
    // Files converted from the original LLaVA checkpoints (Vicuna's 32000 tokens) have no
    // `<image>` token: it takes the first id past the vocabulary, as transformers' LlavaConfig
    // default (32000) does, and the tokenizer made from the file gets it as an added token
    // ([`super::tokenizer::add_image_token`]). Image ids are never looked up in the embedding.
    let image_token_id = image_token.unwrap_or(text_config["vocab_size"].as_u64().unwrap_or(0) as usize);
    Ok(json!({
        "model_type": "llava",
        "architectures": ["LlavaForConditionalGeneration"],
        "image_token_id": image_token_id,
        "projector_hidden_act": "gelu",
        "multimodal_projector_bias": mmproj.tensor("mm.0.bias").is_some(),
        "vision_feature_layer": -1,
        "vision_feature_select_strategy": "default",
        "tie_word_embeddings": tied,
        "text_config": text_config,
        "vision_config": vision_config,
    }))
}

/// clip.cpp's Qwen2.5-VL attention window when the file has no `clip.vision.window_size`
/// (transformers' default too).
const QWEN25VL_DEFAULT_WINDOW: u64 = 112;

/// Qwen2-VL / Qwen2.5-VL. What the converter does not record comes from the tensors (the MLP
/// width, the merge size from `mm.0`'s input width) or from transformers' defaults (vision
/// RoPE base, temporal patch of 2 — the only one the converter accepts).
fn qwen_vl_config(
    mmproj: &GgufFile,
    projector: Projector,
    mut text_config: Json,
    tied: bool,
    sections: Option<&[super::parse::Value]>,
    [image, video, start, end]: [Option<usize>; 4],
) -> Result<Json> {
    let v = |s: &str| format!("clip.vision.{s}");
    let key = "rope.dimension_sections";
    let sections = sections.ok_or_else(|| GgufError::MissingKey { key: format!("qwen2vl.{key}") })?;
    let mut section: Vec<u64> = sections.iter().map(|x| x.as_u64()).collect::<Option<_>>().ok_or_else(|| GgufError::BadValue {
        key: format!("qwen2vl.{key}"),
        value: format!("{} items", sections.len()),
        why: "expected non-negative integers".into(),
    })?;
    // The converter pads Qwen2-VL's three sections to four with a zero.
    while section.len() > 3 && section.last() == Some(&0) {
        section.pop();
    }
    text_config["model_type"] = json!("qwen2");
    text_config["rope_parameters"] =
        json!({ "rope_type": "default", "rope_theta": text_config["rope_theta"].clone(), "mrope_section": section });

    let width = nonzero(mmproj, &v("embedding_length"))?;
    let merge = merge_size(mmproj)?;
    let qwen2 = projector == Projector::Qwen2Vl;
    let depth = mmproj.require_u64(&v("block_count"))?;
    let ffn = extent(mmproj, "v.blk.0.ffn_up.weight", 1)?;
    let mut vision = json!({
        "depth": depth,
        "num_heads": nonzero(mmproj, &v("attention.head_count"))?,
        "in_channels": extent(mmproj, "v.patch_embd.weight", 2)?,
        "patch_size": nonzero(mmproj, &v("patch_size"))?,
        "spatial_merge_size": merge,
        "temporal_patch_size": 2,
    });
    if qwen2 {
        if ffn % width != 0 {
            return Err(GgufError::Mismatch { message: format!("the vision MLP width {ffn} is not a multiple of {width}") });
        }
        vision["embed_dim"] = json!(width);
        vision["hidden_size"] = json!(extent(mmproj, "mm.2.weight", 1)?);
        vision["mlp_ratio"] = json!(ffn / width);
        vision["hidden_act"] = json!(if mmproj.bool_key("clip.use_silu")? == Some(true) { "silu" } else { "quick_gelu" });
    } else {
        let pattern = nonzero(mmproj, &v("n_wa_pattern"))?;
        vision["hidden_size"] = json!(width);
        vision["out_hidden_size"] = json!(extent(mmproj, "mm.2.weight", 1)?);
        vision["intermediate_size"] = json!(ffn);
        vision["hidden_act"] = json!("silu");
        vision["window_size"] = json!(mmproj.u64_key(&v("window_size"))?.unwrap_or(QWEN25VL_DEFAULT_WINDOW));
        // clip.cpp: every `n_wa_pattern`-th block attends to the whole image.
        vision["fullatt_block_indexes"] = json!((1..=depth).filter(|b| b % pattern == 0).map(|b| b - 1).collect::<Vec<_>>());
    }
    let (model_type, class) =
        if qwen2 { ("qwen2_vl", "Qwen2VLForConditionalGeneration") } else { ("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration") };
    let image = image.ok_or_else(|| GgufError::Mismatch { message: "the text GGUF has no `<|image_pad|>` token".into() })?;
    let mut config = json!({
        "model_type": model_type,
        "architectures": [class],
        "image_token_id": image,
        "tie_word_embeddings": tied,
        "text_config": text_config,
        "vision_config": vision,
    });
    for (key, id) in [("video_token_id", video), ("vision_start_token_id", start), ("vision_end_token_id", end)] {
        if let Some(id) = id {
            config[key] = json!(id);
        }
    }
    Ok(config)
}

/// `clip.vision.image_mean` / `image_std`: three finite numbers.
fn per_channel(mmproj: &GgufFile, key: &str) -> Result<Vec<f64>> {
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
}

/// transformers' `Qwen2VLImageProcessor` pixel limits, used when the mmproj has no
/// `clip.vision.image_{min,max}_pixels`.
const QWEN_MIN_PIXELS: u64 = 56 * 56;
const QWEN_MAX_PIXELS: u64 = 28 * 28 * 1280;

/// A `preprocessor_config.json` for an mmproj, the processor of its family with the size,
/// mean and std the file records:
/// * Idefics3: tile size (`clip.vision.image_size`), first-resize size
///   (`clip.vision.preproc_image_size`, else four tiles, transformers' default ratio); 1/255
///   rescale and Lanczos, which clip.cpp also applies.
/// * LLaVA: CLIP's resize of the shortest edge to `image_size`, bicubic, and center crop, as the
///   llava-hf processors do (clip.cpp instead pads the image to a square first).
/// * Qwen-VL: `Qwen2VLImageProcessor` with the patch and merge sizes of the tower and the pixel
///   limits `clip.vision.image_{min,max}_pixels`, else transformers' defaults.
///
/// A `processor_config.json` or `preprocessor_config.json` placed next to the GGUF files wins.
pub fn preprocessor_config_json(mmproj: &GgufFile) -> Result<Json> {
    let projector = expect_mmproj(mmproj)?;
    let mean = per_channel(mmproj, "clip.vision.image_mean")?;
    let std = per_channel(mmproj, "clip.vision.image_std")?;
    let patch = nonzero(mmproj, "clip.vision.patch_size")?;
    // What every processor shares: 1/255 rescale, normalisation with the file's mean and std.
    let values = |mut processor: Json| {
        for (key, value) in [
            ("do_rescale", json!(true)),
            ("rescale_factor", json!(1.0 / 255.0)),
            ("do_normalize", json!(true)),
            ("image_mean", json!(mean)),
            ("image_std", json!(std)),
            ("do_convert_rgb", json!(true)),
        ] {
            processor[key] = value;
        }
        processor
    };
    Ok(values(match projector {
        Projector::Idefics3 => {
            let tile = nonzero(mmproj, "clip.vision.image_size")?;
            let size = match mmproj.u64_key("clip.vision.preproc_image_size")? {
                Some(s) => s,
                None => tile.saturating_mul(4),
            };
            json!({
                "image_processor_type": "Idefics3ImageProcessor",
                "do_resize": true,
                "size": { "longest_edge": size },
                "max_image_size": { "longest_edge": tile },
                "do_image_splitting": size > tile,
                "resample": 1,
                "do_pad": true,
            })
        }
        Projector::Llava => {
            let size = nonzero(mmproj, "clip.vision.image_size")?;
            json!({
                "image_processor_type": "CLIPImageProcessor",
                "do_resize": true,
                "size": { "shortest_edge": size },
                "do_center_crop": true,
                "crop_size": { "height": size, "width": size },
                "resample": 3,
            })
        }
        Projector::Qwen2Vl | Projector::Qwen25Vl => {
            let min = mmproj.u64_key("clip.vision.image_min_pixels")?.unwrap_or(QWEN_MIN_PIXELS);
            let max = mmproj.u64_key("clip.vision.image_max_pixels")?.unwrap_or(QWEN_MAX_PIXELS);
            let merge = merge_size(mmproj)?;
            json!({
                "image_processor_type": "Qwen2VLImageProcessor",
                "do_resize": true,
                "size": { "shortest_edge": min, "longest_edge": max },
                "patch_size": patch,
                "merge_size": merge,
                "temporal_patch_size": 2,
                "resample": 3,
            })
        }
    }))
}

/// Qwen-VL's merge size: `clip.vision.spatial_merge_size` (else the one whose square times the
/// tower width is `mm.0`'s input width), checked against `mm.0`.
fn merge_size(mmproj: &GgufFile) -> Result<u64> {
    let width = nonzero(mmproj, "clip.vision.embedding_length")?;
    let merger_in = extent(mmproj, "mm.0.weight", 0)?;
    let merge = match mmproj.u64_key("clip.vision.spatial_merge_size")? {
        Some(m) => m,
        None => (1..=8).find(|m| m * m * width == merger_in).unwrap_or(0),
    };
    if merge == 0 || merge * merge * width != merger_in {
        return Err(GgufError::Mismatch {
            message: format!("mm.0 takes {merger_in} inputs, not a merge size squared × the tower's {width}"),
        });
    }
    Ok(merge)
}

/// The chat template of a text file (`tokenizer.chat_template`), if it has one.
pub fn chat_template<'f>(text: &'f GgufFile) -> Result<Option<&'f str>> {
    text.str_key("tokenizer.chat_template")
}
