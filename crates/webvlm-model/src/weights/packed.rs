//! webvlm's packed model format: what `webvlm convert` writes and the browser streams.
//!
//! ```text
//! manifest.json    format/version, model_type, quant, the model's config.json, assets (tokenizer
//!                  and processor files, copied verbatim), shards {file, bytes, sha256}, tensors
//! weights-NNNNN.bin  the shards: one byte stream cut into files of at most `shard_size` bytes
//! ```
//!
//! Every tensor is a list of planes (`qs` + `d` for q8, `qs` + `dm` for q4, `w` for f16/f32;
//! layouts in shaders/README.md). A plane is `{offset, bytes}` in the *concatenated* stream of
//! all shards, aligned to [`ALIGN`] so that it can be uploaded without copying; a plane may cross
//! a shard boundary, so shards stay under the limit whatever the tensor sizes. The reader takes
//! shards one at a time, verifying each against its sha256 before any byte is used.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use webvlm_kernels::{QuantMatrix, QuantScheme};

use crate::error::{ModelError, Result};

pub const MANIFEST: &str = "manifest.json";
pub const FORMAT: &str = "webvlm-packed";
pub const VERSION: u32 = 1;
/// Plane alignment in the stream (and so within each shard, whose sizes are multiples of it).
pub const ALIGN: u64 = 256;

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `webvlm-packed`.
    pub format: String,
    /// Format version; readers refuse newer ones.
    pub version: u32,
    /// Architecture family (`config.model_type`).
    pub model_type: String,
    /// Scheme of the linear weights: `q4`, `q8` or `f16`.
    pub quant: String,
    /// The original `config.json`.
    pub config: serde_json::Value,
    /// Files copied verbatim (tokenizer, templates, processor settings).
    pub assets: Vec<FileEntry>,
    /// Weight shards, in stream order.
    pub shards: Vec<FileEntry>,
    /// Every tensor.
    pub tensors: Vec<TensorEntry>,
}

/// A file of the packed model with its size and checksum.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

/// One tensor: its dtype, logical shape and planes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TensorEntry {
    pub name: String,
    /// `q4`, `q8`, `f16` (block formats of a `[n, k]` matrix) or `f32`/`f16d`/`bf16d` (dense,
    /// any rank: plain f16 or bf16 values, for embeddings kept unquantised).
    pub dtype: String,
    pub shape: Vec<usize>,
    pub planes: Vec<PlaneEntry>,
}

/// A byte range of the concatenated shard stream.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PlaneEntry {
    pub offset: u64,
    pub bytes: u64,
}

/// What a tensor turns into once its planes are read.
pub enum Decoded {
    /// f32 values, row-major.
    Dense { shape: Vec<usize>, values: Vec<f32> },
    /// A block-format matrix.
    Quant(QuantMatrix),
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn scheme_from_name(name: &str) -> Option<QuantScheme> {
    match name {
        "q4" => Some(QuantScheme::Q4),
        "q8" => Some(QuantScheme::Q8),
        "f16" => Some(QuantScheme::F16),
        _ => None,
    }
}

fn words(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

impl Manifest {
    /// Parse and check the manifest's own consistency (not the shards' contents).
    pub fn from_json(text: &str) -> Result<Self> {
        let m: Manifest = serde_json::from_str(text).map_err(|e| ModelError::config(MANIFEST, e.to_string()))?;
        if m.format != FORMAT {
            return Err(ModelError::config(MANIFEST, format!("format `{}` is not `{FORMAT}`", m.format)));
        }
        if m.version > VERSION {
            return Err(ModelError::config(
                MANIFEST,
                format!("version {} is newer than this runtime reads ({VERSION})", m.version),
            ));
        }
        if scheme_from_name(&m.quant).is_none() {
            return Err(ModelError::UnknownQuant { name: "manifest.quant".into(), scheme: m.quant.clone() });
        }
        let total: u64 = m.shards.iter().map(|s| s.bytes).sum();
        for t in &m.tensors {
            if !matches!(t.dtype.as_str(), "q4" | "q8" | "f16" | "f32" | "f16d" | "bf16d") {
                return Err(ModelError::UnknownQuant { name: t.name.clone(), scheme: t.dtype.clone() });
            }
            for p in &t.planes {
                if p.offset.checked_add(p.bytes).is_none_or(|end| end > total) {
                    return Err(ModelError::Manifest {
                        message: format!(
                            "tensor `{}` has a plane at {}..{} but the shards hold {total} bytes",
                            t.name,
                            p.offset,
                            p.offset.saturating_add(p.bytes)
                        ),
                    });
                }
            }
        }
        Ok(m)
    }

    /// Turn the bytes of one tensor's planes into values.
    pub fn decode(entry: &TensorEntry, planes: &[&[u8]]) -> Result<Decoded> {
        let bad = |m: String| ModelError::Manifest { message: format!("tensor `{}`: {m}", entry.name) };
        let numel: usize = entry.shape.iter().product();
        let matrix = || -> Result<(usize, usize)> {
            match entry.shape.as_slice() {
                [n, k] => Ok((*n, *k)),
                other => Err(bad(format!("{} needs a 2-D shape, got {other:?}", entry.dtype))),
            }
        };
        let kerr = |e: webvlm_kernels::KernelError| bad(e.to_string());
        let mut planes = planes.iter().copied();
        let mut next = || planes.next().ok_or_else(|| bad("too few planes".into()));
        Ok(match entry.dtype.as_str() {
            "f32" => {
                let p = next()?;
                if p.len() != numel * 4 {
                    return Err(bad(format!("{} bytes for {numel} f32 values", p.len())));
                }
                let values = p.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                Decoded::Dense { shape: entry.shape.clone(), values }
            }
            "f16d" | "bf16d" => {
                let p = next()?;
                if p.len() != numel * 2 {
                    return Err(bad(format!("{} bytes for {numel} 16-bit values", p.len())));
                }
                let values = if entry.dtype == "f16d" {
                    p.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
                } else {
                    p.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
                };
                Decoded::Dense { shape: entry.shape.clone(), values }
            }
            "q8" => {
                let (n, k) = matrix()?;
                let (qs, d) = (next()?, next()?);
                Decoded::Quant(QuantMatrix::from_q8_planes(n, k, words(qs), words(d)).map_err(kerr)?)
            }
            "q4" => {
                let (n, k) = matrix()?;
                let (qs, dm) = (next()?, next()?);
                Decoded::Quant(QuantMatrix::from_q4_planes(n, k, words(qs), words(dm)).map_err(kerr)?)
            }
            "f16" => {
                let (n, k) = matrix()?;
                Decoded::Quant(QuantMatrix::from_f16_plane(n, k, words(next()?)).map_err(kerr)?)
            }
            other => return Err(ModelError::UnknownQuant { name: entry.name.clone(), scheme: other.into() }),
        })
    }
}

/// How far a shard's bytes are checked before use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Size and sha256 (the bytes come from a plain directory).
    Sha256,
    /// Size only: whoever hands the bytes over has verified them against this manifest's
    /// sha256 already (the browser shell does at download and records it in its store), so
    /// hashing again on every load would cost time proportional to the model for nothing.
    SizeOnly,
}

/// Streams shards in order and yields each tensor as soon as all its bytes have arrived.
pub struct ShardReader {
    manifest: Manifest,
    /// Per tensor: plane buffers being filled, and bytes still missing.
    pending: Vec<Option<(Vec<Vec<u8>>, u64)>>,
    /// Start offset of the next shard in the stream.
    cursor: u64,
    next_shard: usize,
}

impl ShardReader {
    pub fn new(manifest: Manifest) -> Self {
        let pending = vec![None; manifest.tensors.len()];
        Self { manifest, pending, cursor: 0, next_shard: 0 }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The shard [`ShardReader::feed`] expects next, or `None` when all were fed.
    pub fn next_shard(&self) -> Option<&FileEntry> {
        self.manifest.shards.get(self.next_shard)
    }

    /// Feed the next shard's bytes; returns the tensors completed by it (name, value).
    pub fn feed(&mut self, bytes: &[u8], check: Check) -> Result<Vec<(String, Decoded)>> {
        let entry = self
            .manifest
            .shards
            .get(self.next_shard)
            .ok_or_else(|| ModelError::Manifest { message: "more shards fed than the manifest lists".into() })?;
        if bytes.len() as u64 != entry.bytes {
            return Err(ModelError::Integrity {
                file: entry.file.clone(),
                message: format!("{} bytes, the manifest says {}", bytes.len(), entry.bytes),
            });
        }
        if check == Check::Sha256 {
            let found = sha256_hex(bytes);
            if found != entry.sha256 {
                return Err(ModelError::Integrity {
                    file: entry.file.clone(),
                    message: format!("sha256 {found} does not match the manifest's {}", entry.sha256),
                });
            }
        }
        let (start, end) = (self.cursor, self.cursor + entry.bytes);
        let mut done = Vec::new();
        for (i, t) in self.manifest.tensors.iter().enumerate() {
            let overlaps = t.planes.iter().any(|p| p.offset < end && p.offset + p.bytes > start);
            if !overlaps {
                continue;
            }
            // A tensor wholly inside this shard is decoded from the shard's bytes in place;
            // only one that crosses shards is assembled in buffers of its own.
            let inside = t.planes.iter().all(|p| p.offset >= start && p.offset + p.bytes <= end);
            if inside && self.pending[i].is_none() {
                let planes: Vec<&[u8]> =
                    t.planes.iter().map(|p| &bytes[(p.offset - start) as usize..(p.offset + p.bytes - start) as usize]).collect();
                done.push((t.name.clone(), Manifest::decode(t, &planes)?));
                continue;
            }
            let slot = self.pending[i].get_or_insert_with(|| {
                let bufs = t.planes.iter().map(|p| vec![0u8; p.bytes as usize]).collect();
                (bufs, t.planes.iter().map(|p| p.bytes).sum())
            });
            for (p, buf) in t.planes.iter().zip(slot.0.iter_mut()) {
                let lo = p.offset.max(start);
                let hi = (p.offset + p.bytes).min(end);
                if lo < hi {
                    buf[(lo - p.offset) as usize..(hi - p.offset) as usize]
                        .copy_from_slice(&bytes[(lo - start) as usize..(hi - start) as usize]);
                    slot.1 -= hi - lo;
                }
            }
            if slot.1 == 0 {
                if let Some((bufs, _)) = self.pending[i].take() {
                    let planes: Vec<&[u8]> = bufs.iter().map(Vec::as_slice).collect();
                    done.push((t.name.clone(), Manifest::decode(t, &planes)?));
                }
            }
        }
        self.cursor = end;
        self.next_shard += 1;
        Ok(done)
    }

    /// Fails if a tensor never completed (the shards end early).
    pub fn finish(&self) -> Result<()> {
        if let Some(shard) = self.next_shard() {
            return Err(ModelError::MissingFile { file: shard.file.clone(), why: "named by manifest.json, never fed".into() });
        }
        if let Some(i) = self.pending.iter().position(|p| p.is_some()) {
            return Err(ModelError::Manifest {
                message: format!("tensor `{}` is incomplete after the last shard", self.manifest.tensors[i].name),
            });
        }
        Ok(())
    }
}

/// Builds the shard stream for the converter.
pub struct PackWriter {
    shard_size: u64,
    stream_len: u64,
    current: Vec<u8>,
    /// Finished shards: (bytes) — the caller writes them out.
    finished: Vec<Vec<u8>>,
    pub tensors: Vec<TensorEntry>,
}

impl PackWriter {
    /// `shard_size` is rounded down to a multiple of [`ALIGN`] (and at least one ALIGN).
    pub fn new(shard_size: u64) -> Self {
        let shard_size = (shard_size / ALIGN).max(1) * ALIGN;
        Self { shard_size, stream_len: 0, current: Vec::new(), finished: Vec::new(), tensors: Vec::new() }
    }

    fn push_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = (self.shard_size - self.current.len() as u64) as usize;
            let take = room.min(bytes.len());
            self.current.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            self.stream_len += take as u64;
            if self.current.len() as u64 == self.shard_size {
                self.finished.push(std::mem::take(&mut self.current));
            }
        }
    }

    fn plane(&mut self, bytes: &[u8]) -> PlaneEntry {
        let pad = (ALIGN - self.stream_len % ALIGN) % ALIGN;
        self.push_bytes(&vec![0u8; pad as usize]);
        let entry = PlaneEntry { offset: self.stream_len, bytes: bytes.len() as u64 };
        self.push_bytes(bytes);
        entry
    }

    /// Add a dense tensor in the smallest lossless form when `compact` (bf16, else f16, else
    /// f32), or as f32.
    pub fn add_dense(&mut self, name: &str, shape: &[usize], values: &[f32], compact: bool) {
        let bf16_exact = compact && values.iter().all(|v| half::bf16::from_f32(*v).to_f32() == *v);
        let f16_exact = compact && !bf16_exact && values.iter().all(|v| half::f16::from_f32(*v).to_f32() == *v);
        let (dtype, bytes): (&str, Vec<u8>) = if bf16_exact {
            ("bf16d", values.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect())
        } else if f16_exact {
            ("f16d", values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect())
        } else {
            ("f32", values.iter().flat_map(|v| v.to_le_bytes()).collect())
        };
        let plane = self.plane(&bytes);
        self.tensors.push(TensorEntry { name: name.into(), dtype: dtype.into(), shape: shape.to_vec(), planes: vec![plane] });
    }

    /// Add a block-format matrix.
    pub fn add_quant(&mut self, name: &str, m: &QuantMatrix) {
        let planes = m
            .plane_slices()
            .into_iter()
            .map(|p| {
                let bytes: Vec<u8> = p.iter().flat_map(|w| w.to_le_bytes()).collect();
                self.plane(&bytes)
            })
            .collect();
        self.tensors.push(TensorEntry {
            name: name.into(),
            dtype: m.scheme().name().into(),
            shape: vec![m.n(), m.k()],
            planes,
        });
    }

    /// Shards completed so far (drained: the converter writes them as they fill).
    pub fn take_finished(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.finished)
    }

    /// The last, partial shard.
    pub fn finish(mut self) -> (Vec<Vec<u8>>, Vec<TensorEntry>) {
        if !self.current.is_empty() {
            self.finished.push(std::mem::take(&mut self.current));
        }
        (self.finished, self.tensors)
    }
}
