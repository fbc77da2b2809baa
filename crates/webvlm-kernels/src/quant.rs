//! Block-quantised weight matrices on the CPU: the formats the WGSL kernels read.
//!
//! The byte layout is documented once, in `shaders/README.md`; this module is its Rust mirror.
//! In short, a weight `W` is `[n, k]` row-major (`[out, in]`, as checkpoints store linear
//! weights), cut into blocks of [`BLOCK`] = 32 along `k`; a row's tail block is zero-padded.
//! Every plane is a `Vec<u32>` so that WGSL only ever reads whole, aligned u32 words.
//!
//! | scheme | planes | value |
//! |---|---|---|
//! | q8  | `qs`: n·kb·8 words, 4 × i8 per word; `d`: one f16 per block, two per word | `d·q` |
//! | q4  | `qs`: n·kb·4 words, 8 × u4 per word, lowest nibble first; `dm`: `pack2x16float(d, m)` per block | `d·q + m` |
//! | f16 | `w`: two f16 per word, each row padded to an even length | `w` |
//!
//! Quantisation here is the simple round-to-nearest of llama.cpp's Q8_0 (absmax) and Q4_1
//! (min/max); the scales are rounded to f16 *before* the integers are chosen, so the stored
//! `(d, m)` pair is the one the integers were fitted to.

use half::f16;

use crate::error::{KernelError, Result};

/// Weights per block along `k`.
pub const BLOCK: usize = 32;

/// Blocks per row: `ceil(k / 32)`.
pub fn blocks_per_row(k: usize) -> usize {
    k.div_ceil(BLOCK)
}

/// How a [`QuantMatrix`] stores its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantScheme {
    /// 8-bit signed integers with one f16 scale per block of 32 (GGUF Q8_0).
    Q8,
    /// 4-bit unsigned integers with an f16 scale and an f16 offset per block (Q4_0, Q4_1).
    Q4,
    /// Plain f16, for comparison and for tensors kept unquantised.
    F16,
}

impl QuantScheme {
    /// Lower-case name, as the bench and CLI print it.
    pub fn name(self) -> &'static str {
        match self {
            QuantScheme::Q8 => "q8",
            QuantScheme::Q4 => "q4",
            QuantScheme::F16 => "f16",
        }
    }

    /// Bytes one row of `k` weights occupies in the largest plane (`qs`, or `w` for f16): the
    /// unit in which a matrix is split to fit a device's binding limit.
    pub fn row_bytes(self, k: usize) -> u64 {
        let kb = blocks_per_row(k) as u64;
        match self {
            QuantScheme::Q8 => kb * 32,
            QuantScheme::Q4 => kb * 16,
            QuantScheme::F16 => k.div_ceil(2) as u64 * 4,
        }
    }
}

/// The u32 planes of one matrix, by scheme.
#[derive(Debug, Clone, PartialEq)]
pub enum Planes {
    /// `qs`: `n·kb·8` words; `d`: `ceil(n·kb / 2)` words.
    Q8 { qs: Vec<u32>, d: Vec<u32> },
    /// `qs`: `n·kb·4` words; `dm`: `n·kb` words.
    Q4 { qs: Vec<u32>, dm: Vec<u32> },
    /// `w`: `n·ceil(k/2)` words.
    F16 { w: Vec<u32> },
}

/// A `[n, k]` weight matrix in one of the block formats.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantMatrix {
    n: usize,
    k: usize,
    planes: Planes,
}

/// Plane lengths in words for a scheme and shape: `(first plane, second plane or 0)`.
fn plane_words(scheme: QuantScheme, n: usize, k: usize) -> (usize, usize) {
    let kb = blocks_per_row(k);
    match scheme {
        QuantScheme::Q8 => (n * kb * 8, (n * kb).div_ceil(2)),
        QuantScheme::Q4 => (n * kb * 4, n * kb),
        QuantScheme::F16 => (n * k.div_ceil(2), 0),
    }
}

fn check_len(scheme: QuantScheme, plane: &'static str, n: usize, k: usize, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(KernelError::PlaneLength { scheme, plane, n, k, expected, found })
    }
}

fn check_shape(n: usize, k: usize) -> Result<()> {
    if n == 0 || k == 0 { Err(KernelError::EmptyMatrix { n, k }) } else { Ok(()) }
}

/// Pack two f16 into one word, `lo` in the low half (what WGSL's `pack2x16float(vec2(lo, hi))`
/// produces and `unpack2x16float` reads back).
pub fn pack_f16x2(lo: f16, hi: f16) -> u32 {
    u32::from(lo.to_bits()) | (u32::from(hi.to_bits()) << 16)
}

/// The `i`-th f16 of a plane packed two per word.
pub(crate) fn unpack_f16(plane: &[u32], i: usize) -> f16 {
    f16::from_bits((plane[i / 2] >> (16 * (i % 2))) as u16)
}

/// Round to f16, refusing values f16 cannot hold rather than storing Inf.
fn to_f16(v: f32, row: usize, block: usize, what: &str) -> Result<f16> {
    let h = f16::from_f32(v);
    if h.is_finite() {
        Ok(h)
    } else {
        Err(KernelError::Unrepresentable { row, block, what: format!("{what} {v} does not fit in f16") })
    }
}

impl QuantMatrix {
    /// Quantise a row-major `[n, k]` f32 matrix.
    pub fn quantize(data: &[f32], n: usize, k: usize, scheme: QuantScheme) -> Result<Self> {
        check_shape(n, k)?;
        if data.len() != n * k {
            return Err(KernelError::DataLength { n, k, expected: n * k, found: data.len() });
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            let (row, col) = (i / k, i % k);
            return Err(KernelError::Unrepresentable { row, block: col / BLOCK, what: format!("weight [{row}, {col}] is {}", data[i]) });
        }
        let planes = match scheme {
            QuantScheme::Q8 => quantize_q8(data, n, k)?,
            QuantScheme::Q4 => quantize_q4(data, n, k)?,
            QuantScheme::F16 => quantize_f16(data, n, k)?,
        };
        Ok(Self { n, k, planes })
    }

    /// From raw q8 planes (converter, GGUF Q8_0 importer). Lengths are checked.
    pub fn from_q8_planes(n: usize, k: usize, qs: Vec<u32>, d: Vec<u32>) -> Result<Self> {
        check_shape(n, k)?;
        let (wq, wd) = plane_words(QuantScheme::Q8, n, k);
        check_len(QuantScheme::Q8, "qs", n, k, wq, qs.len())?;
        check_len(QuantScheme::Q8, "d", n, k, wd, d.len())?;
        Ok(Self { n, k, planes: Planes::Q8 { qs, d } })
    }

    /// From raw q4 planes (converter, GGUF Q4_0/Q4_1 importer). Lengths are checked.
    pub fn from_q4_planes(n: usize, k: usize, qs: Vec<u32>, dm: Vec<u32>) -> Result<Self> {
        check_shape(n, k)?;
        let (wq, wdm) = plane_words(QuantScheme::Q4, n, k);
        check_len(QuantScheme::Q4, "qs", n, k, wq, qs.len())?;
        check_len(QuantScheme::Q4, "dm", n, k, wdm, dm.len())?;
        Ok(Self { n, k, planes: Planes::Q4 { qs, dm } })
    }

    /// From a raw f16 plane (two per word, rows padded to even). The length is checked.
    pub fn from_f16_plane(n: usize, k: usize, w: Vec<u32>) -> Result<Self> {
        check_shape(n, k)?;
        let (ww, _) = plane_words(QuantScheme::F16, n, k);
        check_len(QuantScheme::F16, "w", n, k, ww, w.len())?;
        Ok(Self { n, k, planes: Planes::F16 { w } })
    }

    /// Rows (`out` features).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Columns (`in` features).
    pub fn k(&self) -> usize {
        self.k
    }

    /// The storage scheme.
    pub fn scheme(&self) -> QuantScheme {
        match self.planes {
            Planes::Q8 { .. } => QuantScheme::Q8,
            Planes::Q4 { .. } => QuantScheme::Q4,
            Planes::F16 { .. } => QuantScheme::F16,
        }
    }

    /// The planes, in binding order.
    pub fn planes(&self) -> &Planes {
        &self.planes
    }

    /// The planes as slices, in the order the kernels bind them.
    pub fn plane_slices(&self) -> Vec<&[u32]> {
        match &self.planes {
            Planes::Q8 { qs, d } => vec![qs, d],
            Planes::Q4 { qs, dm } => vec![qs, dm],
            Planes::F16 { w } => vec![w],
        }
    }

    /// Total bytes of all planes: what a matvec must read.
    pub fn byte_size(&self) -> u64 {
        self.plane_slices().iter().map(|p| p.len() as u64 * 4).sum()
    }

    /// Bytes of the largest plane, which decides whether the matrix fits one binding.
    pub fn max_plane_bytes(&self) -> u64 {
        self.plane_slices().iter().map(|p| p.len() as u64 * 4).max().unwrap_or(0)
    }

    /// The rows `start..end` as a matrix of their own. The q8 `d` plane is re-packed because a
    /// range starting at an odd block index would otherwise begin in the middle of a word.
    pub fn rows(&self, start: usize, end: usize) -> Result<Self> {
        let end = end.min(self.n);
        check_shape(end.saturating_sub(start), self.k)?;
        let (n, k) = (end - start, self.k);
        let kb = blocks_per_row(k);
        let planes = match &self.planes {
            Planes::Q8 { qs, d } => {
                let qs = qs[start * kb * 8..end * kb * 8].to_vec();
                let scales: Vec<f16> = (start * kb..end * kb).map(|i| unpack_f16(d, i)).collect();
                Planes::Q8 { qs, d: pack_f16_plane(&scales) }
            }
            Planes::Q4 { qs, dm } => Planes::Q4 { qs: qs[start * kb * 4..end * kb * 4].to_vec(), dm: dm[start * kb..end * kb].to_vec() },
            Planes::F16 { w } => {
                let k2 = k.div_ceil(2);
                Planes::F16 { w: w[start * k2..end * k2].to_vec() }
            }
        };
        Ok(Self { n, k, planes })
    }

    /// Back to a row-major `[n, k]` f32 matrix (the padding is dropped).
    pub fn dequantize(&self) -> Vec<f32> {
        let (n, k) = (self.n, self.k);
        let kb = blocks_per_row(k);
        let mut out = vec![0f32; n * k];
        for (row, out_row) in out.chunks_exact_mut(k).enumerate() {
            for (col, o) in out_row.iter_mut().enumerate() {
                let (b, j) = (col / BLOCK, col % BLOCK);
                let blk = row * kb + b;
                *o = match &self.planes {
                    Planes::Q8 { qs, d } => {
                        let q = (qs[blk * 8 + j / 4] >> (8 * (j % 4))) as u8 as i8;
                        unpack_f16(d, blk).to_f32() * f32::from(q)
                    }
                    Planes::Q4 { qs, dm } => {
                        let q = (qs[blk * 4 + j / 8] >> (4 * (j % 8))) & 0xF;
                        let (d, m) = (unpack_f16(dm, 2 * blk).to_f32(), unpack_f16(dm, 2 * blk + 1).to_f32());
                        d * q as f32 + m
                    }
                    Planes::F16 { w } => unpack_f16(w, row * k.div_ceil(2) * 2 + col).to_f32(),
                };
            }
        }
        out
    }
}

/// Pack f16 values two per word, padding the last word with zero.
fn pack_f16_plane(values: &[f16]) -> Vec<u32> {
    values.chunks(2).map(|p| pack_f16x2(p[0], p.get(1).copied().unwrap_or(f16::ZERO))).collect()
}

/// Yield each `(row, block, values)` with the tail block zero-padded to 32.
fn for_each_block(data: &[f32], n: usize, k: usize, mut f: impl FnMut(usize, usize, &[f32; BLOCK]) -> Result<()>) -> Result<()> {
    let kb = blocks_per_row(k);
    let mut buf = [0f32; BLOCK];
    for row in 0..n {
        for b in 0..kb {
            let start = row * k + b * BLOCK;
            let len = BLOCK.min(k - b * BLOCK);
            buf.fill(0.0);
            buf[..len].copy_from_slice(&data[start..start + len]);
            f(row, b, &buf)?;
        }
    }
    Ok(())
}

fn quantize_q8(data: &[f32], n: usize, k: usize) -> Result<Planes> {
    let (wq, _) = plane_words(QuantScheme::Q8, n, k);
    let mut qs = Vec::with_capacity(wq);
    let mut scales = Vec::with_capacity(n * blocks_per_row(k));
    for_each_block(data, n, k, |row, b, w| {
        let amax = w.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = to_f16(amax / 127.0, row, b, "q8 scale")?;
        let df = d.to_f32();
        let inv = if df > 0.0 { 1.0 / df } else { 0.0 };
        for quad in w.chunks_exact(4) {
            let mut word = 0u32;
            for (i, v) in quad.iter().enumerate() {
                let q = (v * inv).round().clamp(-127.0, 127.0) as i8;
                word |= u32::from(q as u8) << (8 * i);
            }
            qs.push(word);
        }
        scales.push(d);
        Ok(())
    })?;
    Ok(Planes::Q8 { qs, d: pack_f16_plane(&scales) })
}

fn quantize_q4(data: &[f32], n: usize, k: usize) -> Result<Planes> {
    let (wq, wdm) = plane_words(QuantScheme::Q4, n, k);
    let (mut qs, mut dm) = (Vec::with_capacity(wq), Vec::with_capacity(wdm));
    for_each_block(data, n, k, |row, b, w| {
        // The padding of a tail block is not data: fit min/max to the real columns only, so a
        // short tail keeps its full 4-bit resolution.
        let len = BLOCK.min(k - b * BLOCK);
        let real = &w[..len];
        let (lo, hi) = real.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let d = to_f16((hi - lo) / 15.0, row, b, "q4 scale")?;
        let m = to_f16(lo, row, b, "q4 minimum")?;
        let (df, mf) = (d.to_f32(), m.to_f32());
        let inv = if df > 0.0 { 1.0 / df } else { 0.0 };
        for (oct_i, oct) in w.chunks_exact(8).enumerate() {
            let mut word = 0u32;
            for (i, v) in oct.iter().enumerate() {
                // Padding columns get q = 0; their value `m` is multiplied by a zero activation.
                let q = if oct_i * 8 + i < len { ((v - mf) * inv).round().clamp(0.0, 15.0) as u32 } else { 0 };
                word |= q << (4 * i);
            }
            qs.push(word);
        }
        dm.push(pack_f16x2(d, m));
        Ok(())
    })?;
    Ok(Planes::Q4 { qs, dm })
}

fn quantize_f16(data: &[f32], n: usize, k: usize) -> Result<Planes> {
    let mut w = Vec::with_capacity(plane_words(QuantScheme::F16, n, k).0);
    for (row, r) in data.chunks_exact(k).enumerate() {
        let halves = r.iter().enumerate().map(|(c, &v)| to_f16(v, row, c / BLOCK, "f16 weight")).collect::<Result<Vec<_>>>()?;
        w.extend(pack_f16_plane(&halves));
    }
    Ok(Planes::F16 { w })
}

#[cfg(test)]
mod tests;
