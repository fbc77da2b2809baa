//! GGUF: SmolVLM as llama.cpp ships it, read into webvlm's Hugging Face–shaped weights.
//!
//! llama.cpp splits a SmolVLM / Idefics3 checkpoint into two files (see `docs/multimodal.md`
//! and `convert_hf_to_gguf.py` in ggml-org/llama.cpp): a text decoder GGUF
//! (`general.architecture = llama`) and an `mmproj` GGUF with the vision tower and connector
//! (`general.architecture = clip`, `clip.projector_type = idefics3`). This module turns both back
//! into what a Hugging Face checkpoint holds:
//!
//! ```text
//! bytes ──GgufFile::parse──▶ header, metadata, tensor infos        (parse.rs, types.rs)
//!        .hf_tensors()   ──▶ (HF name, HF shape, Dense | Quant)    (names.rs, decode.rs)
//!        config_json(&text, Some(&mmproj)), preprocessor_config_json(&mmproj)   (config.rs)
//! ```
//!
//! * Names follow one table per file kind ([`map_name`]); shapes are `ne` reversed (a linear
//!   weight `ne = [in, out]` is HF `[out, in]`; the patch conv `[kw, kh, c, out]` is HF
//!   `[out, c, kh, kw]`, with no transpose: llama.cpp stores PyTorch's bytes as they are).
//! * The converter permutes the rows of every text Q and K projection for ggml's interleaved
//!   RoPE; they are permuted back (rows are whole blocks, so quantised Q/K work too).
//! * F32/F16/BF16 become dense f32; Q8_0 / Q4_0 / Q4_1 become a [`QuantMatrix`] (q8 / q4)
//!   without changing a single stored value (2-D tensors; any other rank is dequantised).
//!   Other ggml types (K-quants, Q5_*, IQ*) are refused by name.
//!
//! No filesystem, no threads, no panics on any input (the whole file is a `&[u8]`), so it runs
//! in wasm32 as it does natively. Tests: `cargo test -p webvlm-model gguf` on the fixtures of
//! `tests/generator/make_gguf_fixtures.py`.
//!
//! ```ignore
//! let text = GgufFile::parse(&text_bytes)?;
//! let mmproj = GgufFile::parse(&mmproj_bytes)?;
//! let config = gguf::config_json(&text, Some(&mmproj))?;
//! for file in [&text, &mmproj] {
//!     for t in file.hf_tensors()? {
//!         let t = t?; // t.name, t.shape, t.value: TensorValue::{Dense, Quant}
//!     }
//! }
//! ```

mod config;
mod decode;
mod error;
mod names;
mod parse;
mod tokenizer;
mod types;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use webvlm_kernels::QuantMatrix;

pub use config::{chat_template, config_json, preprocessor_config_json};
pub use error::{GgufError, Result};
pub use names::{FileKind, MappedName, Role, map_name};
pub use parse::{DEFAULT_ALIGNMENT, GgufFile, TensorInfo, Value};
pub use tokenizer::{tokenizer_config_json, tokenizer_json};
pub use types::GgmlType;

use decode::BlockPlanes;

/// What `general.architecture` may be.
pub const SUPPORTED_ARCHITECTURES: &str = "llama, qwen2, phi2 (text model), clip (mmproj)";
/// What an mmproj's `clip.projector_type` may be.
pub const SUPPORTED_PROJECTORS: &str = "idefics3";

/// A decoded tensor: dense f32 values (row-major, HF order) or a block-quantised matrix.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorValue {
    Dense(Vec<f32>),
    Quant(QuantMatrix),
}

impl TensorValue {
    /// f32 values either way (a quantised matrix is dequantised), e.g. for embeddings, which
    /// webvlm keeps dense for lookups while llama.cpp files often quantise them.
    pub fn into_dense(self) -> Vec<f32> {
        match self {
            TensorValue::Dense(v) => v,
            TensorValue::Quant(m) => m.dequantize(),
        }
    }
}

/// One tensor under its Hugging Face name.
#[derive(Debug, Clone, PartialEq)]
pub struct HfTensor {
    /// Hugging Face name, e.g. `model.text_model.layers.0.self_attn.q_proj.weight`.
    pub name: String,
    /// The name in the GGUF file, e.g. `blk.0.attn_q.weight`.
    pub gguf_name: String,
    /// How the GGUF file stored it.
    pub ggml_type: GgmlType,
    /// Hugging Face shape, outermost first (`[out, in]` for a linear weight).
    pub shape: Vec<usize>,
    pub value: TensorValue,
}

/// One tensor of [`GgufFile::hf_tensors`], resolved before anything is decoded.
#[derive(Debug, Clone)]
struct Planned {
    index: usize,
    hf_name: String,
    /// Heads to un-permute the rows with (text Q and K).
    heads: Option<u64>,
}

/// Iterator over a file's tensors as Hugging Face tensors, decoding one at a time.
pub struct HfTensors<'f, 'a> {
    file: &'f GgufFile<'a>,
    plan: std::vec::IntoIter<Planned>,
}

impl Iterator for HfTensors<'_, '_> {
    type Item = Result<HfTensor>;

    fn next(&mut self) -> Option<Self::Item> {
        let p = self.plan.next()?;
        Some(self.file.load(p))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.plan.size_hint()
    }
}

impl ExactSizeIterator for HfTensors<'_, '_> {}

fn usize_of(v: u64, what: impl FnOnce() -> String) -> Result<usize> {
    usize::try_from(v).map_err(|_| GgufError::TooLarge { what: what(), bytes: v })
}

/// The one place raw planes become a `webvlm_kernels::QuantMatrix`.
fn quant_matrix(name: &str, n: usize, k: usize, planes: BlockPlanes) -> Result<QuantMatrix> {
    let made = match planes {
        BlockPlanes::Q8 { qs, d } => QuantMatrix::from_q8_planes(n, k, qs, d),
        BlockPlanes::Q4 { qs, dm } => QuantMatrix::from_q4_planes(n, k, qs, dm),
    };
    made.map_err(|e| GgufError::Kernel { name: name.to_string(), message: e.to_string() })
}

/// Phi's Hugging Face names for the tensors the text table maps with Llama's: `ffn_up` /
/// `ffn_down` are `mlp.fc1` / `mlp.fc2`, `attn_output` is `self_attn.dense`, `output_norm` is
/// `final_layernorm`.
fn phi_name(llama_name: &str) -> String {
    const RENAMES: &[(&str, &str)] = &[
        (".mlp.up_proj.", ".mlp.fc1."),
        (".mlp.down_proj.", ".mlp.fc2."),
        (".self_attn.o_proj.", ".self_attn.dense."),
        ("model.text_model.norm.", "model.text_model.final_layernorm."),
    ];
    RENAMES
        .iter()
        .find(|(from, _)| llama_name.contains(from))
        .map_or_else(|| llama_name.to_string(), |(from, to)| llama_name.replacen(from, to, 1))
}

impl<'a> GgufFile<'a> {
    /// Which SmolVLM file this is, from `general.architecture` (and the projector type).
    pub fn kind(&self) -> Result<FileKind> {
        match self.architecture()? {
            "llama" | "qwen2" | "phi2" => Ok(FileKind::Text),
            "clip" => {
                let projector = match self.str_key("clip.projector_type")? {
                    Some(p) => Some(p),
                    None => self.str_key("clip.vision.projector_type")?,
                };
                match projector {
                    Some("idefics3") => Ok(FileKind::Mmproj),
                    other => Err(GgufError::UnsupportedProjector {
                        found: other.unwrap_or("<missing clip.projector_type>").to_string(),
                        supported: SUPPORTED_PROJECTORS.into(),
                    }),
                }
            }
            other => Err(GgufError::UnsupportedArchitecture {
                found: other.to_string(),
                supported: SUPPORTED_ARCHITECTURES.into(),
            }),
        }
    }

    /// Decode one tensor as stored (GGUF row order, no renaming, no un-permutation).
    /// A 2-D Q8_0/Q4_0/Q4_1 tensor becomes a `[ne1, ne0]` [`QuantMatrix`].
    pub fn decode(&self, info: &TensorInfo) -> Result<TensorValue> {
        self.decode_bytes(info, self.tensor_data(info)?)
    }

    fn decode_bytes(&self, info: &TensorInfo, bytes: &[u8]) -> Result<TensorValue> {
        let ty = info.ggml_type;
        if ty.is_block_quant() {
            let n = usize_of(info.n_rows(), || format!("rows of `{}`", info.name))?;
            let k = usize_of(info.row_len(), || format!("columns of `{}`", info.name))?;
            let m = quant_matrix(&info.name, n, k, decode::block_planes(&info.name, ty, bytes)?)?;
            return Ok(if info.ne.len() == 2 { TensorValue::Quant(m) } else { TensorValue::Dense(m.dequantize()) });
        }
        decode::dense(&info.name, ty, bytes).map(TensorValue::Dense)
    }

    /// Every tensor under its Hugging Face name, in file order. All names are resolved first
    /// (unknown or colliding names fail here, before any decoding); each item then decodes one
    /// tensor, so at most one tensor's values are held at a time.
    pub fn hf_tensors(&self) -> Result<HfTensors<'_, 'a>> {
        let kind = self.kind()?;
        let legacy_ffn = match kind {
            FileKind::Mmproj => self.legacy_ffn_layers()?,
            FileKind::Text => BTreeSet::new(),
        };
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        let mut plan = Vec::with_capacity(self.tensors().len());
        for (index, t) in self.tensors().iter().enumerate() {
            let mapped = map_name(kind, &t.name)
                .ok_or_else(|| GgufError::UnknownTensor { name: t.name.clone(), kind: kind.name() })?;
            let mut hf_name = mapped.hf_name;
            if kind == FileKind::Text && self.architecture()? == "phi2" {
                hf_name = phi_name(&hf_name);
            }
            // llama.cpp's converter permutes Q/K rows for its interleaved RoPE only for `llama`;
            // Qwen2 files keep Hugging Face's row order (NEOX-style RoPE).
            let permuted = self.architecture()? == "llama";
            let heads = match mapped.role {
                Role::Query if permuted => Some(self.text_heads("attention.head_count")?),
                Role::Key if permuted => Some(match self.u64_key(&self.text_key("attention.head_count_kv")?)? {
                    Some(_) => self.text_heads("attention.head_count_kv")?,
                    None => self.text_heads("attention.head_count")?,
                }),
                Role::FfnUp | Role::FfnDown if mapped.layer.is_some_and(|l| legacy_ffn.contains(&l)) => {
                    hf_name = swap_fc(&hf_name);
                    None
                }
                _ => None,
            };
            if let Some(first) = seen.insert(hf_name.clone(), &t.name) {
                return Err(GgufError::DuplicateHfName { hf_name, first: first.to_string(), second: t.name.clone() });
            }
            plan.push(Planned { index, hf_name, heads });
        }
        Ok(HfTensors { file: self, plan: plan.into_iter() })
    }

    fn load(&self, p: Planned) -> Result<HfTensor> {
        let info = self
            .tensors()
            .get(p.index)
            .ok_or_else(|| GgufError::UnknownTensor { name: format!("#{}", p.index), kind: "this" })?;
        let mut bytes = Cow::Borrowed(self.tensor_data(info)?);
        if let Some(heads) = p.heads {
            let rows = match info.ne.as_slice() {
                [len] if info.ggml_type.block().is_some_and(|(elems, _)| elems == 1) => *len,
                [_] => return Err(GgufError::BadPermutation { name: info.name.clone(), rows: 1, heads }),
                _ => info.n_rows(),
            };
            bytes = Cow::Owned(decode::unpermute_rows(&info.name, &bytes, rows, heads)?);
        }
        let value = self.decode_bytes(info, &bytes)?;
        Ok(HfTensor {
            name: p.hf_name,
            gguf_name: info.name.clone(),
            ggml_type: info.ggml_type,
            shape: info.hf_shape(),
            value,
        })
    }

    /// `{general.architecture}.{suffix}`, the prefix of every text-model hyperparameter.
    fn text_key(&self, suffix: &str) -> Result<String> {
        Ok(format!("{}.{suffix}", self.architecture()?))
    }

    /// A head count of the text model (non-zero).
    fn text_heads(&self, suffix: &str) -> Result<u64> {
        let key = self.text_key(suffix)?;
        match self.require_u64(&key)? {
            0 => Err(GgufError::BadValue { key, value: "0".into(), why: "a model needs at least one head".into() }),
            n => Ok(n),
        }
    }

    /// Vision layers whose fc1/fc2 carry the legacy (swapped) names, detected as clip.cpp does:
    /// `ffn_down` takes `n_embd` inputs, so it is really fc1. When `n_ff == n_embd` the shapes
    /// cannot tell, and the names are trusted.
    fn legacy_ffn_layers(&self) -> Result<BTreeSet<usize>> {
        let mut out = BTreeSet::new();
        let Some(n_embd) = self.u64_key("clip.vision.embedding_length")? else { return Ok(out) };
        if self.u64_key("clip.vision.feed_forward_length")? == Some(n_embd) {
            return Ok(out);
        }
        for t in self.tensors() {
            let Some(mapped) = map_name(FileKind::Mmproj, &t.name) else { continue };
            let (Role::FfnDown, Some(layer)) = (mapped.role, mapped.layer) else { continue };
            let up = format!("v.blk.{layer}.ffn_up.weight");
            if t.name.ends_with(".weight") && t.row_len() == n_embd && self.tensor(&up).is_some() {
                out.insert(layer);
            }
        }
        Ok(out)
    }
}

/// `…mlp.fc1.x` ↔ `…mlp.fc2.x`.
fn swap_fc(hf_name: &str) -> String {
    let (fc1, fc2) = (format!(".{}.", names::VISION_FC1), format!(".{}.", names::VISION_FC2));
    if hf_name.contains(&fc1) { hf_name.replace(&fc1, &fc2) } else { hf_name.replace(&fc2, &fc1) }
}
