//! Conversion of a Hugging Face checkpoint to webvlm's packed format (manifest.json +
//! sha256-checked shards), quantising linear weights to q4, q8 or f16. Which tensors are
//! quantised is [`super::quantizable`]: embeddings are stored as bf16 or f16 when that is
//! lossless (bf16/f16 checkpoints, the usual case) and f32 otherwise; norms and biases as f32. A tied lm_head gets its own quantised copy, because
//! the embedding stays dense for lookups.
//!
//! Files are handed to a `sink` (the CLI writes them to a directory, tests keep them in memory).

use webvlm_kernels::{QuantMatrix, QuantScheme};

use super::packed::{self, FileEntry, Manifest, PackWriter, sha256_hex};
use super::{GgufModel, gguf, inspect, is_embedding, quantizable, read_safetensors_into, shard_files};
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::source::{GgufMetadataSource, ModelSource};

/// Files copied next to the shards when the checkpoint has them.
pub const ASSETS: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "processor_config.json",
    "preprocessor_config.json",
    "generation_config.json",
];

/// What happened, for the caller to report.
#[derive(Debug, Clone)]
pub struct ConvertSummary {
    pub tensors: usize,
    pub shards: usize,
    pub shard_bytes: u64,
}

/// Convert `source` to the packed format. `sink(name, bytes)` receives every output file
/// (shards as they fill, then assets, then `manifest.json`); `progress(tensor)` is called once
/// per input tensor.
pub fn convert(
    source: &dyn ModelSource,
    scheme: Option<QuantScheme>,
    shard_size: u64,
    sink: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
    progress: &mut dyn FnMut(&str),
) -> Result<ConvertSummary> {
    // A GGUF model brings its config, tokenizer and template as metadata: they become assets.
    let overlay = GgufMetadataSource::new(source)?;
    let source: &dyn ModelSource = &overlay;
    let config_text = source.read_string("config.json")?.ok_or_else(|| ModelError::MissingFile {
        file: "config.json".into(),
        why: format!("{} is not a Hugging Face or GGUF model directory", source.describe()),
    })?;
    let config = ModelConfig::from_json(&config_text)?;
    if source.read("manifest.json")?.is_some() {
        return Err(ModelError::config("manifest.json", "the model is already in the packed format"));
    }

    let mut writer = PackWriter::new(shard_size);
    let mut shards: Vec<FileEntry> = Vec::new();
    let mut emit = |bytes: Vec<u8>| -> Result<()> {
        let file = format!("weights-{:05}.bin", shards.len());
        sink(&file, &bytes)?;
        shards.push(FileEntry { file, bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) });
        Ok(())
    };
    let scheme_name = if overlay.is_gguf() {
        if scheme.is_some() {
            return Err(ModelError::config(
                "--quant",
                "a GGUF model keeps the block formats it was made with (Q8_0 → q8, Q4_0/Q4_1 → q4, losslessly); leave --quant out",
            ));
        }
        convert_gguf(source, &mut writer, &mut emit, progress)?
    } else {
        let scheme =
            scheme.ok_or_else(|| ModelError::config("--quant", "choose q4, q8 or f16 for a Hugging Face checkpoint"))?;
        convert_safetensors(source, &config, scheme, &mut writer, &mut emit, progress)?;
        scheme.name()
    };
    let (rest, tensors) = writer.finish();
    for shard in rest {
        emit(shard)?;
    }
    let mut assets = Vec::new();
    for name in ASSETS {
        if let Some(bytes) = source.read(name)? {
            sink(name, &bytes)?;
            assets.push(FileEntry { file: name.to_string(), bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) });
        }
    }
    let summary = ConvertSummary {
        tensors: tensors.len(),
        shards: shards.len(),
        shard_bytes: shards.iter().map(|s| s.bytes).sum(),
    };
    let manifest = Manifest {
        format: packed::FORMAT.into(),
        version: packed::VERSION,
        model_type: config.model_type.clone(),
        quant: scheme_name.into(),
        config: serde_json::from_str(&config_text).map_err(|e| ModelError::config("config.json", e.to_string()))?,
        assets,
        shards,
        tensors,
    };
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| ModelError::config("manifest.json", e.to_string()))?;
    sink(packed::MANIFEST, json.as_bytes())?;
    Ok(summary)
}

/// Safetensors shards, quantising linear weights to `scheme` (and a tied lm_head to a copy).
fn convert_safetensors(
    source: &dyn ModelSource,
    config: &ModelConfig,
    scheme: QuantScheme,
    writer: &mut PackWriter,
    emit: &mut dyn FnMut(Vec<u8>) -> Result<()>,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let has_lm_head = inspect(source)?.iter().any(|t| t.name == "lm_head.weight");
    let tie_copy = config.tied_embeddings() && !has_lm_head;
    let quantize = |name: &str, values: &[f32], shape: &[usize]| {
        QuantMatrix::quantize(values, shape[0], shape[1], scheme)
            .map_err(|e| ModelError::Kernel { name: name.to_string(), source: e })
    };
    for file in shard_files(source)? {
        let bytes = source.read(&file)?.ok_or_else(|| ModelError::MissingFile {
            file: file.clone(),
            why: "named by model.safetensors.index.json".into(),
        })?;
        let mut failure = None;
        read_safetensors_into(&file, &bytes, &mut |name, shape, values| {
            if failure.is_some() {
                return;
            }
            progress(&name);
            let result = (|| -> Result<()> {
                if tie_copy && is_embedding(&name) {
                    writer.add_quant("lm_head.weight", &quantize(&name, &values, &shape)?);
                }
                if quantizable(&name, &shape) {
                    writer.add_quant(&name, &quantize(&name, &values, &shape)?);
                } else {
                    // 16-bit only where lossless (bf16/f16 checkpoints), so a packed model computes
                    // exactly what the checkpoint quantised at load time computes.
                    writer.add_dense(&name, &shape, &values, name.contains("embed"));
                }
                for shard in writer.take_finished() {
                    emit(shard)?;
                }
                Ok(())
            })();
            if let Err(e) = result {
                failure = Some(e);
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
    }
    Ok(())
}

/// A GGUF model's tensors in their own block formats (no requantisation); the token embedding
/// stays quantised too (the loader makes the dense lookup table and the tied lm_head from it).
/// Returns the scheme holding most of the bytes, for the manifest.
fn convert_gguf(
    source: &dyn ModelSource,
    writer: &mut PackWriter,
    emit: &mut dyn FnMut(Vec<u8>) -> Result<()>,
    progress: &mut dyn FnMut(&str),
) -> Result<&'static str> {
    let model = GgufModel::find(source)?
        .ok_or_else(|| ModelError::MissingFile { file: "*.gguf".into(), why: "no GGUF file".into() })?;
    let mut bytes_by_scheme: Vec<(QuantScheme, u64)> = Vec::new();
    model.for_each_tensor(&mut |name, shape, value| {
        progress(&name);
        match value {
            gguf::TensorValue::Quant(m) => {
                match bytes_by_scheme.iter_mut().find(|(s, _)| *s == m.scheme()) {
                    Some((_, n)) => *n += m.byte_size(),
                    None => bytes_by_scheme.push((m.scheme(), m.byte_size())),
                }
                writer.add_quant(&name, &m);
            }
            gguf::TensorValue::Dense(values) => writer.add_dense(&name, &shape, &values, name.contains("embed")),
        }
        for shard in writer.take_finished() {
            emit(shard)?;
        }
        Ok(())
    })?;
    Ok(bytes_by_scheme.iter().max_by_key(|(_, n)| *n).map(|(s, _)| s.name()).unwrap_or("f16"))
}
