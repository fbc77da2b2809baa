//! Tensor bytes → webvlm values: dense f32, or the u32 planes of webvlm's q8 / q4 block formats
//! (layouts in `shaders/README.md`), plus the Q/K row un-permutation.
//!
//! Every conversion is lossless:
//!
//! | GGUF block (32 weights) | bytes | webvlm | how |
//! |---|---|---|---|
//! | Q8_0 `{f16 d; i8 q[32]}` | 34 | q8 | the same 32 int8 (4 per word, in order) and the same `d` |
//! | Q4_1 `{f16 d, m; u8 q[16]}` | 20 | q4 | the same `d`, `m`; nibbles re-packed |
//! | Q4_0 `{f16 d; u8 q[16]}`, value `d·(q−8)` | 18 | q4 | `m = −8·d`, exact in f16 unless it overflows (then [`GgufError::Q4OffsetOverflow`]) |
//!
//! GGUF packs a 4-bit block as byte `j` (0..16) = weight `j` (low nibble) | weight `j+16` (high
//! nibble); webvlm's q4 word `j` (0..4) holds weights `8j..8j+8`, lowest nibble first.

use half::{bf16, f16};

use super::error::{GgufError, Result};
use super::types::GgmlType;

/// Weights per GGUF block of the three formats decoded here.
const QK: usize = 32;

/// Raw planes in webvlm's layout, before they become a `QuantMatrix`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BlockPlanes {
    /// `qs`: 8 words per block; `d`: one f16 per block, two per word (low half first).
    Q8 { qs: Vec<u32>, d: Vec<u32> },
    /// `qs`: 4 words per block; `dm`: `d | m << 16` per block.
    Q4 { qs: Vec<u32>, dm: Vec<u32> },
}

fn word(c: &[u8]) -> u32 {
    u32::from_le_bytes(c.try_into().unwrap_or_default())
}

fn half_bits(c: &[u8]) -> u16 {
    u16::from_le_bytes(c.try_into().unwrap_or_default())
}

/// F32, F16 and BF16 data as f32 values (in storage order).
pub(crate) fn dense(name: &str, ty: GgmlType, bytes: &[u8]) -> Result<Vec<f32>> {
    Ok(match ty {
        GgmlType::F32 => bytes.chunks_exact(4).map(|c| f32::from_bits(word(c))).collect(),
        GgmlType::F16 => bytes.chunks_exact(2).map(|c| f16::from_bits(half_bits(c)).to_f32()).collect(),
        GgmlType::BF16 => bytes.chunks_exact(2).map(|c| bf16::from_bits(half_bits(c)).to_f32()).collect(),
        other => return Err(GgufError::UnsupportedTensorType { name: name.to_string(), ggml_type: other }),
    })
}

/// Q8_0, Q4_0 and Q4_1 blocks as webvlm planes (blocks in storage order: row-major, 32 along a row).
pub(crate) fn block_planes(name: &str, ty: GgmlType, bytes: &[u8]) -> Result<BlockPlanes> {
    match ty {
        GgmlType::Q8_0 => {
            let blocks = bytes.chunks_exact(2 + QK);
            let mut qs = Vec::with_capacity(blocks.len() * QK / 4);
            let mut scales = Vec::with_capacity(blocks.len());
            for b in blocks {
                let (d, q) = b.split_at(2);
                scales.push(u32::from(half_bits(d)));
                qs.extend(q.chunks_exact(4).map(word));
            }
            let d = scales.chunks(2).map(|p| p.iter().enumerate().fold(0, |w, (i, s)| w | s << (16 * i))).collect();
            Ok(BlockPlanes::Q8 { qs, d })
        }
        GgmlType::Q4_0 | GgmlType::Q4_1 => {
            let header = if ty == GgmlType::Q4_0 { 2 } else { 4 };
            let blocks = bytes.chunks_exact(header + QK / 2);
            let mut qs = Vec::with_capacity(blocks.len() * QK / 8);
            let mut dm = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.enumerate() {
                let (head, nibbles) = b.split_at(header);
                let (d, m) = head.split_at(2);
                let d = f16::from_bits(half_bits(d));
                let m = if ty == GgmlType::Q4_0 {
                    // -8·d is exact in f32, and exact in f16 whenever it is finite there.
                    let m = f16::from_f32(-8.0 * d.to_f32());
                    if !m.is_finite() {
                        return Err(GgufError::Q4OffsetOverflow { name: name.to_string(), block: i, d: d.to_f32() });
                    }
                    m
                } else {
                    f16::from_bits(half_bits(m))
                };
                dm.push(u32::from(d.to_bits()) | u32::from(m.to_bits()) << 16);
                qs.extend(repack_q4(nibbles));
            }
            Ok(BlockPlanes::Q4 { qs, dm })
        }
        other => Err(GgufError::UnsupportedTensorType { name: name.to_string(), ggml_type: other }),
    }
}

/// GGUF's 16 bytes (weight j low, j+16 high) → webvlm's 4 words (weights 8j.. lowest nibble first).
fn repack_q4(nibbles: &[u8]) -> [u32; 4] {
    let q = |w: usize| -> u32 {
        let byte = nibbles.get(w % 16).copied().unwrap_or(0);
        u32::from(if w < 16 { byte & 0xF } else { byte >> 4 })
    };
    let mut out = [0u32; 4];
    for (j, word) in out.iter_mut().enumerate() {
        *word = (0..8).fold(0, |acc, t| acc | q(8 * j + t) << (4 * t));
    }
    out
}

/// Undo llama.cpp's `LlamaModel.permute` on the rows of a Q or K projection (weight or bias).
///
/// The converter moves Hugging Face row `h·hd + half·hd/2 + i` to `h·hd + 2i + half`
/// (`hd = rows / heads`), so that ggml's interleaved RoPE rotates the pairs that HF's
/// `rotate_half` rotates. webvlm implements `rotate_half`, so the rows go back. `heads` is the
/// head count the converter used: `n_head` for Q, `n_head_kv` for K. Rows are moved whole, so this
/// works on any storage type, block-quantised ones included (a row is a run of whole blocks).
pub(crate) fn unpermute_rows(name: &str, bytes: &[u8], rows: u64, heads: u64) -> Result<Vec<u8>> {
    let bad = || GgufError::BadPermutation { name: name.to_string(), rows, heads };
    if heads == 0 || !rows.is_multiple_of(heads) || !(rows / heads).is_multiple_of(2) {
        return Err(bad());
    }
    let rows = usize::try_from(rows).map_err(|_| bad())?;
    let hd = rows / usize::try_from(heads).map_err(|_| bad())?;
    if rows == 0 || !bytes.len().is_multiple_of(rows) {
        return Err(bad());
    }
    let row_bytes = bytes.len() / rows;
    let mut out = Vec::with_capacity(bytes.len());
    for dst in 0..rows {
        let (h, r) = (dst / hd, dst % hd);
        let (half, i) = (r / (hd / 2), r % (hd / 2));
        let src = h * hd + 2 * i + half;
        out.extend_from_slice(bytes.get(src * row_bytes..(src + 1) * row_bytes).ok_or_else(bad)?);
    }
    Ok(out)
}
