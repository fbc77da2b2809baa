//! A `tokenizer.json` (Hugging Face `tokenizers`) built from a GGUF's `tokenizer.ggml.*`
//! metadata, so a GGUF model needs no separate tokenizer file.
//!
//! * GPT-2-style byte-level BPE (`tokenizer.ggml.model = gpt2`): the vocabulary and merges as
//!   stored. The pre-tokenizer follows `tokenizer.ggml.pre` the way llama.cpp's
//!   `llama-vocab.cpp` does: the GPT-2 regex, preceded for `smollm`/`starcoder`/`refact` by a
//!   split into single digits; Qwen2's regex for `qwen2`.
//! * SentencePiece BPE (`tokenizer.ggml.model = llama`: Llama 1/2, Vicuna and so LLaVA-1.5,
//!   Mistral): spaces become `▁`, a `▁` is prepended to each run of text
//!   (`tokenizer.ggml.add_space_prefix`, default on), pieces merge by their scores, and what no
//!   piece covers falls back to `<0xXX>` byte tokens. The merges are derived from the scores as
//!   transformers' `SentencePieceExtractor` does: every split of a piece into two pieces, ranked
//!   by the score of the piece they make.
//!
//! Either way, control tokens (token type 3) and user-defined tokens (type 4) become added
//! tokens, matched whole before anything else as llama.cpp does with `parse_special`.

use serde_json::{Value as Json, json};

use super::error::{GgufError, Result};
use super::parse::GgufFile;

const SUPPORTED_MODELS: &str = "gpt2 (byte-level BPE), llama (SentencePiece BPE)";
const SUPPORTED_PRE: &str = "default, gpt2, phi-2, smollm, starcoder, refact, qwen2";
/// llama.cpp's `LLAMA_VOCAB_PRE_TYPE_QWEN2` split (Qwen2's tokenizer.json regex): letters may
/// take one leading non-letter, digits split one by one.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// llama.cpp's `llama_token_type`.
const TOKEN_NORMAL: u64 = 1;
const TOKEN_UNKNOWN: u64 = 2;
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
    match model {
        "gpt2" => byte_level_bpe(file),
        "llama" => sentencepiece_bpe(file),
        _ => Err(GgufError::UnsupportedTokenizer { what: format!("tokenizer.ggml.model = {model}"), supported: SUPPORTED_MODELS }),
    }
}

/// Tokens and their llama.cpp token types (normal when the file has none).
fn tokens_and_types<'f>(file: &'f GgufFile) -> Result<(Vec<&'f str>, Vec<u64>)> {
    let tokens = strings(file, "tokenizer.ggml.tokens")?;
    let types: Vec<u64> = match file.array_key("tokenizer.ggml.token_type")? {
        Some(items) => items.iter().map(|v| v.as_u64().unwrap_or(TOKEN_NORMAL)).collect(),
        None => vec![TOKEN_NORMAL; tokens.len()],
    };
    if types.len() != tokens.len() {
        return Err(GgufError::BadValue {
            key: "tokenizer.ggml.token_type".into(),
            value: format!("{} items", types.len()),
            why: format!("the vocabulary has {} tokens", tokens.len()),
        });
    }
    Ok((tokens, types))
}

/// The vocabulary as a `tokenizers` map, and the control / user-defined tokens as added tokens.
fn vocab_and_added(tokens: &[&str], types: &[u64]) -> Result<(serde_json::Map<String, Json>, Vec<Json>)> {
    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    let mut added = Vec::new();
    for (id, (token, kind)) in tokens.iter().zip(types).enumerate() {
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
    Ok((vocab, added))
}

/// `first`, followed by a BOS template when the file asks for BOS (llama.cpp prepends it).
fn with_bos(file: &GgufFile, tokens: &[&str], first: Option<Json>) -> Result<Json> {
    let (Some(true), Some(bos)) = (file.bool_key("tokenizer.ggml.add_bos_token")?, file.u64_key("tokenizer.ggml.bos_token_id")?)
    else {
        return Ok(first.unwrap_or(Json::Null));
    };
    let bos_token = tokens.get(bos as usize).copied().unwrap_or_default();
    let template = json!({
        "type": "TemplateProcessing",
        "single": [{ "SpecialToken": { "id": bos_token, "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } }],
        "pair": [{ "SpecialToken": { "id": bos_token, "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } }, { "Sequence": { "id": "B", "type_id": 1 } }],
        "special_tokens": { bos_token: { "id": bos_token, "ids": [bos], "tokens": [bos_token] } },
    });
    Ok(match first {
        Some(first) => json!({ "type": "Sequence", "processors": [first, template] }),
        None => template,
    })
}

/// GPT-2-style byte-level BPE (see the module docs).
fn byte_level_bpe(file: &GgufFile) -> Result<Json> {
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
    let (tokens, types) = tokens_and_types(file)?;
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
    let (vocab, added) = vocab_and_added(&tokens, &types)?;
    let byte_level_post = json!({ "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true });
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": with_bos(file, &tokens, Some(byte_level_post))?,
        "decoder": { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true },
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges,
        },
    }))
}

/// SentencePiece BPE (see the module docs).
fn sentencepiece_bpe(file: &GgufFile) -> Result<Json> {
    let (tokens, types) = tokens_and_types(file)?;
    let scores = scores(file, tokens.len())?;
    let (vocab, added) = vocab_and_added(&tokens, &types)?;
    // Every split of a normal piece into two pieces, ranked by the piece's score (higher merges
    // first), ties by the ids of the halves.
    let mut merges: Vec<(f64, u64, u64)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        if types[id] != TOKEN_NORMAL {
            continue;
        }
        for (cut, _) in piece.char_indices().skip(1) {
            let (l, r) = piece.split_at(cut);
            if let (Some(li), Some(ri)) = (vocab.get(l).and_then(Json::as_u64), vocab.get(r).and_then(Json::as_u64)) {
                merges.push((scores[id], li, ri));
            }
        }
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let merges: Vec<Json> = merges.iter().map(|&(_, l, r)| json!([tokens[l as usize], tokens[r as usize]])).collect();
    let unk = types.iter().position(|&t| t == TOKEN_UNKNOWN).map(|i| tokens[i]);
    let space_prefix = file.bool_key("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
    let replace = json!({ "type": "Replace", "pattern": { "String": " " }, "content": "\u{2581}" });
    let normalizer = if space_prefix {
        json!({ "type": "Sequence", "normalizers": [{ "type": "Prepend", "prepend": "\u{2581}" }, replace] })
    } else {
        replace
    };
    let mut decoders = vec![
        json!({ "type": "Replace", "pattern": { "String": "\u{2581}" }, "content": " " }),
        json!({ "type": "ByteFallback" }),
        json!({ "type": "Fuse" }),
    ];
    if space_prefix {
        decoders.push(json!({ "type": "Strip", "content": " ", "start": 1, "stop": 0 }));
    }
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": null,
        "post_processor": with_bos(file, &tokens, None)?,
        "decoder": { "type": "Sequence", "decoders": decoders },
        "model": {
            "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
            "vocab": vocab, "merges": merges,
        },
    }))
}

/// `tokenizer.ggml.scores`: one finite number per token.
fn scores(file: &GgufFile, n: usize) -> Result<Vec<f64>> {
    let key = "tokenizer.ggml.scores";
    let items = file.array_key(key)?.ok_or_else(|| GgufError::MissingKey { key: key.to_string() })?;
    let values: Option<Vec<f64>> = items.iter().map(|v| v.as_f64().filter(|f| f.is_finite())).collect();
    match values {
        Some(v) if v.len() == n => Ok(v),
        _ => Err(GgufError::BadValue {
            key: key.to_string(),
            value: format!("{} items", items.len()),
            why: format!("expected one finite score per token ({n})"),
        }),
    }
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
