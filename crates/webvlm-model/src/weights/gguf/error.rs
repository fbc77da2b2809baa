//! The one error type of the GGUF reader. Every variant names the key, tensor or byte offset at
//! fault; none is produced by a panic.

use super::types::GgmlType;

/// Anything wrong with a GGUF file, or anything in it webvlm cannot represent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GgufError {
    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file: it starts with {found:02x?}, not \"GGUF\"")]
    BadMagic { found: [u8; 4] },

    /// A version other than 2 or 3 (v1 used 32-bit counts; a big-endian file reads as a huge
    /// version number here).
    #[error("GGUF version {version} is not supported (supported: 2, 3; big-endian files are not)")]
    UnsupportedVersion { version: u32 },

    /// The file ends inside a header field, a metadata value or a tensor info.
    #[error("the file ends at byte {file_len} while reading {what} at byte {offset} ({needed} bytes needed)")]
    Truncated { what: String, offset: u64, needed: u64, file_len: u64 },

    /// A string (key, value or tensor name) is not UTF-8.
    #[error("{what} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 { what: String, offset: u64 },

    /// A metadata value type id outside the GGUF spec (0..=12).
    #[error("metadata `{key}` has unknown value type {value_type}")]
    UnknownValueType { key: String, value_type: u32 },

    /// Arrays of arrays nested deeper than any writer produces.
    #[error("metadata `{key}` nests arrays deeper than {max} levels")]
    NestingTooDeep { key: String, max: usize },

    /// The same metadata key twice.
    #[error("metadata key `{key}` appears twice")]
    DuplicateKey { key: String },

    /// `general.alignment` is zero or not a power of two.
    #[error("general.alignment = {value} is not a non-zero power of two")]
    BadAlignment { value: u64 },

    /// A metadata value of the wrong type for its key.
    #[error("metadata `{key}` is {found}, expected {expected}")]
    WrongValueType { key: String, expected: &'static str, found: &'static str },

    /// A metadata key the conversion needs is absent.
    #[error("metadata `{key}` is missing")]
    MissingKey { key: String },

    /// A metadata value that is present and typed right but unusable (zero heads, ...).
    #[error("metadata `{key}` = {value}: {why}")]
    BadValue { key: String, value: String, why: String },

    /// The same tensor name twice.
    #[error("tensor `{name}` appears twice")]
    DuplicateTensor { name: String },

    /// A ggml type id this reader does not know, so its byte size is unknown.
    #[error("tensor `{name}` has unknown ggml type id {ggml_type}")]
    UnknownTensorType { name: String, ggml_type: u32 },

    /// Zero or too many dimensions, a zero extent, a row not a whole number of blocks, or a
    /// byte size that overflows.
    #[error("tensor `{name}` has an invalid shape {ne:?} (innermost first): {why}")]
    BadShape { name: String, ne: Vec<u64>, why: String },

    /// A tensor's data offset is not a multiple of `general.alignment`.
    #[error("tensor `{name}` starts at data offset {offset}, not a multiple of the alignment {alignment}")]
    MisalignedTensor { name: String, offset: u64, alignment: u64 },

    /// A tensor's bytes reach past the end of the file.
    #[error("tensor `{name}` occupies bytes {start}..{end} of the file, which has {file_len}")]
    TensorOutOfBounds { name: String, start: u64, end: u64, file_len: u64 },

    /// A valid ggml type that webvlm does not decode (K-quants, Q5_*, IQ*, integers, ...).
    #[error("tensor `{name}` is stored as {ggml_type}; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1")]
    UnsupportedTensorType { name: String, ggml_type: GgmlType },

    /// `general.architecture` names a model family this runtime does not read.
    #[error("general.architecture `{found}` is not supported; supported: {supported}")]
    UnsupportedArchitecture { found: String, supported: String },

    /// An mmproj file whose projector webvlm does not implement.
    #[error("mmproj projector type `{found}` is not supported; supported: {supported}")]
    UnsupportedProjector { found: String, supported: String },

    /// A tensor with no Hugging Face counterpart in this kind of file.
    #[error("tensor `{name}` has no Hugging Face equivalent in a {kind} GGUF file")]
    UnknownTensor { name: String, kind: &'static str },

    /// A tensor the converter split (Qwen-VL's q/k/v, its two patch frames) lacks a part.
    #[error("`{hf_name}` is split into parts in GGUF; `{given}` found but `{missing}` is missing")]
    IncompleteTensor { hf_name: String, given: String, missing: String },

    /// Two GGUF tensors would become the same Hugging Face tensor.
    #[error("tensors `{first}` and `{second}` both map to `{hf_name}`")]
    DuplicateHfName { hf_name: String, first: String, second: String },

    /// Q/K rows cannot be split into heads of an even number of rows.
    #[error(
        "tensor `{name}`: {rows} rows cannot be un-permuted for {heads} heads (each head needs an even number of rows)"
    )]
    BadPermutation { name: String, rows: u64, heads: u64 },

    /// A Q4_0 block whose offset `m = −8·d` does not fit in f16 (or whose scale is not finite),
    /// so it has no exact `d·q + m` form.
    #[error("tensor `{name}`, block {block}: Q4_0 scale {d} has no finite f16 offset -8·d")]
    Q4OffsetOverflow { name: String, block: usize, d: f32 },

    /// The block planes were refused by `webvlm_kernels` (should not happen for a checked file).
    #[error("tensor `{name}`: {message}")]
    Kernel { name: String, message: String },

    /// A size beyond what this platform's `usize` can address (wasm32: 4 GiB).
    #[error("{what} needs {bytes} bytes, more than this platform can address")]
    TooLarge { what: String, bytes: u64 },

    /// A tokenizer model or pre-tokenizer the GGUF tokenizer reader does not build.
    #[error("tokenizer `{what}` is not supported; supported: {supported}")]
    UnsupportedTokenizer { what: String, supported: &'static str },

    /// The text and mmproj files do not describe one model.
    #[error("the text and mmproj GGUF files disagree: {message}")]
    Mismatch { message: String },
}

/// Result with [`GgufError`].
pub type Result<T> = std::result::Result<T, GgufError>;
