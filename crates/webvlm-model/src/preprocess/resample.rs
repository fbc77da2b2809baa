//! Pillow-exact resizing of 8-bit RGB images.
//!
//! Follows Pillow's `Image.resize` (no `box`, no `reducing_gap`) as transformers' PIL backend
//! calls it, down to the last bit:
//!
//! * the convolution filters follow libImaging `Resample.c` (`precompute_coeffs`,
//!   `normalize_coeffs_8bpc`, the 8-bit horizontal / vertical passes, `ImagingResampleInner`):
//!   per-output-pixel weights computed in f64, normalised to sum 1, turned into fixed-point
//!   integers with [`PRECISION_BITS`] fraction bits, accumulated in `i32` starting from one half,
//!   and clipped to 0..=255 after each pass. Each pass is skipped when its dimension does not
//!   change. The pass order is Pillow 13's (python-pillow/Pillow#9549): vertical first when the
//!   height shrinks by more than twice as many pixels as the width does, horizontal first
//!   otherwise. Pillow 12 and older always ran the horizontal pass first; because each pass
//!   rounds to bytes, their output for such sizes differs from this one (and from transformers
//!   running on Pillow 13);
//! * NEAREST follows `_imaging.c` `_resize`, which routes it through the affine transform in
//!   `Geometry.c` (`ImagingScaleAffine`): source coordinates are advanced by repeated addition,
//!   not multiplication, and that accumulated rounding is part of the result;
//! * requesting the current size returns a copy, as `Image.resize` does before any filtering.
//!
//! The filters need `sin`/`cos` (Lanczos, Hamming). Pillow gets them from the C library; Rust's
//! `f64::sin` is the platform libm on native targets and a port of musl's libm on wasm. The
//! weights are rounded to 22 fraction bits afterwards, so a last-ulp difference in `sin` would
//! only matter if a weight sat exactly on a rounding boundary.

use super::{PreprocessError, RgbImage, checked_len};

/// Largest width or height [`resize`] accepts or produces.
///
/// Twice [`super::MAX_INPUT_SIDE`] because Idefics3's "resize for the vision encoder" step
/// rounds sides up to a multiple of the tile size, which can push an input at the limit past it.
pub const MAX_RESIZE_SIDE: u32 = 2 * super::MAX_INPUT_SIDE;

/// Fraction bits of the fixed-point weights: 32-bit accumulator, 8 bits of result, and 2 bits
/// of headroom because the weights of Lanczos / bicubic have negative lobes and their positive
/// part can sum to more than 1 (Pillow's `PRECISION_BITS`).
pub const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Resampling filters, numbered like `PIL.Image.Resampling` (and like the `resample` field of a
/// transformers `preprocessor_config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    Nearest = 0,
    Lanczos = 1,
    Bilinear = 2,
    Bicubic = 3,
    Box = 4,
    Hamming = 5,
}

impl Filter {
    /// The filter with Pillow's numeric code, if it is one we implement.
    pub fn from_pil_code(code: u32) -> Option<Self> {
        Some(match code {
            0 => Self::Nearest,
            1 => Self::Lanczos,
            2 => Self::Bilinear,
            3 => Self::Bicubic,
            4 => Self::Box,
            5 => Self::Hamming,
            _ => return None,
        })
    }

    /// Pillow's numeric code for this filter.
    pub fn pil_code(self) -> u32 {
        self as u32
    }

    /// Radius of the kernel in source pixels at scale 1. Nearest has no kernel.
    fn support(self) -> f64 {
        match self {
            Self::Nearest => 0.0,
            Self::Box => 0.5,
            Self::Bilinear | Self::Hamming => 1.0,
            Self::Bicubic => 2.0,
            Self::Lanczos => 3.0,
        }
    }

    /// Kernel value at distance `x`. The expressions keep Pillow's operation order (and its
    /// single-precision Hamming constants) because the weights must round identically.
    fn weight(self, x: f64) -> f64 {
        match self {
            Self::Nearest => 0.0,
            // Half-open on the left so that a sample exactly between two pixels goes to one.
            Self::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Self::Bilinear => {
                let x = x.abs();
                if x < 1.0 { 1.0 - x } else { 0.0 }
            }
            Self::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    // Pillow writes these constants as C `float` literals.
                    x.sin() / x * (f64::from(0.54f32) + f64::from(0.46f32) * x.cos())
                }
            }
            Self::Bicubic => {
                // Keys' cubic convolution with a = -0.5.
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Self::Lanczos => {
                // Truncated to [-3, 3), asymmetric exactly like Pillow.
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

/// Fixed-point weights of a one-dimensional resampling: output pixel `i` is
/// `sum_j weights[i * stride + j] * input[start[i] + j]` for `j < len[i]`.
struct Taps {
    start: Vec<usize>,
    len: Vec<usize>,
    stride: usize,
    weights: Vec<i32>,
}

impl Taps {
    fn of(&self, i: usize) -> (usize, &[i32]) {
        let base = i * self.stride;
        (self.start[i], &self.weights[base..base + self.len[i]])
    }
}

/// Weights for resampling `in_size` pixels to `out_size` (Pillow's `precompute_coeffs`
/// followed by `normalize_coeffs_8bpc`).
fn taps(in_size: usize, out_size: usize, filter: Filter) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    // When upscaling the kernel keeps its natural width; when downscaling it is stretched so
    // every source pixel contributes (antialiasing).
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    let stride = support.ceil() as usize * 2 + 1;
    let inv_filter_scale = 1.0 / filter_scale;
    let one = f64::from(1u32 << PRECISION_BITS);

    let mut start = Vec::with_capacity(out_size);
    let mut len = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * stride];
    let mut raw = vec![0f64; stride];
    for i in 0..out_size {
        let center = (i as f64 + 0.5) * scale;
        // `as i64` truncates toward zero like C's (int) cast; the clamp comes after, as there.
        let lo = ((center - support + 0.5) as i64).max(0);
        let hi = ((center + support + 0.5) as i64).min(in_size as i64);
        let n = (hi - lo).max(0) as usize;

        let mut total = 0.0;
        for (j, w) in raw[..n].iter_mut().enumerate() {
            *w = filter.weight(((j as i64 + lo) as f64 - center + 0.5) * inv_filter_scale);
            total += *w;
        }
        let out = &mut weights[i * stride..i * stride + n];
        for (q, &w) in out.iter_mut().zip(&raw[..n]) {
            let w = if total != 0.0 { w / total } else { w };
            // Round half away from zero, then truncate, as `normalize_coeffs_8bpc` does.
            *q = if w < 0.0 {
                (-0.5 + w * one) as i32
            } else {
                (0.5 + w * one) as i32
            };
        }
        start.push(lo as usize);
        len.push(n);
    }
    Taps {
        start,
        len,
        stride,
        weights,
    }
}

/// Rounds a fixed-point accumulator to a byte. Pillow starts every accumulator at one half, so
/// the shift rounds to nearest.
#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Horizontal pass over source rows `rows`, producing `out_w` columns.
///
/// Accumulation wraps on overflow like the C `int` arithmetic it mirrors; with 2 bits of
/// headroom it never does for 8-bit input.
fn horizontal(
    src: &[u8],
    src_w: usize,
    rows: std::ops::Range<usize>,
    t: &Taps,
    out_w: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * out_w * 3);
    for y in rows {
        let line = &src[y * src_w * 3..(y + 1) * src_w * 3];
        for x in 0..out_w {
            let (first, ks) = t.of(x);
            let mut acc = [HALF; 3];
            for (px, &k) in line[first * 3..(first + ks.len()) * 3]
                .chunks_exact(3)
                .zip(ks)
            {
                for c in 0..3 {
                    acc[c] = acc[c].wrapping_add(i32::from(px[c]).wrapping_mul(k));
                }
            }
            out.extend(acc.map(clip8));
        }
    }
    out
}

/// Vertical pass; `t` indexes rows of `src` (already shifted to the rows `src` holds).
fn vertical(src: &[u8], width: usize, t: &Taps, out_h: usize) -> Vec<u8> {
    let row_len = width * 3;
    let mut out = Vec::with_capacity(out_h * row_len);
    // Summing whole rows keeps the memory access sequential; integer addition makes the order
    // of the terms irrelevant to the result.
    let mut acc = vec![0i32; row_len];
    for y in 0..out_h {
        let (first, ks) = t.of(y);
        acc.fill(HALF);
        for (j, &k) in ks.iter().enumerate() {
            let line = &src[(first + j) * row_len..(first + j + 1) * row_len];
            for (a, &v) in acc.iter_mut().zip(line) {
                *a = a.wrapping_add(i32::from(v).wrapping_mul(k));
            }
        }
        out.extend(acc.iter().map(|&a| clip8(a)));
    }
    out
}

/// Pillow 13's pass order: the vertical pass goes first when the height is reduced by more than
/// twice as many pixels as the width (Pillow does it to make the horizontal pass cheaper; for
/// us it matters because each pass rounds to bytes, so the order changes the result).
fn vertical_first(in_w: usize, in_h: usize, out_w: usize, out_h: usize) -> bool {
    out_h < in_h && (in_h - out_h) as i64 > 2 * (in_w as i64 - out_w as i64)
}

/// Pillow's NEAREST: `ImagingScaleAffine` with the source step `in / out` per output pixel.
fn nearest(image: &RgbImage, out_w: usize, out_h: usize) -> Vec<u8> {
    let (in_w, in_h) = (image.width as usize, image.height as usize);
    let step_x = in_w as f64 / out_w as f64;
    let step_y = in_h as f64 / out_h as f64;

    // Source column per output column, `None` where the accumulated coordinate left the image.
    let mut columns = Vec::with_capacity(out_w);
    let mut pos = step_x * 0.5;
    for _ in 0..out_w {
        columns.push(source_index(pos, in_w));
        pos += step_x;
    }
    // Pillow copies the span between the first and last in-range columns, reading column 0
    // for any out-of-range column inside that span, and leaves the rest black.
    let first = columns.iter().position(Option::is_some);
    let last = columns.iter().rposition(Option::is_some);

    let mut out = vec![0u8; out_w * out_h * 3];
    let mut pos = step_y * 0.5;
    for dst_row in out.chunks_exact_mut(out_w * 3) {
        if let (Some(src_y), Some(first), Some(last)) = (source_index(pos, in_h), first, last) {
            let src_row = &image.data[src_y * in_w * 3..(src_y + 1) * in_w * 3];
            for x in first..=last {
                let sx = columns[x].unwrap_or(0);
                dst_row[x * 3..x * 3 + 3].copy_from_slice(&src_row[sx * 3..sx * 3 + 3]);
            }
        }
        pos += step_y;
    }
    out
}

/// `Geometry.c`'s `COORD`: negative coordinates map to -1 (outside), others truncate.
fn source_index(pos: f64, size: usize) -> Option<usize> {
    if pos < 0.0 {
        return None;
    }
    let i = pos as usize;
    (i < size).then_some(i)
}

/// Resizes `image` to `width × height` exactly like Pillow's `Image.resize(.., resample)` on an
/// RGB image.
///
/// Errors: [`PreprocessError::EmptyImage`] / [`PreprocessError::BufferSize`] for an
/// inconsistent input, [`PreprocessError::ImageTooLarge`] when the input or the target has a
/// side above [`MAX_RESIZE_SIDE`], [`PreprocessError::InvalidConfig`] for a zero-sized target.
pub fn resize(
    image: &RgbImage,
    width: u32,
    height: u32,
    filter: Filter,
) -> Result<RgbImage, PreprocessError> {
    let expected = checked_len(image.width, image.height, 3, MAX_RESIZE_SIDE)?;
    if image.data.len() != expected {
        return Err(PreprocessError::BufferSize {
            expected,
            got: image.data.len(),
        });
    }
    if width == 0 || height == 0 {
        return Err(PreprocessError::InvalidConfig(format!(
            "resize target {width}x{height}: both sides must be at least 1"
        )));
    }
    checked_len(width, height, 3, MAX_RESIZE_SIDE)?;

    if (width, height) == (image.width, image.height) {
        return Ok(image.clone());
    }
    let (out_w, out_h) = (width as usize, height as usize);
    let data = if filter == Filter::Nearest {
        nearest(image, out_w, out_h)
    } else {
        convolve(image, out_w, out_h, filter)
    };
    Ok(RgbImage {
        width,
        height,
        data,
    })
}

/// The two separable passes of `ImagingResampleInner`, for a size change in at least one axis.
fn convolve(image: &RgbImage, out_w: usize, out_h: usize, filter: Filter) -> Vec<u8> {
    let (in_w, in_h) = (image.width as usize, image.height as usize);
    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    if vertical_first(in_w, in_h, out_w, out_h) {
        let tmp = vertical(&image.data, in_w, &taps(in_h, out_h, filter), out_h);
        return if need_h {
            horizontal(&tmp, in_w, 0..out_h, &taps(in_w, out_w, filter), out_w)
        } else {
            tmp
        };
    }
    if !need_h {
        return vertical(&image.data, in_w, &taps(in_h, out_h, filter), out_h);
    }
    let h_taps = taps(in_w, out_w, filter);
    if !need_v {
        return horizontal(&image.data, in_w, 0..in_h, &h_taps, out_w);
    }
    // Only the band of source rows the vertical pass reads needs the horizontal pass; the
    // vertical weights are re-based onto that band, as Pillow does.
    let mut v_taps = taps(in_h, out_h, filter);
    let first_row = v_taps.start[0];
    let end_row = v_taps.start[out_h - 1] + v_taps.len[out_h - 1];
    for s in &mut v_taps.start {
        *s -= first_row;
    }
    let band = horizontal(&image.data, in_w, first_row..end_row, &h_taps, out_w);
    vertical(&band, out_w, &v_taps, out_h)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{index, input_image, read, str_field, u64_field};
    use super::*;

    #[test]
    fn matches_pillow_goldens() {
        let index = index();
        let cases = index["resize"].as_array().cloned().unwrap_or_default();
        assert!(
            cases.len() >= 40,
            "expected the full resize golden set, found {}",
            cases.len()
        );
        let mut seen = std::collections::HashSet::new();
        for case in &cases {
            let name = str_field(case, "image");
            let source = input_image(&index, name);
            let code = u64_field(case, "filter") as u32;
            let filter = Filter::from_pil_code(code).unwrap_or_else(|| panic!("filter {code}"));
            seen.insert(filter);
            let (w, h) = (
                u64_field(case, "width") as u32,
                u64_field(case, "height") as u32,
            );
            let got = resize(&source, w, h, filter).unwrap();
            let want = read(str_field(case, "file"));
            assert_eq!((got.width, got.height), (w, h));
            assert_eq!(
                got.data.len(),
                want.len(),
                "{name} -> {w}x{h} {filter:?}: length"
            );
            if let Some(i) = got.data.iter().zip(&want).position(|(a, b)| a != b) {
                let px = i / 3;
                panic!(
                    "{name} {}x{} -> {w}x{h} {filter:?}: pixel ({}, {}) channel {} is {} but \
                     Pillow gives {}",
                    source.width,
                    source.height,
                    px % w as usize,
                    px / w as usize,
                    i % 3,
                    got.data[i],
                    want[i]
                );
            }
        }
        assert_eq!(seen.len(), 6, "goldens should cover every filter");
    }

    #[test]
    fn same_size_is_a_copy() {
        let img = RgbImage::from_rgb(2, 1, vec![1, 2, 3, 250, 251, 252]).unwrap();
        for code in 0..6 {
            let filter = Filter::from_pil_code(code).unwrap();
            assert_eq!(resize(&img, 2, 1, filter).unwrap(), img);
        }
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        // A flat image must stay flat: each output is the weight sum times the value, so any
        // weight sum off by more than rounding shows up as a changed level.
        let img = RgbImage::from_rgb(13, 7, vec![200; 13 * 7 * 3]).unwrap();
        for code in 1..6 {
            let filter = Filter::from_pil_code(code).unwrap();
            for (w, h) in [(5, 3), (29, 17), (13, 2), (1, 7)] {
                let out = resize(&img, w, h, filter).unwrap();
                assert!(out.data.iter().all(|&v| v == 200), "{filter:?} {w}x{h}");
            }
        }
    }

    #[test]
    fn pil_codes_round_trip() {
        for code in 0..6 {
            assert_eq!(
                Filter::from_pil_code(code).map(Filter::pil_code),
                Some(code)
            );
        }
        assert_eq!(Filter::from_pil_code(6), None);
        assert_eq!(
            Filter::from_pil_code(Filter::Lanczos.pil_code()),
            Some(Filter::Lanczos)
        );
    }

    #[test]
    fn rejects_bad_requests() {
        let img = RgbImage::from_rgb(2, 2, vec![0; 12]).unwrap();
        let err = resize(&img, 0, 3, Filter::Bilinear).unwrap_err();
        assert!(matches!(err, PreprocessError::InvalidConfig(_)), "{err:?}");
        let err = resize(&img, 3, MAX_RESIZE_SIDE + 1, Filter::Lanczos).unwrap_err();
        assert!(
            matches!(err, PreprocessError::ImageTooLarge { .. }),
            "{err:?}"
        );
        let broken = RgbImage {
            width: 2,
            height: 2,
            data: vec![0; 11],
        };
        let err = resize(&broken, 3, 3, Filter::Bicubic).unwrap_err();
        assert!(
            matches!(
                err,
                PreprocessError::BufferSize {
                    expected: 12,
                    got: 11
                }
            ),
            "{err:?}"
        );
        let huge = RgbImage {
            width: 20000,
            height: 20000,
            data: Vec::new(),
        };
        let err = resize(&huge, 3, 3, Filter::Nearest).unwrap_err();
        assert!(
            matches!(err, PreprocessError::ImageTooLarge { .. }),
            "{err:?}"
        );
        let empty = RgbImage {
            width: 0,
            height: 4,
            data: Vec::new(),
        };
        assert!(matches!(
            resize(&empty, 3, 3, Filter::Box),
            Err(PreprocessError::EmptyImage)
        ));
    }
}
