//! The GGUF container: header, metadata key/values, tensor infos and the aligned data section.
//!
//! ```text
//! "GGUF" u32 version  u64 n_tensors  u64 n_kv
//! n_kv ×      { string key, u32 value_type, value }          string = u64 len + UTF-8 bytes
//! n_tensors × { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
//! padding to general.alignment (default 32)
//! data: tensor i at data_start + offset_i, each offset a multiple of the alignment
//! ```
//!
//! Versions 2 and 3 share this little-endian layout (v3 only added big-endian files, which are
//! refused); v1 used 32-bit counts and is refused. Spec: `docs/gguf.md` in ggml-org/ggml. The
//! reader works on the whole file in memory, never panics, and never allocates more than the
//! file's own size implies, whatever counts the header claims.

use std::collections::BTreeMap;

use super::error::{GgufError, Result};
use super::types::GgmlType;

pub const MAGIC: &[u8; 4] = b"GGUF";
/// Alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// `GGML_MAX_DIMS`.
pub const MAX_DIMS: usize = 4;
/// Arrays of arrays deeper than this are refused (no writer produces even one level).
const MAX_NESTING: usize = 4;

/// A metadata value, by GGUF value type (ids 0..=12).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    /// The GGUF type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "uint8",
            Value::I8(_) => "int8",
            Value::U16(_) => "uint16",
            Value::I16(_) => "int16",
            Value::U32(_) => "uint32",
            Value::I32(_) => "int32",
            Value::F32(_) => "float32",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::U64(_) => "uint64",
            Value::I64(_) => "int64",
            Value::F64(_) => "float64",
        }
    }

    /// Any integer type holding a non-negative value.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(u64::from(v)),
            Value::U16(v) => Some(u64::from(v)),
            Value::U32(v) => Some(u64::from(v)),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any number. An f32 becomes the f64 of its shortest decimal form, so `1e-5f32` reads back as
    /// `1e-5` (the value the Hugging Face config held) rather than `9.99999974738e-6`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(f32_to_f64_decimal(v)),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64).or(match *self {
                Value::I8(v) => Some(f64::from(v)),
                Value::I16(v) => Some(f64::from(v)),
                Value::I32(v) => Some(f64::from(v)),
                Value::I64(v) => Some(v as f64),
                _ => None,
            }),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// The f64 whose shortest decimal form equals the f32's (`Display` prints the shortest string
/// that round-trips to the same f32).
pub fn f32_to_f64_decimal(v: f32) -> f64 {
    if !v.is_finite() {
        return f64::from(v);
    }
    format!("{v}").parse::<f64>().unwrap_or(f64::from(v))
}

/// One tensor's header entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Extents, innermost first (ggml's `ne`): a `[out, in]` linear weight has `ne = [in, out]`.
    pub ne: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Start of the data relative to the data section.
    pub offset: u64,
    /// Bytes of data.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// The shape in Hugging Face / PyTorch order (outermost first): `ne` reversed.
    pub fn hf_shape(&self) -> Vec<usize> {
        // Each extent is at most the file's byte count (checked by the parser), so it fits.
        self.ne.iter().rev().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect()
    }

    pub fn n_elements(&self) -> u64 {
        self.ne.iter().product()
    }

    /// `ne[0]`: the length of a row (the `in` features of a linear weight).
    pub fn row_len(&self) -> u64 {
        self.ne.first().copied().unwrap_or(0)
    }

    /// Product of the outer extents (the `out` features of a linear weight).
    pub fn n_rows(&self) -> u64 {
        self.ne.iter().skip(1).product()
    }
}

/// A parsed GGUF file borrowing its bytes.
#[derive(Debug, Clone)]
pub struct GgufFile<'a> {
    version: u32,
    alignment: u64,
    metadata: BTreeMap<String, Value>,
    tensors: Vec<TensorInfo>,
    data_start: u64,
    bytes: &'a [u8],
}

/// A cursor that can only fail, never panic.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: u64, what: impl FnOnce() -> String) -> Result<&'a [u8]> {
        let start = self.pos;
        let slice = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .and_then(|end| self.bytes.get(start..end).map(|s| (s, end)));
        match slice {
            Some((s, end)) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(GgufError::Truncated {
                what: what(),
                offset: start as u64,
                needed: n,
                file_len: self.bytes.len() as u64,
            }),
        }
    }

    fn array<const N: usize>(&mut self, what: impl FnOnce() -> String) -> Result<[u8; N]> {
        let src = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.iter_mut().zip(src).for_each(|(d, s)| *d = *s);
        Ok(out)
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn string(&mut self, what: impl Fn() -> String) -> Result<String> {
        let len = self.u64(|| format!("the length of {}", what()))?;
        let at = self.pos as u64;
        let bytes = self.take(len, &what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8 { what: what(), offset: at })
    }

    fn value(&mut self, value_type: u32, key: &str, depth: usize) -> Result<Value> {
        let what = || format!("the value of `{key}`");
        Ok(match value_type {
            0 => Value::U8(u8::from_le_bytes(self.array(what)?)),
            1 => Value::I8(i8::from_le_bytes(self.array(what)?)),
            2 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            4 => Value::U32(u32::from_le_bytes(self.array(what)?)),
            5 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            7 => Value::Bool(u8::from_le_bytes(self.array(what)?) != 0),
            8 => Value::String(self.string(what)?),
            9 => {
                if depth >= MAX_NESTING {
                    return Err(GgufError::NestingTooDeep { key: key.to_string(), max: MAX_NESTING });
                }
                let item_type = self.u32(|| format!("the item type of `{key}`"))?;
                let count = self.u64(|| format!("the length of `{key}`"))?;
                let min = min_value_size(item_type)
                    .ok_or_else(|| GgufError::UnknownValueType { key: key.to_string(), value_type: item_type })?;
                // Never trust `count` for the allocation: each item needs at least `min` bytes.
                let cap = usize::try_from(count).unwrap_or(usize::MAX).min(self.remaining() / min);
                let mut items = Vec::with_capacity(cap);
                for _ in 0..count {
                    items.push(self.value(item_type, key, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(u64::from_le_bytes(self.array(what)?)),
            11 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            other => return Err(GgufError::UnknownValueType { key: key.to_string(), value_type: other }),
        })
    }
}

/// The fewest bytes a value of this type occupies (a string: its length; an array: its header).
fn min_value_size(value_type: u32) -> Option<usize> {
    Some(match value_type {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        9 => 12,
        _ => return None,
    })
}

/// Smallest tensor info: empty name, one dimension.
const MIN_TENSOR_INFO: usize = 8 + 4 + 8 + 4 + 8;

impl<'a> GgufFile<'a> {
    /// Parse a whole GGUF file. Checks the header, every metadata value, every tensor info
    /// (shape, type, alignment) and that every tensor's bytes lie inside `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        let magic: [u8; 4] = r.array(|| "the magic".into())?;
        if &magic != MAGIC {
            return Err(GgufError::BadMagic { found: magic });
        }
        let version = r.u32(|| "the version".into())?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion { version });
        }
        let n_tensors = r.u64(|| "the tensor count".into())?;
        let n_kv = r.u64(|| "the metadata count".into())?;

        let mut metadata = BTreeMap::new();
        for i in 0..n_kv {
            let key = r.string(|| format!("metadata key #{i}"))?;
            let value_type = r.u32(|| format!("the value type of `{key}`"))?;
            let value = r.value(value_type, &key, 0)?;
            if metadata.contains_key(&key) {
                return Err(GgufError::DuplicateKey { key });
            }
            metadata.insert(key, value);
        }

        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => {
                let a = v.as_u64().ok_or_else(|| GgufError::WrongValueType {
                    key: "general.alignment".into(),
                    expected: "an unsigned integer",
                    found: v.type_name(),
                })?;
                if a == 0 || !a.is_power_of_two() {
                    return Err(GgufError::BadAlignment { value: a });
                }
                a
            }
        };

        let cap = usize::try_from(n_tensors).unwrap_or(usize::MAX).min(r.remaining() / MIN_TENSOR_INFO);
        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(cap);
        let mut names = std::collections::BTreeSet::new();
        for i in 0..n_tensors {
            let name = r.string(|| format!("the name of tensor #{i}"))?;
            let n_dims = r.u32(|| format!("the rank of tensor `{name}`"))?;
            let bad = |ne: Vec<u64>, why: String| GgufError::BadShape { name: name.clone(), ne, why };
            if n_dims == 0 || n_dims as usize > MAX_DIMS {
                return Err(bad(vec![], format!("{n_dims} dimensions (1..={MAX_DIMS} allowed)")));
            }
            let mut ne = Vec::with_capacity(n_dims as usize);
            for d in 0..n_dims {
                ne.push(r.u64(|| format!("extent {d} of tensor `{name}`"))?);
            }
            let type_id = r.u32(|| format!("the type of tensor `{name}`"))?;
            let offset = r.u64(|| format!("the data offset of tensor `{name}`"))?;
            let ggml_type = GgmlType(type_id);
            let (block_elems, block_bytes) = ggml_type
                .block()
                .ok_or_else(|| GgufError::UnknownTensorType { name: name.clone(), ggml_type: type_id })?;
            if ne.contains(&0) {
                return Err(bad(ne, "an extent is zero".into()));
            }
            let row_len = ne.first().copied().unwrap_or(0);
            if row_len % block_elems != 0 {
                return Err(bad(ne, format!("rows of {row_len} are not whole {ggml_type} blocks of {block_elems}")));
            }
            let n_bytes = ne
                .iter()
                .skip(1)
                .try_fold((row_len / block_elems).checked_mul(block_bytes), |acc, &d| Some(acc?.checked_mul(d)))
                .flatten()
                .ok_or_else(|| bad(ne.clone(), "the byte size overflows 64 bits".into()))?;
            if offset % alignment != 0 {
                return Err(GgufError::MisalignedTensor { name, offset, alignment });
            }
            if !names.insert(name.clone()) {
                return Err(GgufError::DuplicateTensor { name });
            }
            tensors.push(TensorInfo { name, ne, ggml_type, offset, n_bytes });
        }

        let file_len = bytes.len() as u64;
        let data_start = (r.pos as u64).div_ceil(alignment).saturating_mul(alignment);
        for t in &tensors {
            let start = data_start.checked_add(t.offset);
            let end = start.and_then(|s| s.checked_add(t.n_bytes));
            match (start, end) {
                (Some(_), Some(end)) if end <= file_len => {}
                _ => {
                    return Err(GgufError::TensorOutOfBounds {
                        name: t.name.clone(),
                        start: start.unwrap_or(u64::MAX),
                        end: end.unwrap_or(u64::MAX),
                        file_len,
                    });
                }
            }
        }
        Ok(Self { version, alignment, metadata, tensors, data_start, bytes })
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of the tensor data (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Every metadata key/value.
    pub fn metadata(&self) -> &BTreeMap<String, Value> {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// Tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Byte offset of the data section in the file.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// The raw bytes of one tensor (bounds were checked by [`GgufFile::parse`]; checked again
    /// here so that a `TensorInfo` from another file cannot index out of range).
    pub fn tensor_data(&self, info: &TensorInfo) -> Result<&'a [u8]> {
        let oob = || GgufError::TensorOutOfBounds {
            name: info.name.clone(),
            start: self.data_start.saturating_add(info.offset),
            end: self.data_start.saturating_add(info.offset).saturating_add(info.n_bytes),
            file_len: self.bytes.len() as u64,
        };
        let start = self.data_start.checked_add(info.offset).and_then(|s| usize::try_from(s).ok()).ok_or_else(oob)?;
        let len = usize::try_from(info.n_bytes).map_err(|_| oob())?;
        let end = start.checked_add(len).ok_or_else(oob)?;
        self.bytes.get(start..end).ok_or_else(oob)
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<&str> {
        self.str_key("general.architecture")?
            .ok_or_else(|| GgufError::MissingKey { key: "general.architecture".into() })
    }

    /// A non-negative integer value, if present.
    pub fn u64_key(&self, key: &str) -> Result<Option<u64>> {
        self.typed(key, "a non-negative integer", Value::as_u64)
    }

    /// A required non-negative integer.
    pub fn require_u64(&self, key: &str) -> Result<u64> {
        self.u64_key(key)?.ok_or_else(|| GgufError::MissingKey { key: key.to_string() })
    }

    /// A number, if present.
    pub fn f64_key(&self, key: &str) -> Result<Option<f64>> {
        self.typed(key, "a number", Value::as_f64)
    }

    pub fn str_key(&self, key: &str) -> Result<Option<&str>> {
        self.typed(key, "a string", Value::as_str)
    }

    pub fn bool_key(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "a bool", Value::as_bool)
    }

    pub fn array_key(&self, key: &str) -> Result<Option<&[Value]>> {
        self.typed(key, "an array", Value::as_array)
    }

    fn typed<'s, T>(
        &'s self,
        key: &str,
        expected: &'static str,
        f: impl Fn(&'s Value) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.metadata.get(key) {
            None => Ok(None),
            Some(v) => f(v).map(Some).ok_or_else(|| GgufError::WrongValueType {
                key: key.to_string(),
                expected,
                found: v.type_name(),
            }),
        }
    }
}
