//! The CLIP image processor (LLaVA-1.5).
//!
//! Reproduces transformers' PIL-backed `CLIPImageProcessor` / `LlavaImageProcessor` for one
//! image:
//!
//! 0. with `do_pad` (LlavaImageProcessor, original LLaVA's "pad" aspect mode): pad to a square
//!    filled with `int(mean · 255)` per channel, the image centered (`(max − side) // 2`);
//! 1. resize so the shorter side becomes `size.shortest_edge` (the longer one
//!    `int(shortest_edge · long / short)`), or to a fixed `height`×`width`;
//! 2. center crop to `crop_size` (`top = (h − crop_h) // 2`, `left = (w − crop_w) // 2`);
//! 3. `uint8 → f64 · rescale_factor → f32`, then `(x − mean) / std` in f32.
//!
//! The resize goes through [`super::resample`], which matches Pillow byte for byte.

use serde::{Deserialize, Deserializer};

use super::idefics3::{ProcessedImage, per_channel};
use super::resample::{self, Filter};
use super::{MAX_INPUT_SIDE, PreprocessError, RgbImage};

/// OpenAI CLIP's normalisation (`OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD` in transformers).
pub const CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
pub const CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// `preprocessor_config.json` of a LLaVA checkpoint. Missing fields take `CLIPImageProcessor`'s
/// defaults; unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClipProcessorConfig {
    pub do_resize: bool,
    /// `{"shortest_edge": N}` or `{"height": H, "width": W}`. Default shortest edge 224.
    pub size: ResizeTarget,
    /// Pillow filter code. Default 3 (BICUBIC).
    pub resample: u32,
    pub do_center_crop: bool,
    /// `{"height": H, "width": W}` or one number. Default 224×224.
    #[serde(deserialize_with = "crop_size")]
    pub crop_size: (u32, u32),
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    #[serde(deserialize_with = "per_channel")]
    pub image_mean: [f64; 3],
    #[serde(deserialize_with = "per_channel")]
    pub image_std: [f64; 3],
    /// Inputs are RGB by construction ([`RgbImage`]); kept for completeness.
    pub do_convert_rgb: bool,
    /// Pad to a square of the mean colour before resizing (LlavaImageProcessor).
    pub do_pad: bool,
}

/// The `size` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct ResizeTarget {
    pub shortest_edge: Option<u32>,
    pub height: Option<u32>,
    pub width: Option<u32>,
}

impl Default for ClipProcessorConfig {
    fn default() -> Self {
        Self {
            do_resize: true,
            size: ResizeTarget { shortest_edge: Some(224), height: None, width: None },
            resample: Filter::Bicubic.pil_code(),
            do_center_crop: true,
            crop_size: (224, 224),
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
            do_convert_rgb: true,
            do_pad: false,
        }
    }
}

/// `crop_size` as `{"height", "width"}` or a single side.
fn crop_size<'de, D: Deserializer<'de>>(de: D) -> Result<(u32, u32), D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Crop {
        Side(u32),
        Hw { height: u32, width: u32 },
    }
    Ok(match Crop::deserialize(de)? {
        Crop::Side(s) => (s, s),
        Crop::Hw { height, width } => (height, width),
    })
}

impl ClipProcessorConfig {
    /// Rejects settings transformers would fail on or that would allocate without bound.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        self.checked().map(|_| ())
    }

    /// [`Self::validate`], returning the resize filter.
    fn checked(&self) -> Result<Filter, PreprocessError> {
        let invalid = |msg: String| Err(PreprocessError::InvalidConfig(msg));
        let side_ok = |v: u32| (1..=MAX_INPUT_SIDE).contains(&v);
        if self.do_resize {
            match (self.size.shortest_edge, self.size.height, self.size.width) {
                (Some(s), _, _) if side_ok(s) => {}
                (None, Some(h), Some(w)) if side_ok(h) && side_ok(w) => {}
                _ => return invalid(format!("size {:?} needs `shortest_edge`, or `height` and `width`, in 1..={MAX_INPUT_SIDE}", self.size)),
            }
        }
        if self.do_center_crop && !(side_ok(self.crop_size.0) && side_ok(self.crop_size.1)) {
            return invalid(format!("crop_size {:?} must be in 1..={MAX_INPUT_SIDE}", self.crop_size));
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

    /// Resize, crop, rescale and normalise one image into a single tile.
    pub fn preprocess(&self, image: &RgbImage) -> Result<ProcessedImage, PreprocessError> {
        let filter = self.checked()?;
        image.validate()?;
        let mut image = std::borrow::Cow::Borrowed(image);
        if self.do_pad {
            image = std::borrow::Cow::Owned(pad_to_square(&image, self.image_mean.map(|m| (m * 255.0) as u8)));
        }
        if self.do_resize {
            let (h, w) = match self.size.shortest_edge {
                Some(edge) => shortest_edge_size(image.height, image.width, edge),
                None => (self.size.height.unwrap_or(1), self.size.width.unwrap_or(1)),
            };
            image = std::borrow::Cow::Owned(resample::resize(&image, w, h, filter)?);
        }
        let (h, w) = (image.height as usize, image.width as usize);
        let (ch, cw, top, left) = if self.do_center_crop {
            let (ch, cw) = (self.crop_size.0 as usize, self.crop_size.1 as usize);
            if ch > h || cw > w {
                // transformers pads with black here and, for odd differences, returns a crop one
                // pixel short; no vision tower could take that, so refuse instead.
                return Err(PreprocessError::InvalidConfig(format!(
                    "the image is {w}x{h} after resizing, smaller than crop_size {cw}x{ch}"
                )));
            }
            (ch, cw, (h - ch) / 2, (w - cw) / 2)
        } else {
            (h, w, 0, 0)
        };
        let lut = super::value_table(self.do_rescale.then_some(self.rescale_factor), self.do_normalize.then_some((self.image_mean, self.image_std)));
        let plane = ch * cw;
        let mut pixel_values = vec![0f32; 3 * plane];
        for y in 0..ch {
            for x in 0..cw {
                let px = ((top + y) * w + left + x) * 3;
                for c in 0..3 {
                    pixel_values[c * plane + y * cw + x] = lut[c][usize::from(image.data[px + c])];
                }
            }
        }
        Ok(ProcessedImage { pixel_values, num_tiles: 1, height: ch, width: cw, rows: 0, cols: 0, pixel_attention_mask: vec![1; plane], patch_grid: None })
    }
}

/// The image centered on a square canvas of `fill`.
fn pad_to_square(image: &RgbImage, fill: [u8; 3]) -> RgbImage {
    let (w, h) = (image.width as usize, image.height as usize);
    if w == h {
        return image.clone();
    }
    let side = w.max(h);
    let (x0, y0) = if w > h { (0, (side - h) / 2) } else { ((side - w) / 2, 0) };
    let mut data: Vec<u8> = fill.iter().copied().cycle().take(side * side * 3).collect();
    for y in 0..h {
        let dst = ((y0 + y) * side + x0) * 3;
        data[dst..dst + w * 3].copy_from_slice(&image.data[y * w * 3..(y + 1) * w * 3]);
    }
    RgbImage { width: side as u32, height: side as u32, data }
}

/// `get_resize_output_image_size(.., default_to_square=False)`: the shorter side becomes
/// `edge`, the longer `int(edge · long / short)`. Returns (h, w).
fn shortest_edge_size(height: u32, width: u32, edge: u32) -> (u32, u32) {
    let (short, long) = if width <= height { (width, height) } else { (height, width) };
    let new_long = ((f64::from(edge) * f64::from(long) / f64::from(short)) as u32).clamp(1, MAX_INPUT_SIDE);
    if width <= height { (new_long, edge) } else { (edge, new_long) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_edge_keeps_the_aspect_ratio_truncating_like_python() {
        assert_eq!(shortest_edge_size(61, 45, 30), (40, 30)); // int(30·61/45) = int(40.67)
        assert_eq!(shortest_edge_size(40, 70, 24), (24, 42));
        assert_eq!(shortest_edge_size(336, 336, 336), (336, 336));
    }

    #[test]
    fn crops_the_center_and_normalises() {
        let cfg: ClipProcessorConfig = serde_json::from_str(
            r#"{"size":{"shortest_edge":4},"crop_size":{"height":2,"width":2},"image_mean":0.0,"image_std":1.0,"rescale_factor":1.0}"#,
        )
        .unwrap();
        // 4x6 → no resize needed for the short side (already 4), crop 2x2 at top 1, left 2.
        let data: Vec<u8> = (0..4 * 6).flat_map(|i| [i as u8, 0, 0]).collect();
        let img = RgbImage::from_rgb(6, 4, data).unwrap();
        let out = cfg.preprocess(&img).unwrap();
        assert_eq!((out.height, out.width, out.num_tiles), (2, 2, 1));
        assert_eq!(&out.pixel_values[..4], &[8.0, 9.0, 14.0, 15.0]);
    }

    #[test]
    fn pads_to_a_square_of_the_mean_colour() {
        let img = RgbImage::from_rgb(1, 3, vec![1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap();
        let sq = pad_to_square(&img, [10, 20, 30]);
        assert_eq!((sq.width, sq.height), (3, 3));
        assert_eq!(&sq.data[..9], &[10, 20, 30, 1, 2, 3, 10, 20, 30]);
        let fill = CLIP_MEAN.map(|m| (m * 255.0) as u8);
        assert_eq!(fill, [122, 116, 104]); // int(0.48145466·255) etc., as transformers
    }

    #[test]
    fn refuses_a_crop_larger_than_the_image_and_bad_settings() {
        let cfg = ClipProcessorConfig { do_resize: false, crop_size: (8, 8), ..Default::default() };
        let img = RgbImage::from_rgb(5, 5, vec![0; 75]).unwrap();
        assert!(cfg.preprocess(&img).unwrap_err().to_string().contains("crop_size"));
        let cfg = ClipProcessorConfig { image_std: [0.0; 3], ..Default::default() };
        assert!(cfg.validate().is_err());
    }
}
