//! The Idefics3 / SmolVLM image processor.
//!
//! Reproduces transformers' `Idefics3ImageProcessorPil`
//! (`transformers/models/idefics3/image_processing_pil_idefics3.py`, with `PilBackend` from
//! `image_processing_backends.py` and `rescale` / `normalize` / `convert_to_rgb` from
//! `image_transforms.py`) for one image:
//!
//! 1. resize so the longest edge is `size.longest_edge` (short side rounded up to even, both
//!    sides capped at 4096);
//! 2. with splitting: resize again so both sides are multiples of the tile size
//!    `max_image_size.longest_edge`, cut that into tiles (row-major) and append the whole image
//!    squashed to one tile as the last "global" tile; without splitting: squash the image to
//!    one tile;
//! 3. `uint8 -> f64 * rescale_factor -> f32`, then `(x - mean) / std` in f32;
//! 4. pad every tile to the largest tile (a no-op for one image, whose tiles are all square
//!    `max_image_size`) and build the matching pixel attention mask.
//!
//! All resizes operate on 8-bit images through [`super::resample`], as PIL does, so each step
//! re-quantises to bytes exactly where transformers does. Size arithmetic uses f64 and
//! truncation the way the Python `int(...)` / `math.ceil(...)` expressions do.

use serde::{Deserialize, Deserializer};

use super::resample::{self, Filter};
use super::{MAX_INPUT_SIDE, PreprocessError, RgbImage};

/// transformers' `MAX_IMAGE_SIZE`: after the longest-edge resize no side may exceed this.
pub const MAX_IMAGE_SIZE: u32 = 4096;

/// `preprocessor_config.json` of an Idefics3 / SmolVLM checkpoint, as written by transformers
/// 5.23. Missing fields take the `Idefics3ImageProcessorPil` class defaults; unknown fields
/// (`image_processor_type`, `processor_class`, ...) are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ImageProcessorConfig {
    /// Resize to `size` before splitting. Default `true`.
    pub do_resize: bool,
    /// Target of the first resize, normally `{"longest_edge": N}`.
    /// Default `{"longest_edge": 1456}`.
    pub size: SizeConfig,
    /// Side of the square tiles fed to the vision encoder. Default `{"longest_edge": 364}`.
    pub max_image_size: MaxImageSize,
    /// Cut large images into tiles plus a global view; otherwise squash to one tile.
    /// Default `true`.
    pub do_image_splitting: bool,
    /// Multiply the 8-bit values by `rescale_factor`. Default `true`.
    pub do_rescale: bool,
    /// Factor applied in f64 before the cast to f32. Default `1/255`.
    pub rescale_factor: f64,
    /// Apply `(x - image_mean) / image_std` per channel in f32. Default `true`.
    pub do_normalize: bool,
    /// Per-channel mean (a single number means the same for R, G, B). Default `[0.5; 3]`
    /// (`IMAGENET_STANDARD_MEAN`).
    #[serde(deserialize_with = "per_channel")]
    pub image_mean: [f64; 3],
    /// Per-channel standard deviation (a single number means the same for all three). Default
    /// `[0.5; 3]` (`IMAGENET_STANDARD_STD`).
    #[serde(deserialize_with = "per_channel")]
    pub image_std: [f64; 3],
    /// Pillow resampling filter code used by every resize (see [`Filter`]). Default `1`
    /// (LANCZOS).
    pub resample: u32,
    /// Convert inputs to RGB. Default `true`. An [`RgbImage`] is RGB by construction (RGBA is
    /// composited onto white by [`RgbImage::from_rgba`]), so this has no further effect here.
    pub do_convert_rgb: bool,
    /// Pad tiles of a batch to a common size and return a pixel mask. Default `true`. One
    /// image always yields equal-sized tiles, so the output does not depend on it; the mask is
    /// computed either way.
    pub do_pad: bool,
}

/// The `size` entry: `longest_edge`, or a fixed `height` and `width` (used only when
/// `longest_edge` is absent, as in transformers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct SizeConfig {
    /// Resize so the longer side becomes this, keeping the aspect ratio.
    pub longest_edge: Option<u32>,
    /// Fixed output height (with `width`).
    pub height: Option<u32>,
    /// Fixed output width (with `height`).
    pub width: Option<u32>,
}

/// The `max_image_size` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct MaxImageSize {
    /// Side of the square tiles.
    pub longest_edge: u32,
}

impl Default for ImageProcessorConfig {
    fn default() -> Self {
        Self {
            do_resize: true,
            size: SizeConfig {
                longest_edge: Some(4 * 364),
                height: None,
                width: None,
            },
            max_image_size: MaxImageSize { longest_edge: 364 },
            do_image_splitting: true,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
            resample: Filter::Lanczos.pil_code(),
            do_convert_rgb: true,
            do_pad: true,
        }
    }
}

/// Accepts `0.5` or `[0.5, 0.5, 0.5]`, as transformers does for `image_mean` / `image_std`.
pub(crate) fn per_channel<'de, D: Deserializer<'de>>(de: D) -> Result<[f64; 3], D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrThree {
        One(f64),
        Three([f64; 3]),
    }
    match OneOrThree::deserialize(de) {
        Ok(OneOrThree::One(v)) => Ok([v; 3]),
        Ok(OneOrThree::Three(v)) => Ok(v),
        Err(_) => Err(serde::de::Error::custom(
            "expected a number or a list of 3 numbers",
        )),
    }
}

/// Output of [`ImageProcessorConfig::preprocess`] for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedImage {
    /// `[num_tiles, 3, height, width]`, row-major, channels R, G, B.
    pub pixel_values: Vec<f32>,
    /// Number of tiles, the global tile included when the image was split.
    pub num_tiles: usize,
    /// Tile height.
    pub height: usize,
    /// Tile width.
    pub width: usize,
    /// Tile rows of the split (0 when the image was not split).
    pub rows: usize,
    /// Tile columns of the split (0 when the image was not split).
    pub cols: usize,
    /// `[num_tiles, height, width]`: 1 for real pixels, 0 for padding.
    pub pixel_attention_mask: Vec<u8>,
    /// Qwen-VL: `pixel_values` are flattened patches `[grid_h · grid_w, C·T·p·p]` of a
    /// `grid_h × grid_w` patch grid (the image is `height × width` pixels, one "tile").
    pub patch_grid: Option<(usize, usize)>,
}

impl ImageProcessorConfig {
    /// Parses and validates the contents of a `preprocessor_config.json`.
    pub fn from_json(json: &str) -> Result<Self, PreprocessError> {
        let config: Self = serde_json::from_str(json).map_err(|e| {
            PreprocessError::InvalidConfig(format!("preprocessor_config.json: {e}"))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Rejects settings that transformers would fail on or that would make us allocate
    /// unbounded memory.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        let invalid = |msg: String| Err(PreprocessError::InvalidConfig(msg));
        if self.do_resize {
            match (self.size.longest_edge, self.size.height, self.size.width) {
                (Some(0), _, _) => return invalid("size.longest_edge must be at least 1".into()),
                (Some(_), _, _) => {}
                (None, Some(h), Some(w)) => {
                    let ok = |v: u32| (1..=MAX_INPUT_SIDE).contains(&v);
                    if !ok(h) || !ok(w) {
                        return invalid(format!(
                            "size {{height: {h}, width: {w}}}: both must be in 1..={MAX_INPUT_SIDE}"
                        ));
                    }
                }
                _ => {
                    return invalid(
                        "size needs `longest_edge`, or both `height` and `width`".into(),
                    );
                }
            }
        }
        let tile = self.max_image_size.longest_edge;
        if !(1..=MAX_INPUT_SIDE).contains(&tile) {
            return invalid(format!(
                "max_image_size.longest_edge is {tile}; it must be in 1..={MAX_INPUT_SIDE}"
            ));
        }
        if self.do_rescale && !self.rescale_factor.is_finite() {
            return invalid(format!(
                "rescale_factor {} is not finite",
                self.rescale_factor
            ));
        }
        if self.do_normalize {
            if self.image_mean.iter().any(|m| !m.is_finite()) {
                return invalid(format!("image_mean {:?} must be finite", self.image_mean));
            }
            // Zero (including after the cast to f32, which is what divides) would give inf/NaN.
            if self
                .image_std
                .iter()
                .any(|&s| !s.is_finite() || s as f32 == 0.0)
            {
                return invalid(format!(
                    "image_std {:?} must be finite and non-zero",
                    self.image_std
                ));
            }
        }
        if Filter::from_pil_code(self.resample).is_none() {
            return invalid(format!(
                "resample {} is not a supported Pillow filter (0 NEAREST, 1 LANCZOS, 2 BILINEAR, \
                 3 BICUBIC, 4 BOX, 5 HAMMING)",
                self.resample
            ));
        }
        Ok(())
    }

    /// Runs the full Idefics3 pipeline on one image.
    pub fn preprocess(&self, image: &RgbImage) -> Result<ProcessedImage, PreprocessError> {
        self.validate()?;
        image.validate()?;
        let filter = Filter::from_pil_code(self.resample).ok_or_else(|| {
            PreprocessError::InvalidConfig(format!("resample {} is not supported", self.resample))
        })?;
        let tile = self.max_image_size.longest_edge;

        let mut image = std::borrow::Cow::Borrowed(image);
        if self.do_resize {
            let (h, w) = match self.size.longest_edge {
                Some(edge) => longest_edge_size(image.height, image.width, edge),
                None => (self.size.height.unwrap_or(1), self.size.width.unwrap_or(1)),
            };
            image = std::borrow::Cow::Owned(resample::resize(&image, w, h, filter)?);
        }

        if !self.do_image_splitting {
            let squashed = resample::resize(&image, tile, tile, filter)?;
            return Ok(self.assemble(&[Frame::whole(&squashed)], 0, 0));
        }
        let (h, w) = vision_encoder_size(image.height, image.width, tile);
        let resized = resample::resize(&image, w, h, filter)?;
        // transformers' `split_images`: an image that fits one tile is passed through as is.
        if resized.height <= tile && resized.width <= tile {
            return Ok(self.assemble(&[Frame::whole(&resized)], 0, 0));
        }
        let global = resample::resize(&resized, tile, tile, filter)?;
        let (mut frames, rows, cols) = grid(&resized, tile);
        frames.push(Frame::whole(&global));
        Ok(self.assemble(&frames, rows, cols))
    }

    /// Rescales, normalises and pads the frames into the output tensor.
    fn assemble(&self, frames: &[Frame<'_>], rows: usize, cols: usize) -> ProcessedImage {
        let height = frames.iter().map(|f| f.height).max().unwrap_or(0);
        let width = frames.iter().map(|f| f.width).max().unwrap_or(0);
        let lut = self.value_table();
        let plane = height * width;
        let mut pixel_values = vec![0f32; frames.len() * 3 * plane];
        let mut pixel_attention_mask = vec![0u8; frames.len() * plane];
        for (i, frame) in frames.iter().enumerate() {
            let src_w = frame.image.width as usize;
            for y in 0..frame.height {
                let src_row = (frame.y0 + y) * src_w + frame.x0;
                let mask_row = i * plane + y * width;
                pixel_attention_mask[mask_row..mask_row + frame.width].fill(1);
                for x in 0..frame.width {
                    let px = &frame.image.data[(src_row + x) * 3..(src_row + x) * 3 + 3];
                    for c in 0..3 {
                        pixel_values[(i * 3 + c) * plane + y * width + x] =
                            lut[c][usize::from(px[c])];
                    }
                }
            }
        }
        ProcessedImage {
            pixel_values,
            num_tiles: frames.len(),
            height,
            width,
            rows,
            cols,
            pixel_attention_mask,
            patch_grid: None,
        }
    }

    /// The output value of every (channel, byte) pair. Rescale and normalise are element-wise,
    /// so a table gives exactly the values NumPy computes, with NumPy's dtypes at every step:
    /// f64 product cast to f32, then f32 subtract and divide with mean/std cast to f32.
    fn value_table(&self) -> [[f32; 256]; 3] {
        super::value_table(self.do_rescale.then_some(self.rescale_factor), self.do_normalize.then_some((self.image_mean, self.image_std)))
    }
}

/// A rectangle of an image that becomes one output tile.
struct Frame<'a> {
    image: &'a RgbImage,
    x0: usize,
    y0: usize,
    width: usize,
    height: usize,
}

impl<'a> Frame<'a> {
    fn whole(image: &'a RgbImage) -> Self {
        let (width, height) = (image.width as usize, image.height as usize);
        Self {
            image,
            x0: 0,
            y0: 0,
            width,
            height,
        }
    }
}

/// The crops of transformers' `split_images`, row-major, with the number of rows and columns.
fn grid(image: &RgbImage, tile: u32) -> (Vec<Frame<'_>>, usize, usize) {
    let (h, w, t) = (
        i64::from(image.height),
        i64::from(image.width),
        i64::from(tile),
    );
    // Python's floor division; the sides are multiples of the tile here, so this is h / t.
    let rows = ((h - t).div_euclid(t) + 1).max(0) as usize;
    let cols = ((w - t).div_euclid(t) + 1).max(0) as usize;
    let t = tile as usize;
    let (img_w, img_h) = (image.width as usize, image.height as usize);
    let mut frames = Vec::with_capacity(rows * cols + 1);
    for r in 0..rows {
        for c in 0..cols {
            let (y0, x0) = (r * t, c * t);
            // NumPy slicing stops at the border instead of failing.
            frames.push(Frame {
                image,
                x0,
                y0,
                width: (x0 + t).min(img_w) - x0,
                height: (y0 + t).min(img_h) - y0,
            });
        }
    }
    (frames, rows, cols)
}

/// `get_resize_output_image_size`: `_resize_output_size_rescale_to_max_len` (longest side to
/// `longest_edge`, the other side truncated then bumped to even, at least 1) followed by
/// `_resize_output_size_scale_below_upper_bound` with [`MAX_IMAGE_SIZE`]. Returns (h, w).
fn longest_edge_size(height: u32, width: u32, longest_edge: u32) -> (u32, u32) {
    let max_len = i64::from(longest_edge);
    let (h, w) = (i64::from(height), i64::from(width));
    let aspect = w as f64 / h as f64;
    let (mut h, mut w) = if w >= h {
        let nh = (max_len as f64 / aspect) as i64;
        (nh + nh % 2, max_len)
    } else {
        let nw = (max_len as f64 * aspect) as i64;
        (max_len, nw + nw % 2)
    };
    h = h.max(1);
    w = w.max(1);

    let bound = i64::from(MAX_IMAGE_SIZE);
    let aspect = w as f64 / h as f64;
    if w >= h && w > bound {
        w = bound;
        h = (w as f64 / aspect) as i64;
    } else if h > w && h > bound {
        h = bound;
        w = (h as f64 * aspect) as i64;
    }
    // The lower clamp is Python's closing `max(.., 1)`; the upper one cannot bind, it only makes
    // the narrowing cast obviously lossless.
    (h.clamp(1, bound) as u32, w.clamp(1, bound) as u32)
}

/// `resize_for_vision_encoder`: round the longer side up to a multiple of `tile`, derive the
/// other from the aspect ratio (truncated) and round it up too. Returns (h, w).
fn vision_encoder_size(height: u32, width: u32, tile: u32) -> (u32, u32) {
    let t = f64::from(tile);
    let round_up = |v: f64| ((v / t).ceil() * t) as u32;
    let aspect = f64::from(width) / f64::from(height);
    if width >= height {
        let w = round_up(f64::from(width));
        let h = (f64::from(w) / aspect) as i64;
        (round_up(h as f64), w)
    } else {
        let h = round_up(f64::from(height));
        let w = (f64::from(h) * aspect) as i64;
        (h, round_up(w as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{checksum, index, input_image, read, str_field, u64_field};
    use super::*;

    fn processor_cases() -> (serde_json::Value, Vec<serde_json::Value>) {
        let index = index();
        let cases = index["processor"].as_array().cloned().unwrap_or_default();
        assert!(
            cases.len() >= 15,
            "expected the full processor golden set, found {}",
            cases.len()
        );
        (index, cases)
    }

    /// The `preprocessor_config.json` transformers wrote for a golden case, parsed by us.
    fn case_config(index: &serde_json::Value, case: &serde_json::Value) -> ImageProcessorConfig {
        let name = str_field(case, "config_name");
        let json = &index["processor_configs"][name];
        assert!(
            json.is_object(),
            "no processor config {name:?} in index.json"
        );
        ImageProcessorConfig::from_json(&json.to_string())
            .unwrap_or_else(|e| panic!("config {name}: {e}"))
    }

    #[test]
    fn matches_transformers_goldens() {
        let (index, cases) = processor_cases();
        for case in &cases {
            let label = format!(
                "{} / {}",
                str_field(case, "image"),
                str_field(case, "config_name")
            );
            let config = case_config(&index, case);
            let image = input_image(&index, str_field(case, "image"));
            let out = config.preprocess(&image).unwrap();

            let shape = (out.num_tiles, out.height, out.width, out.rows, out.cols);
            let want = (
                u64_field(case, "num_tiles") as usize,
                u64_field(case, "height") as usize,
                u64_field(case, "width") as usize,
                u64_field(case, "rows") as usize,
                u64_field(case, "cols") as usize,
            );
            assert_eq!(
                shape, want,
                "{label}: (num_tiles, height, width, rows, cols)"
            );
            let plane = out.height * out.width;
            assert_eq!(out.pixel_values.len(), out.num_tiles * 3 * plane, "{label}");
            assert_eq!(
                out.pixel_attention_mask.len(),
                out.num_tiles * plane,
                "{label}"
            );

            if let Some(file) = case["pixel_values_file"].as_str() {
                let want: Vec<f32> = read(file)
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                assert_eq!(want.len(), out.pixel_values.len(), "{label}");
                let (worst, at) = out
                    .pixel_values
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .enumerate()
                    .fold(
                        (0f32, 0),
                        |best, (i, d)| if d > best.0 { (d, i) } else { best },
                    );
                assert!(
                    worst <= 1e-6,
                    "{label}: pixel_values[{at}] (tile {}, channel {}, y {}, x {}) is {} but \
                     transformers gives {}",
                    at / (3 * plane),
                    at / plane % 3,
                    at % plane / out.width,
                    at % out.width,
                    out.pixel_values[at],
                    want[at]
                );
            }
            if let Some(file) = case["mask_file"].as_str() {
                assert_eq!(
                    out.pixel_attention_mask,
                    read(file),
                    "{label}: pixel_attention_mask"
                );
            }
            // The checksums are what pins the cases whose tensors are too big to commit, and
            // they make the comparison above bit-exact.
            let got = checksum(out.pixel_values.iter().map(|v| u64::from(v.to_bits())));
            assert_eq!(
                got,
                u64_field(case, "pixel_values_checksum"),
                "{label}: pixel_values"
            );
            let got = checksum(out.pixel_attention_mask.iter().map(|&v| u64::from(v)));
            assert_eq!(got, u64_field(case, "mask_checksum"), "{label}: mask");
        }
    }

    #[test]
    fn single_image_mask_is_all_ones() {
        let (index, cases) = processor_cases();
        let case = &cases[0];
        let config = case_config(&index, case);
        let out = config
            .preprocess(&input_image(&index, str_field(case, "image")))
            .unwrap();
        assert!(out.num_tiles > 1);
        assert!(out.pixel_attention_mask.iter().all(|&m| m == 1));
    }

    #[test]
    fn defaults_match_transformers() {
        // transformers' own serialisation of a default-constructed processor.
        let json = index()["processor_configs"]["default"].to_string();
        assert_eq!(
            ImageProcessorConfig::from_json(&json).unwrap(),
            ImageProcessorConfig::default()
        );
        assert_eq!(
            ImageProcessorConfig::from_json("{}").unwrap(),
            ImageProcessorConfig::default()
        );
    }

    #[test]
    fn size_rules_match_transformers() {
        let index = index();
        let rows = index["size_rules"]["rows"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            rows.len() > 100,
            "expected the size_rules table, found {} rows",
            rows.len()
        );
        for row in &rows {
            let v: Vec<u32> = row
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_u64())
                        .map(|x| x as u32)
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(v.len(), 8, "malformed size_rules row {row}");
            let (h, w, edge, tile) = (v[0], v[1], v[2], v[3]);
            let resized = longest_edge_size(h, w, edge);
            assert_eq!(
                resized,
                (v[4], v[5]),
                "longest edge {edge} of {h}x{w} (h x w)"
            );
            let vision = vision_encoder_size(resized.0, resized.1, tile);
            assert_eq!(
                vision,
                (v[6], v[7]),
                "tile {tile} for {}x{} (h x w)",
                resized.0,
                resized.1
            );
        }
    }

    #[test]
    fn parses_scalar_mean_and_fixed_size() {
        let config = ImageProcessorConfig::from_json(
            r#"{"image_mean": 0.25, "image_std": [1, 2, 4], "size": {"height": 20, "width": 30},
                "max_image_size": {"longest_edge": 10}, "do_image_splitting": false,
                "unknown_field": {"anything": [1, 2]}}"#,
        )
        .unwrap();
        assert_eq!(config.image_mean, [0.25; 3]);
        assert_eq!(config.image_std, [1.0, 2.0, 4.0]);
        assert_eq!(
            config.size,
            SizeConfig {
                longest_edge: None,
                height: Some(20),
                width: Some(30)
            }
        );
        let image = RgbImage::from_rgb(3, 2, (0..18).collect()).unwrap();
        let out = config.preprocess(&image).unwrap();
        assert_eq!(
            (out.num_tiles, out.height, out.width, out.rows, out.cols),
            (1, 10, 10, 0, 0)
        );
    }

    #[test]
    fn size_rule_examples() {
        // (h, w, longest_edge) -> (h, w), worked through the Python expressions by hand.
        // Odd short side is bumped to even; the 4096 bound rescales from the even size.
        assert_eq!(longest_edge_size(50, 37, 30), (30, 22));
        assert_eq!(longest_edge_size(37, 50, 30), (22, 30));
        assert_eq!(longest_edge_size(3, 7, 30), (12, 30));
        assert_eq!(longest_edge_size(1, 8000, 364), (1, 364));
        assert_eq!(longest_edge_size(100, 100, 5000), (4096, 4096));
        // 5000 / (3/2) = 3333.33 -> 3333 -> 3334; then 5000 > 4096: 4096 / (5000/3334) = 2731.2
        assert_eq!(longest_edge_size(2, 3, 5000), (2731, 4096));
        assert_eq!(vision_encoder_size(30, 22, 16), (32, 32));
        assert_eq!(vision_encoder_size(10, 30, 16), (16, 32));
        assert_eq!(vision_encoder_size(444, 1456, 364), (728, 1456));
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let cases = [
            r#"{"size": {"longest_edge": 0}}"#,
            r#"{"size": {"height": 10}}"#,
            r#"{"size": {"height": 0, "width": 10}}"#,
            r#"{"max_image_size": {"longest_edge": 0}}"#,
            r#"{"max_image_size": {"longest_edge": 100000}}"#,
            r#"{"image_std": [0.5, 0.0, 0.5]}"#,
            r#"{"image_std": 0}"#,
            r#"{"image_mean": [0.5, 0.5]}"#,
            r#"{"resample": 9}"#,
            r#"{"do_resize": "yes"}"#,
            r#"not json"#,
        ];
        for json in cases {
            match ImageProcessorConfig::from_json(json) {
                Err(PreprocessError::InvalidConfig(msg)) => assert!(!msg.is_empty()),
                other => panic!("{json}: expected InvalidConfig, got {other:?}"),
            }
        }
        // `preprocess` re-validates, so a config mutated after parsing cannot slip through.
        let mut config = ImageProcessorConfig::default();
        config.image_std[2] = 0.0;
        let image = RgbImage::from_rgb(1, 1, vec![0; 3]).unwrap();
        assert!(matches!(
            config.preprocess(&image),
            Err(PreprocessError::InvalidConfig(_))
        ));
    }

    #[test]
    fn invalid_images_are_rejected() {
        let config = ImageProcessorConfig::default();
        let huge = RgbImage {
            width: 20000,
            height: 20000,
            data: Vec::new(),
        };
        assert!(matches!(
            config.preprocess(&huge),
            Err(PreprocessError::ImageTooLarge {
                width: 20000,
                height: 20000,
                ..
            })
        ));
        let empty = RgbImage {
            width: 5,
            height: 0,
            data: Vec::new(),
        };
        assert!(matches!(
            config.preprocess(&empty),
            Err(PreprocessError::EmptyImage)
        ));
        let short = RgbImage {
            width: 2,
            height: 2,
            data: vec![0; 5],
        };
        assert!(matches!(
            config.preprocess(&short),
            Err(PreprocessError::BufferSize {
                expected: 12,
                got: 5
            })
        ));
    }
}
