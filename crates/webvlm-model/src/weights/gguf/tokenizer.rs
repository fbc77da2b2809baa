//! A `tokenizer.json` (Hugging Face `tokenizers`) built from a GGUF's `tokenizer.ggml.*`
//! metadata, so a GGUF model needs no separate tokenizer file.
//!
//! GPT-2-style byte-level BPE (`tokenizer.ggml.model = gpt2`): the vocabulary and merges as
//! stored; control tokens (token type 3) and user-defined tokens (type 4) become added tokens,
//! matched whole before pre-tokenization as llama.cpp does with `parse_special`. The
//! pre-tokenizer follows `tokenizer.ggml.pre` the way llama.cpp's `llama-vocab.cpp` does: the
//! GPT-2 regex, preceded for `smollm`/`starcoder`/`refact` by a split into single digits.

use serde_json::{Value as Json, json};

use super::error::{GgufError, Result};
use super::parse::GgufFile;

const SUPPORTED_MODELS: &str = "gpt2 (byte-level BPE)";
const SUPPORTED_PRE: &str = "default, gpt2, phi-2, smollm, starcoder, refact, qwen2";
/// llama.cpp's `LLAMA_VOCAB_PRE_TYPE_QWEN2` split (Qwen2's tokenizer.json regex): letters may
/// take one leading non-letter, digits split one by one.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// llama.cpp's `llama_token_type`.
const TOKEN_CONTROL: u64 = 3;
const TOKEN_USER_DEFINED: u64 = 4;

fn strings<'f>(file: &'f GgufFile, key: &str) -> Result<Vec<&'f str>> {
    let items = file.array_key(key)?.ok_or_else(|| GgufError::MissingKey { key: key.to_string() })?;
    items
        .iter()
        .map(|v| {
            v.as_str().ok_or_else(|| GgufError::WrongValueType { key: key.to_string(), expected: "string", found: v.type_name() })
        })
        .collect()
}

/// The `tokenizer.json` of the text GGUF.
pub fn tokenizer_json(file: &GgufFile) -> Result<Json> {
    let model = file.str_key("tokenizer.ggml.model")?.ok_or_else(|| GgufError::MissingKey { key: "tokenizer.ggml.model".into() })?;
    if model != "gpt2" {
        return Err(GgufError::UnsupportedTokenizer { what: format!("tokenizer.ggml.model = {model}"), supported: SUPPORTED_MODELS });
    }
    let pre = file.str_key("tokenizer.ggml.pre")?.unwrap_or("default");
    let byte_level = json!({ "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true });
    let pre_tokenizer = match pre {
        // llama.cpp reads `phi-2` with the GPT-2 split.
        "default" | "gpt2" | "phi-2" => byte_level,
        "smollm" | "starcoder" | "refact" => json!({
            "type": "Sequence",
            "pretokenizers": [{ "type": "Digits", "individual_digits": true }, byte_level],
        }),
        "qwen2" => json!({
            "type": "Sequence",
            "pretokenizers": [
                { "type": "Split", "pattern": { "Regex": QWEN2_SPLIT }, "behavior": "Isolated", "invert": false },
                { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false },
            ],
        }),
        other => {
            return Err(GgufError::UnsupportedTokenizer { what: format!("tokenizer.ggml.pre = {other}"), supported: SUPPORTED_PRE });
        }
    };

    let tokens = strings(file, "tokenizer.ggml.tokens")?;
    let types: Vec<u64> = match file.array_key("tokenizer.ggml.token_type")? {
        Some(items) => items.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
        None => vec![1; tokens.len()],
    };
    if types.len() != tokens.len() {
        return Err(GgufError::BadValue {
            key: "tokenizer.ggml.token_type".into(),
            value: format!("{} items", types.len()),
            why: format!("the vocabulary has {} tokens", tokens.len()),
        });
    }
    let merges: Vec<Json> = strings(file, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            let (a, b) = m.split_once(' ').ok_or_else(|| GgufError::BadValue {
                key: "tokenizer.ggml.merges".into(),
                value: m.to_string(),
                why: "a merge is two tokens separated by one space".into(),
            })?;
            Ok(json!([a, b]))
        })
        .collect::<Result<_>>()?;

    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    let mut added = Vec::new();
    for (id, (token, kind)) in tokens.iter().zip(&types).enumerate() {
        if vocab.insert(token.to_string(), json!(id)).is_some() {
            return Err(GgufError::BadValue {
                key: "tokenizer.ggml.tokens".into(),
                value: token.to_string(),
                why: "appears twice in the vocabulary".into(),
            });
        }
        if *kind == TOKEN_CONTROL || *kind == TOKEN_USER_DEFINED {
            added.push(json!({
                "id": id, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": false, "special": *kind == TOKEN_CONTROL,
            }));
        }
    }

    // llama.cpp prepends BOS when the file asks for it; a template processor does the same here.
    let byte_level_post = json!({ "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true });
    let post_processor = match (file.bool_key("tokenizer.ggml.add_bos_token")?, file.u64_key("tokenizer.ggml.bos_token_id")?) {
        (Some(true), Some(bos)) => {
            let bos_token = tokens.get(bos as usize).copied().unwrap_or_default();
            json!({
                "type": "Sequence",
                "processors": [byte_level_post, {
                    "type": "TemplateProcessing",
                    "single": [{ "SpecialToken": { "id": bos_token, "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } }],
                    "pair": [{ "SpecialToken": { "id": bos_token, "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } }, { "Sequence": { "id": "B", "type_id": 1 } }],
                    "special_tokens": { bos_token: { "id": bos_token, "ids": [bos], "tokens": [bos_token] } },
                }],
            })
        }
        _ => byte_level_post,
    };
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true },
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges,
        },
    }))
}

/// A `tokenizer_config.json` with what the chat template needs: the BOS and EOS token strings
/// (from `tokenizer.ggml.bos_token_id` / `eos_token_id`) and whether BOS is prepended.
pub fn tokenizer_config_json(file: &GgufFile) -> Result<Json> {
    let tokens = strings(file, "tokenizer.ggml.tokens")?;
    let token = |key: &str| -> Result<Json> {
        Ok(match file.u64_key(key)? {
            Some(id) => tokens.get(id as usize).map(|t| json!(t)).ok_or_else(|| GgufError::BadValue {
                key: key.to_string(),
                value: id.to_string(),
                why: format!("outside the vocabulary of {} tokens", tokens.len()),
            })?,
            None => Json::Null,
        })
    };
    let add_bos = file.bool_key("tokenizer.ggml.add_bos_token")?.unwrap_or(false);
    Ok(json!({
        "bos_token": token("tokenizer.ggml.bos_token_id")?,
        "eos_token": token("tokenizer.ggml.eos_token_id")?,
        "add_bos_token": add_bos,
    }))
}

/// Give a tokenizer made by [`tokenizer_json`] LLaVA's `<image>` token at `id` (past the
/// vocabulary) when the GGUF vocabulary lacks it, so that prompts can carry image tokens.
pub fn add_image_token(tokenizer: &mut Json, id: u64) {
    let present = tokenizer["model"]["vocab"].get("<image>").is_some()
        || tokenizer["added_tokens"].as_array().is_some_and(|a| a.iter().any(|t| t["content"] == "<image>"));
    if let (false, Some(added)) = (present, tokenizer["added_tokens"].as_array_mut()) {
        added.push(json!({
            "id": id, "content": "<image>", "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": false, "special": true,
        }));
    }
}
