//! The Qwen2-VL / Qwen2.5-VL image processor (dynamic resolution).
//!
//! Reproduces transformers' `Qwen2VLImageProcessorPil` for one image:
//!
//! 1. `smart_resize`: both sides to multiples of `patch_size · merge_size` (Python's `round`,
//!    which rounds half to even), scaled down (floor) or up (ceil) to keep the pixel count within
//!    `[min_pixels, max_pixels]` (`size.shortest_edge` / `size.longest_edge`), then a Pillow
//!    resize (bicubic by default);
//! 2. `uint8 → f64 · rescale_factor → f32`, then `(x − mean) / std` in f32;
//! 3. `patchify`: the frame repeated `temporal_patch_size` times, cut into `patch_size` patches
//!    laid out block-major (`merge × merge` blocks row-major, patches row-major inside a block),
//!    each flattened as (channel, time, row, column) to match the Conv3d kernel.

use serde::Deserialize;

use super::idefics3::{ProcessedImage, per_channel};
use super::resample::{self, Filter};
use super::{MAX_INPUT_SIDE, PreprocessError, RgbImage};
use crate::preprocess::clip::{CLIP_MEAN, CLIP_STD};

/// `preprocessor_config.json` (or `processor_config.json`'s `image_processor`) of a Qwen2-VL /
/// Qwen2.5-VL checkpoint. Missing fields take `Qwen2VLImageProcessorPil`'s defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Qwen2VlProcessorConfig {
    pub do_resize: bool,
    /// `{"shortest_edge": min_pixels, "longest_edge": max_pixels}`.
    pub size: PixelBudget,
    /// Older configs: the budget as top-level fields (they win over `size`, as in transformers).
    pub min_pixels: Option<u64>,
    pub max_pixels: Option<u64>,
    pub resample: u32,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    #[serde(deserialize_with = "per_channel")]
    pub image_mean: [f64; 3],
    #[serde(deserialize_with = "per_channel")]
    pub image_std: [f64; 3],
    pub do_convert_rgb: bool,
    pub patch_size: usize,
    pub temporal_patch_size: usize,
    pub merge_size: usize,
}

/// The `size` entry: pixel counts, not sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct PixelBudget {
    pub shortest_edge: u64,
    pub longest_edge: u64,
}

impl Default for Qwen2VlProcessorConfig {
    fn default() -> Self {
        Self {
            do_resize: true,
            size: PixelBudget { shortest_edge: 56 * 56, longest_edge: 28 * 28 * 1280 },
            min_pixels: None,
            max_pixels: None,
            resample: Filter::Bicubic.pil_code(),
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
            do_convert_rgb: true,
            patch_size: 14,
            temporal_patch_size: 2,
            merge_size: 2,
        }
    }
}

impl Qwen2VlProcessorConfig {
    /// `(min_pixels, max_pixels)`.
    pub fn budget(&self) -> (u64, u64) {
        (self.min_pixels.unwrap_or(self.size.shortest_edge), self.max_pixels.unwrap_or(self.size.longest_edge))
    }

    pub fn validate(&self) -> Result<(), PreprocessError> {
        self.checked().map(|_| ())
    }

    /// [`Self::validate`], returning the resize filter.
    fn checked(&self) -> Result<Filter, PreprocessError> {
        let invalid = |m: String| Err(PreprocessError::InvalidConfig(m));
        if self.patch_size == 0 || self.merge_size == 0 || self.temporal_patch_size == 0 {
            return invalid("patch_size, merge_size and temporal_patch_size must be at least 1".into());
        }
        let (min, max) = self.budget();
        let factor = (self.patch_size * self.merge_size) as u64;
        if min > max || max < factor * factor || max > u64::from(MAX_INPUT_SIDE).pow(2) {
            return invalid(format!("pixel budget {min}..={max} cannot hold one {factor}×{factor} block or exceeds {MAX_INPUT_SIDE}²"));
        }
        self.values()
    }

    /// The shared value settings, checked; the resize filter.
    fn values(&self) -> Result<Filter, PreprocessError> {
        super::check_value_settings(
            self.resample,
            self.do_rescale.then_some(self.rescale_factor),
            self.do_normalize.then_some((self.image_mean, self.image_std)),
        )
    }

    /// Resize, normalise and patchify one image.
    pub fn preprocess(&self, image: &RgbImage) -> Result<ProcessedImage, PreprocessError> {
        let filter = self.checked()?;
        image.validate()?;
        let (p, m, t) = (self.patch_size, self.merge_size, self.temporal_patch_size);
        let mut image = std::borrow::Cow::Borrowed(image);
        if self.do_resize {
            let (min, max) = self.budget();
            let (h, w) = smart_resize(image.height, image.width, (p * m) as u32, min, max)?;
            image = std::borrow::Cow::Owned(resample::resize(&image, w, h, filter)?);
        }
        let (h, w) = (image.height as usize, image.width as usize);
        if h % (p * m) != 0 || w % (p * m) != 0 {
            return Err(PreprocessError::InvalidConfig(format!(
                "a {w}x{h} image does not cut into {m}×{m} blocks of {p}-pixel patches (enable do_resize)"
            )));
        }
        let lut = super::value_table(self.do_rescale.then_some(self.rescale_factor), self.do_normalize.then_some((self.image_mean, self.image_std)));
        let (gh, gw) = (h / p, w / p);
        let row = 3 * t * p * p;
        let mut out = vec![0f32; gh * gw * row];
        let mut r = 0;
        for by in 0..gh / m {
            for bx in 0..gw / m {
                for my in 0..m {
                    for mx in 0..m {
                        let (py, px) = (by * m + my, bx * m + mx);
                        let dst = &mut out[r * row..(r + 1) * row];
                        for c in 0..3 {
                            for f in 0..t {
                                for y in 0..p {
                                    for x in 0..p {
                                        let src = ((py * p + y) * w + px * p + x) * 3 + c;
                                        dst[((c * t + f) * p + y) * p + x] = lut[c][usize::from(image.data[src])];
                                    }
                                }
                            }
                        }
                        r += 1;
                    }
                }
            }
        }
        Ok(ProcessedImage {
            pixel_values: out,
            num_tiles: 1,
            height: h,
            width: w,
            rows: 0,
            cols: 0,
            pixel_attention_mask: Vec::new(),
            patch_grid: Some((gh, gw)),
        })
    }
}

/// Python's `round` on a non-negative float: half to even.
fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// `smart_resize(height, width, factor, min_pixels, max_pixels)` → (h, w).
pub fn smart_resize(height: u32, width: u32, factor: u32, min_pixels: u64, max_pixels: u64) -> Result<(u32, u32), PreprocessError> {
    let (h, w, f) = (f64::from(height), f64::from(width), f64::from(factor));
    if h.max(w) / h.min(w) > 200.0 {
        return Err(PreprocessError::InvalidConfig(format!(
            "a {width}x{height} image has an aspect ratio above 200, which Qwen-VL's processor refuses"
        )));
    }
    let mut hb = round_half_even(h / f) * f;
    let mut wb = round_half_even(w / f) * f;
    if hb * wb > max_pixels as f64 {
        let beta = (h * w / max_pixels as f64).sqrt();
        hb = f.max((h / beta / f).floor() * f);
        wb = f.max((w / beta / f).floor() * f);
    } else if hb * wb < min_pixels as f64 {
        let beta = (min_pixels as f64 / (h * w)).sqrt();
        hb = (h * beta / f).ceil() * f;
        wb = (w * beta / f).ceil() * f;
    }
    let side_ok = |v: f64| v >= f && v <= f64::from(MAX_INPUT_SIDE);
    if !side_ok(hb) || !side_ok(wb) {
        return Err(PreprocessError::InvalidConfig(format!("smart_resize of {width}x{height} gives {wb}x{hb}, outside 1..={MAX_INPUT_SIDE}")));
    }
    Ok((hb as u32, wb as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_resize_matches_the_python_arithmetic() {
        // 61×45 with factor 8: round(7.625)=8 → 64, round(5.625)=6 → 48; 3072 px within budget.
        assert_eq!(smart_resize(61, 45, 8, 64, 4096).unwrap(), (64, 48));
        // Half rounds to even: 20/8 = 2.5 → 2 → 16.
        assert_eq!(smart_resize(20, 20, 8, 64, 4096).unwrap(), (16, 16));
        // Over budget: scaled down with floor.
        let (h, w) = smart_resize(1000, 1000, 28, 3136, 28 * 28 * 16).unwrap();
        assert!(h as u64 * w as u64 <= 28 * 28 * 16 && h % 28 == 0 && w % 28 == 0);
        // Under budget: scaled up with ceil.
        let (h, w) = smart_resize(10, 10, 28, 56 * 56, 28 * 28 * 1280).unwrap();
        assert_eq!((h, w), (56, 56));
        assert!(smart_resize(1, 500, 28, 56 * 56, 28 * 28 * 1280).is_err());
    }

    #[test]
    fn patches_are_block_major_and_repeated_in_time() {
        let cfg = Qwen2VlProcessorConfig {
            do_resize: false,
            do_rescale: false,
            do_normalize: false,
            patch_size: 1,
            merge_size: 2,
            temporal_patch_size: 2,
            ..Default::default()
        };
        // 4 wide × 2 high, red channel = pixel index.
        let img = RgbImage::from_rgb(4, 2, (0..8).flat_map(|i| [i as u8, 0, 0]).collect()).unwrap();
        let out = cfg.preprocess(&img).unwrap();
        assert_eq!(out.patch_grid, Some((2, 4)));
        let red: Vec<f32> = out.pixel_values.chunks(6).map(|r| r[0]).collect();
        assert_eq!(red, vec![0.0, 1.0, 4.0, 5.0, 2.0, 3.0, 6.0, 7.0]);
        assert_eq!(&out.pixel_values[..2], &[0.0, 0.0], "red repeated over both frames");
    }
}
