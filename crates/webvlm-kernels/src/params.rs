//! The uniform structs of the kernels, one per family, mirrored field for field by the WGSL
//! structs in `shaders/copy.wgsl` and `shaders/common/io.wgsl`. Each is a whole number of
//! 16-byte rows, as the uniform address space wants.

use bytemuck::{Pod, Zeroable};

/// `CopyParams` of `copy.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct CopyParams {
    /// vec4<u32> elements to copy.
    pub len: u32,
    pub _pad: [u32; 3],
}

/// `FmaParams` of `fma_peak.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct FmaParams {
    /// Steps per invocation.
    pub iters: u32,
    pub b: f32,
    pub c: f32,
    pub _pad: u32,
}

/// `MatvecParams` of `common/io.wgsl` (decode, M = 1).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct MatvecParams {
    /// Weight rows in this chunk.
    pub n: u32,
    /// Activation length in vec4s.
    pub k4: u32,
    /// Blocks of 32 per weight row.
    pub kb: u32,
    /// Words per f16 weight row, `ceil(K / 2)`.
    pub k2: u32,
    /// First output column this chunk writes.
    pub n_offset: u32,
    pub _pad: [u32; 3],
}

/// `MatmulParams` of `common/io.wgsl` (prefill, M > 1).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct MatmulParams {
    /// Activation rows.
    pub m: u32,
    /// Weight rows in this chunk.
    pub n: u32,
    pub k4: u32,
    pub kb: u32,
    pub k2: u32,
    pub n_offset: u32,
    /// Output row stride: N of the whole matrix.
    pub ld_y: u32,
    pub _pad: u32,
}

/// `NormParams` of `norm.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct NormParams {
    pub rows: u32,
    pub cols: u32,
    pub eps: f32,
    pub _pad: u32,
}

/// `RopeParams` of `rope.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct RopeParams {
    pub n: u32,
    pub heads: u32,
    pub hd: u32,
    pub start: u32,
    /// heads · n · (hd − rot/2) invocations.
    pub total: u32,
    /// Rotated leading width of each head (the tables' width).
    pub rot: u32,
    pub _pad: [u32; 2],
}

/// `SoftmaxParams` of `softmax.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct SoftmaxParams {
    pub rows: u32,
    pub cols: u32,
    pub scale: f32,
    /// Queries per stacked head block (the causal mask's period).
    pub n: u32,
    /// Absolute position of query 0.
    pub start: u32,
    pub causal: u32,
    pub _pad: [u32; 2],
}

/// `EltParams` of `swiglu.wgsl` (and `ArgmaxParams` of `argmax.wgsl`: `len` = columns).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct EltParams {
    pub len: u32,
    pub _pad: [u32; 3],
}

/// `GatherParams` of `gather.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct GatherParams {
    /// Ids, the output's rows.
    pub count: u32,
    /// Values per row.
    pub k: u32,
    /// Blocks of 32 per row (q8, q4).
    pub kb: u32,
    /// Words per row (f16, bf16).
    pub k2: u32,
    /// First table row of this chunk.
    pub n_offset: u32,
    /// Rows in this chunk.
    pub n: u32,
    /// 1 for the chunk that ends the table.
    pub last: u32,
    pub _pad: u32,
}

/// `DecodeAttentionParams` of `attention_decode.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct DecodeAttentionParams {
    pub heads: u32,
    /// Query heads per KV head.
    pub rep: u32,
    pub hd: u32,
    /// Rotated values per head.
    pub rot: u32,
    /// Cache slot of the new token.
    pub pos: u32,
    /// Its row of the RoPE tables.
    pub rope_pos: u32,
    /// Positions per KV head in the cache buffers.
    pub capacity: u32,
    pub scale: f32,
}

/// `FlashParams` of `attention_flash.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct FlashParams {
    pub heads: u32,
    /// Query heads per KV head.
    pub rep: u32,
    /// Query rows.
    pub n: u32,
    pub hd: u32,
    /// Keys per KV head.
    pub total: u32,
    /// 0: every key; 1: causal; 2: per-row ranges.
    pub mode: u32,
    /// Causal: the position of query row 0.
    pub start: u32,
    pub scale: f32,
    /// Element strides (per head, per row) of q, k and v.
    pub q_hs: u32,
    pub q_rs: u32,
    pub k_hs: u32,
    pub k_rs: u32,
    pub v_hs: u32,
    pub v_rs: u32,
    /// Workgroups per head.
    pub row_blocks: u32,
    /// Element offsets of q, k and v in their bindings (a joined projection's output).
    pub q_off: u32,
    pub k_off: u32,
    pub v_off: u32,
    pub _pad: [u32; 2],
}

/// `SampleParams` of `sample.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct SampleParams {
    pub cols: u32,
    /// 0 = off.
    pub top_k: u32,
    /// 1 = off.
    pub top_p: f32,
    /// 0 = the first most likely token.
    pub temperature: f32,
    /// 1 = off.
    pub penalty: f32,
    /// Philox key (the seed's low and high words) and counter (the draw's).
    pub key: [u32; 2],
    pub draw: [u32; 2],
    pub _pad: [u32; 3],
}

/// The struct's bytes as the u64 words cubecl's launch info carries (little-endian, as the
/// GPU reads the uniform). Every params struct is a multiple of 8 bytes, checked below.
pub(crate) fn info_words<T: Pod>(params: &T) -> Vec<u64> {
    bytemuck::bytes_of(params)
        .chunks(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_sizes_are_whole_16_byte_rows() {
        assert_eq!(size_of::<CopyParams>(), 16);
        assert_eq!(size_of::<FmaParams>(), 16);
        assert_eq!(size_of::<MatvecParams>(), 32);
        assert_eq!(size_of::<MatmulParams>(), 32);
        assert_eq!(size_of::<NormParams>(), 16);
        assert_eq!(size_of::<RopeParams>(), 32);
        assert_eq!(size_of::<SoftmaxParams>(), 32);
        assert_eq!(size_of::<EltParams>(), 16);
        assert_eq!(size_of::<GatherParams>(), 32);
        assert_eq!(size_of::<DecodeAttentionParams>(), 32);
        assert_eq!(size_of::<SampleParams>(), 48);
        assert_eq!(size_of::<FlashParams>(), 80);
    }

    #[test]
    fn info_words_are_little_endian_pairs() {
        let p = MatmulParams { m: 1, n: 2, k4: 3, kb: 4, k2: 5, n_offset: 6, ld_y: 7, _pad: 0 };
        assert_eq!(info_words(&p), vec![1 | (2 << 32), 3 | (4 << 32), 5 | (6 << 32), 7]);
    }
}
