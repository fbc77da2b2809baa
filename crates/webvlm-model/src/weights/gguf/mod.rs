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
pub use names::{FileKind, MappedName, Projector, Role, map_name};
pub use parse::{DEFAULT_ALIGNMENT, GgufFile, TensorInfo, Value};
pub use tokenizer::{add_image_token, tokenizer_config_json, tokenizer_json};
pub use types::GgmlType;

use decode::BlockPlanes;

/// What `general.architecture` may be.
pub const SUPPORTED_ARCHITECTURES: &str = "llama, qwen2, qwen2vl, phi2 (text model), clip (mmproj)";
/// What an mmproj's `clip.projector_type` may be.
pub const SUPPORTED_PROJECTORS: &str =
    "idefics3 (SmolVLM), mlp (LLaVA-1.5), qwen2vl_merger (Qwen2-VL), qwen2.5vl_merger (Qwen2.5-VL)";

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
    hf_name: String,
    /// The GGUF tensors it is made of (one, or the slots of a split tensor), by index.
    parts: Vec<Option<usize>>,
    combine: Combine,
    /// Heads to un-permute the rows with (text Q and K).
    heads: Option<u64>,
}

/// How the parts of a [`Planned`] tensor become one Hugging Face tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Combine {
    One,
    /// Rows of each part, one after the other (Qwen-VL's q, k, v → `qkv`).
    StackRows,
    /// Two `[out, c, p, p]` frames → `[out, c, 2, p, p]` (Qwen-VL's Conv3d patch kernel).
    Frames,
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
    /// Which file of a model this is, from `general.architecture` (and the projector type).
    pub fn kind(&self) -> Result<FileKind> {
        match self.architecture()? {
            "llama" | "qwen2" | "qwen2vl" | "phi2" => Ok(FileKind::Text),
            "clip" => {
                let name = match self.str_key("clip.projector_type")? {
                    Some(p) => Some(p),
                    None => self.str_key("clip.vision.projector_type")?,
                };
                let unsupported = |found: String| GgufError::UnsupportedProjector { found, supported: SUPPORTED_PROJECTORS.into() };
                let projector = name
                    .and_then(Projector::from_gguf_name)
                    .ok_or_else(|| unsupported(name.unwrap_or("<missing clip.projector_type>").to_string()))?;
                // LLaVA-NeXT (1.6) shares the `mlp` projector but tiles images on a grid of
                // resolutions and adds a newline embedding, which webvlm does not implement.
                if projector == Projector::Llava
                    && (self.get("clip.vision.image_grid_pinpoints").is_some() || self.tensor("model.image_newline").is_some())
                {
                    return Err(unsupported("mlp with image_grid_pinpoints / image_newline (LLaVA-NeXT anyres)".into()));
                }
                Ok(FileKind::Mmproj(projector))
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
    /// (unknown or colliding names, and split tensors missing a part, fail here, before any
    /// decoding); each item then decodes one tensor, so at most one tensor's values (or the
    /// parts of one split tensor) are held at a time.
    pub fn hf_tensors(&self) -> Result<HfTensors<'_, 'a>> {
        let kind = self.kind()?;
        let legacy_ffn = match kind {
            FileKind::Mmproj(_) => self.legacy_ffn_layers(kind)?,
            FileKind::Text => BTreeSet::new(),
        };
        let arch = self.architecture()?;
        let qwen = matches!(kind, FileKind::Mmproj(Projector::Qwen2Vl | Projector::Qwen25Vl));
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        // hf name → plan index, for the tensors assembled from several GGUF tensors.
        let mut groups: BTreeMap<String, usize> = BTreeMap::new();
        let mut plan: Vec<Planned> = Vec::with_capacity(self.tensors().len());
        for (index, t) in self.tensors().iter().enumerate() {
            let (mapped, slot) = if qwen && t.name == names::PATCH_FRAME_1 {
                let frame0 = map_name(kind, "v.patch_embd.weight")
                    .ok_or_else(|| GgufError::UnknownTensor { name: t.name.clone(), kind: kind.name() })?;
                (frame0, 1)
            } else {
                let mapped = map_name(kind, &t.name)
                    .ok_or_else(|| GgufError::UnknownTensor { name: t.name.clone(), kind: kind.name() })?;
                let slot = match mapped.role {
                    Role::QkvPart(i) => i,
                    _ => 0,
                };
                (mapped, slot)
            };
            let mut hf_name = mapped.hf_name;
            if kind == FileKind::Text && arch == "phi2" {
                hf_name = phi_name(&hf_name);
            }
            let (combine, slots) = match mapped.role {
                Role::QkvPart(_) => (Combine::StackRows, 3),
                Role::TemporalPatch => (Combine::Frames, 2),
                _ => (Combine::One, 1),
            };
            if combine != Combine::One {
                let at = *groups.entry(hf_name.clone()).or_insert_with(|| {
                    plan.push(Planned { hf_name: hf_name.clone(), parts: vec![None; slots], combine, heads: None });
                    plan.len() - 1
                });
                let part = &mut plan[at].parts[slot];
                if let Some(first) = *part {
                    return Err(GgufError::DuplicateHfName {
                        hf_name,
                        first: self.tensors()[first].name.clone(),
                        second: t.name.clone(),
                    });
                }
                *part = Some(index);
                continue;
            }
            // llama.cpp's converter permutes Q/K rows for its interleaved RoPE only for `llama`;
            // Qwen2 files keep Hugging Face's row order (NEOX-style RoPE).
            let permuted = arch == "llama";
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
            plan.push(Planned { hf_name, parts: vec![Some(index)], combine: Combine::One, heads });
        }
        for p in &plan {
            if let Some(slot) = p.parts.iter().position(Option::is_none) {
                let given: Vec<&str> = p.parts.iter().flatten().map(|&i| self.tensors()[i].name.as_str()).collect();
                return Err(GgufError::IncompleteTensor {
                    hf_name: p.hf_name.clone(),
                    given: given.join(", "),
                    missing: split_part_name(p.combine, slot, given.first().copied().unwrap_or("")),
                });
            }
        }
        Ok(HfTensors { file: self, plan: plan.into_iter() })
    }

    /// Name, stored type and Hugging Face shape of every tensor [`Self::hf_tensors`] yields,
    /// without decoding any (for `webvlm info`).
    pub fn hf_tensor_infos(&self) -> Result<Vec<(String, GgmlType, Vec<usize>)>> {
        let plan = self.hf_tensors()?.plan;
        let mut out = Vec::with_capacity(plan.len());
        for p in plan {
            let infos = p.parts.iter().map(|&i| self.info(i)).collect::<Result<Vec<_>>>()?;
            let mut shape = infos[0].hf_shape();
            match p.combine {
                Combine::One => {}
                Combine::StackRows => shape[0] = infos.iter().map(|i| i.hf_shape()[0]).sum(),
                Combine::Frames => shape.insert(2, 2),
            }
            out.push((p.hf_name, infos[0].ggml_type, shape));
        }
        Ok(out)
    }

    fn info(&self, index: Option<usize>) -> Result<&TensorInfo> {
        index
            .and_then(|i| self.tensors().get(i))
            .ok_or_else(|| GgufError::UnknownTensor { name: format!("#{index:?}"), kind: "this" })
    }

    fn load(&self, p: Planned) -> Result<HfTensor> {
        match p.combine {
            Combine::One => self.load_one(p),
            Combine::StackRows => self.load_stacked(p),
            Combine::Frames => self.load_frames(p),
        }
    }

    fn load_one(&self, p: Planned) -> Result<HfTensor> {
        let info = self.info(p.parts.first().copied().flatten())?;
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

    /// q, k, v one after the other along the outermost axis. Parts of one storage type are
    /// joined as stored bytes (whole rows of whole blocks), so a quantised qkv stays quantised;
    /// mixed types are joined as f32.
    fn load_stacked(&self, p: Planned) -> Result<HfTensor> {
        let infos = p.parts.iter().map(|&i| self.info(i)).collect::<Result<Vec<_>>>()?;
        let first = infos[0];
        let gguf_name = infos.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(" + ");
        let inner = &first.ne[..first.ne.len().saturating_sub(1)];
        if let Some(odd) = infos.iter().find(|i| i.ne.len() != first.ne.len() || i.ne[..i.ne.len().saturating_sub(1)] != *inner) {
            return Err(GgufError::BadShape {
                name: odd.name.clone(),
                ne: odd.ne.clone(),
                why: format!("cannot be stacked with `{}` {:?} into `{}`", first.name, first.ne, p.hf_name),
            });
        }
        let mut ne = first.ne.clone();
        if let Some(outer) = ne.last_mut() {
            *outer = infos.iter().map(|i| i.ne.last().copied().unwrap_or(0)).sum();
        }
        let one_type = infos.iter().all(|i| i.ggml_type == first.ggml_type);
        let (ggml_type, value) = if one_type {
            let mut bytes = Vec::with_capacity(infos.iter().map(|i| i.n_bytes as usize).sum());
            for info in &infos {
                bytes.extend_from_slice(self.tensor_data(info)?);
            }
            let joined = TensorInfo { name: gguf_name.clone(), ne: ne.clone(), ggml_type: first.ggml_type, offset: 0, n_bytes: bytes.len() as u64 };
            (first.ggml_type, self.decode_bytes(&joined, &bytes)?)
        } else {
            let mut values = Vec::new();
            for info in &infos {
                values.extend(self.decode(info)?.into_dense());
            }
            (GgmlType::F32, TensorValue::Dense(values))
        };
        let shape = ne.iter().rev().map(|&d| d as usize).collect();
        Ok(HfTensor { name: p.hf_name, gguf_name, ggml_type, shape, value })
    }

    /// Two Conv2d frames `ne = [p, p, c, out]` → the Conv3d kernel `[out, c, 2, p, p]`.
    fn load_frames(&self, p: Planned) -> Result<HfTensor> {
        let (f0, f1) = (self.info(p.parts[0])?, self.info(p.parts[1])?);
        let &[kw, kh, c, out] = f0.ne.as_slice() else {
            return Err(GgufError::BadShape { name: f0.name.clone(), ne: f0.ne.clone(), why: "a patch frame is [p, p, c, out]".into() });
        };
        if f1.ne != f0.ne {
            return Err(GgufError::BadShape {
                name: f1.name.clone(),
                ne: f1.ne.clone(),
                why: format!("the second patch frame must have the first one's shape {:?}", f0.ne),
            });
        }
        let (a, b) = (self.decode(f0)?.into_dense(), self.decode(f1)?.into_dense());
        let plane = usize_of(kw * kh, || format!("a frame of `{}`", f0.name))?;
        let mut values = Vec::with_capacity(a.len() * 2);
        for (x, y) in a.chunks_exact(plane).zip(b.chunks_exact(plane)) {
            values.extend_from_slice(x);
            values.extend_from_slice(y);
        }
        let dims = [out, c, 2, kh, kw].map(|d| d as usize);
        Ok(HfTensor {
            name: p.hf_name,
            gguf_name: format!("{} + {}", f0.name, f1.name),
            ggml_type: if f0.ggml_type == f1.ggml_type { f0.ggml_type } else { GgmlType::F32 },
            shape: dims.to_vec(),
            value: TensorValue::Dense(values),
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
    fn legacy_ffn_layers(&self, kind: FileKind) -> Result<BTreeSet<usize>> {
        let mut out = BTreeSet::new();
        let Some(n_embd) = self.u64_key("clip.vision.embedding_length")? else { return Ok(out) };
        if self.u64_key("clip.vision.feed_forward_length")? == Some(n_embd) {
            return Ok(out);
        }
        for t in self.tensors() {
            let Some(mapped) = map_name(kind, &t.name) else { continue };
            let (Role::FfnDown, Some(layer)) = (mapped.role, mapped.layer) else { continue };
            let up = format!("v.blk.{layer}.ffn_up.weight");
            if t.name.ends_with(".weight") && t.row_len() == n_embd && self.tensor(&up).is_some() {
                out.insert(layer);
            }
        }
        Ok(out)
    }
}

/// The GGUF name of the missing part of a split tensor, from a part that is there.
fn split_part_name(combine: Combine, slot: usize, present: &str) -> String {
    match combine {
        Combine::Frames if slot == 1 => names::PATCH_FRAME_1.to_string(),
        Combine::Frames => "v.patch_embd.weight".to_string(),
        _ => {
            let part = ["attn_q", "attn_k", "attn_v"][slot.min(2)];
            ["attn_q", "attn_k", "attn_v"].iter().fold(present.to_string(), |n, p| n.replacen(p, part, 1))
        }
    }
}

/// `…mlp.fc1.x` ↔ `…mlp.fc2.x`.
fn swap_fc(hf_name: &str) -> String {
    let (fc1, fc2) = (format!(".{}.", names::VISION_FC1), format!(".{}.", names::VISION_FC2));
    if hf_name.contains(&fc1) { hf_name.replace(&fc1, &fc2) } else { hf_name.replace(&fc2, &fc1) }
}
