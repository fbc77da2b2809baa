//! Image preprocessing: from decoded pixels to the `pixel_values` tensor a vision tower eats.
//!
//! The goal is bit-exactness with the Python reference: differences here pass through the vision
//! tower into the logits, and with them golden tests against transformers stop being exact.
//!
//! * [`resample`] reproduces Pillow's `Image.resize` for 8-bit RGB (libImaging `Resample.c`
//!   and, for NEAREST, `Geometry.c`), which is what transformers' PIL backend calls;
//! * [`clip`] reproduces transformers' `CLIPImageProcessor` (LLaVA-1.5): shortest-edge resize,
//!   center crop, rescale, normalise;
//! * [`qwen2_vl`] reproduces `Qwen2VLImageProcessorPil` (Qwen2-VL, Qwen2.5-VL): `smart_resize`
//!   to a multiple of patch × merge within a pixel budget, then block-major patches;
//! * [`idefics3`] reproduces transformers' `Idefics3ImageProcessorPil`
//!   (`models/idefics3/image_processing_pil_idefics3.py`, backend `PilBackend` in
//!   `image_processing_backends.py`, helpers in `image_transforms.py`).
//!
//! Golden files made by `tests/generator/make_preprocess_goldens.py` pin both down.
//!
//! Nothing here touches the filesystem or spawns threads, so it builds for
//! `wasm32-unknown-unknown` unchanged.

pub mod clip;
pub mod idefics3;
pub mod qwen2_vl;
pub mod resample;

/// Check the settings every processor shares (Pillow filter code, rescale factor, mean and
/// std) and return the filter.
pub(crate) fn check_value_settings(
    resample: u32,
    rescale: Option<f64>,
    normalize: Option<([f64; 3], [f64; 3])>,
) -> Result<resample::Filter, PreprocessError> {
    let invalid = |m: String| Err(PreprocessError::InvalidConfig(m));
    if let Some(factor) = rescale.filter(|f| !f.is_finite()) {
        return invalid(format!("rescale_factor {factor} is not finite"));
    }
    if let Some((mean, std)) = normalize {
        if mean.iter().any(|m| !m.is_finite()) {
            return invalid(format!("image_mean {mean:?} must be finite"));
        }
        // Zero (also after the cast to f32, which is what divides) would give inf/NaN.
        if std.iter().any(|&s| !s.is_finite() || s as f32 == 0.0) {
            return invalid(format!("image_std {std:?} must be finite and non-zero"));
        }
    }
    resample::Filter::from_pil_code(resample).ok_or_else(|| {
        PreprocessError::InvalidConfig(format!(
            "resample {resample} is not a supported Pillow filter (0 NEAREST, 1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX, 5 HAMMING)"
        ))
    })
}

/// The output value of every (channel, byte) pair. Rescale and normalise are element-wise, so a
/// table gives exactly the values NumPy computes, with NumPy's dtypes at every step: the f64
/// product `byte · rescale` cast to f32, then f32 subtract and divide with mean/std cast to f32.
pub(crate) fn value_table(rescale: Option<f64>, normalize: Option<([f64; 3], [f64; 3])>) -> [[f32; 256]; 3] {
    let mut lut = [[0f32; 256]; 3];
    for (c, table) in lut.iter_mut().enumerate() {
        for (v, out) in table.iter_mut().enumerate() {
            let mut x = match rescale {
                Some(factor) => (v as f64 * factor) as f32,
                None => v as f32,
            };
            if let Some((mean, std)) = normalize {
                x = (x - mean[c] as f32) / std[c] as f32;
            }
            *out = x;
        }
    }
    lut
}

/// Largest accepted width or height of an input image.
///
/// Checked before any pixel buffer is allocated or converted, so that a hostile or corrupt
/// header cannot make us allocate gigabytes (an 8192×8192 RGB image is already 192 MiB).
pub const MAX_INPUT_SIDE: u32 = 8192;

/// Errors from image construction, resizing and preprocessing.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    /// The image has no pixels.
    #[error("image is empty: width and height must both be at least 1")]
    EmptyImage,

    /// A side exceeds the accepted maximum; downscale the image before handing it over.
    #[error(
        "image of {width}x{height} is too large: each side must be at most {max_side} pixels \
         (downscale it before preprocessing)"
    )]
    ImageTooLarge {
        width: u32,
        height: u32,
        max_side: u32,
    },

    /// The pixel buffer length does not match width × height × channels.
    #[error(
        "pixel buffer has {got} bytes but the image size needs {expected} \
         (width * height * channels, 8 bits per channel, no row padding)"
    )]
    BufferSize { expected: usize, got: usize },

    /// A processor configuration value (or a resize request) is unusable.
    #[error("invalid image processor configuration: {0}")]
    InvalidConfig(String),
}

/// An 8-bit RGB image, pixels row-major and interleaved (`R G B R G B ...`), no row padding.
///
/// Fields are public for cheap access; code that consumes an `RgbImage` re-checks the
/// invariants (see [`RgbImage::validate`]) rather than trusting a hand-built value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// Wraps an interleaved RGB8 buffer of `width * height * 3` bytes.
    pub fn from_rgb(width: u32, height: u32, data: Vec<u8>) -> Result<Self, PreprocessError> {
        let expected = checked_len(width, height, 3, MAX_INPUT_SIDE)?;
        if data.len() != expected {
            return Err(PreprocessError::BufferSize {
                expected,
                got: data.len(),
            });
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Converts an interleaved RGBA8 buffer the way transformers' `convert_to_rgb` does:
    /// the image is composited onto an opaque white background (not stripped of alpha), i.e.
    /// `round_half_even(a/255 * c + (1 - a/255) * 255)` per channel in double precision.
    ///
    /// That is the NumPy branch of `convert_to_rgb`; its PIL branch (`alpha_composite` onto
    /// white) gives identical bytes for all 65536 (colour, alpha) pairs, which the goldens check.
    pub fn from_rgba(width: u32, height: u32, rgba: &[u8]) -> Result<Self, PreprocessError> {
        let expected = checked_len(width, height, 4, MAX_INPUT_SIDE)?;
        if rgba.len() != expected {
            return Err(PreprocessError::BufferSize {
                expected,
                got: rgba.len(),
            });
        }
        let mut data = Vec::with_capacity(expected / 4 * 3);
        for px in rgba.chunks_exact(4) {
            let alpha = f64::from(px[3]) / 255.0;
            for &c in &px[..3] {
                data.push(composite_on_white(c, alpha));
            }
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Checks the size limits and that `data` holds exactly `width * height * 3` bytes.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        let expected = checked_len(self.width, self.height, 3, MAX_INPUT_SIDE)?;
        if self.data.len() != expected {
            return Err(PreprocessError::BufferSize {
                expected,
                got: self.data.len(),
            });
        }
        Ok(())
    }
}

/// One channel of `convert_to_rgb`'s blend; written with the same operation order as NumPy's
/// `alpha * c + (1 - alpha) * 255` so the rounding of every step matches.
fn composite_on_white(c: u8, alpha: f64) -> u8 {
    let blended = alpha * f64::from(c) + (1.0 - alpha) * 255.0;
    // `blended` lies in [0, 255] for any alpha in [0, 1], so the cast cannot saturate.
    blended.round_ties_even() as u8
}

/// Byte length of a `width × height × channels` image, after the emptiness and size checks.
///
/// Runs before the caller touches or allocates any pixel memory.
pub(crate) fn checked_len(
    width: u32,
    height: u32,
    channels: usize,
    max_side: u32,
) -> Result<usize, PreprocessError> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::EmptyImage);
    }
    let too_large = PreprocessError::ImageTooLarge {
        width,
        height,
        max_side,
    };
    if width > max_side || height > max_side {
        return Err(too_large);
    }
    // The limits in use keep this far below 2^32 bytes, so it fits a 32-bit usize; the checked
    // arithmetic keeps that true if a limit is ever raised.
    (width as usize)
        .checked_mul(height as usize)
        .and_then(|n| n.checked_mul(channels))
        .ok_or(too_large)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Locating and reading the committed golden files.

    use std::path::PathBuf;

    /// `tests/fixtures/preprocess` of the repository.
    ///
    /// Inside the workspace it is reached from the crate's manifest directory; a crate that
    /// includes these sources from elsewhere sets `WEBVLM_FIXTURES` to the `tests/fixtures`
    /// directory instead.
    pub fn fixtures_dir() -> PathBuf {
        let in_repo =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/preprocess");
        if in_repo.join("index.json").is_file() {
            return in_repo;
        }
        match std::env::var_os("WEBVLM_FIXTURES") {
            Some(dir) => PathBuf::from(dir).join("preprocess"),
            None => panic!(
                "golden files not found at {}; set WEBVLM_FIXTURES to the repository's \
                 tests/fixtures directory",
                in_repo.display()
            ),
        }
    }

    pub fn index() -> serde_json::Value {
        let path = fixtures_dir().join("index.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
    }

    pub fn read(file: &str) -> Vec<u8> {
        let path = fixtures_dir().join(file);
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    pub fn str_field<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("index entry lacks string {key:?}: {v}"))
    }

    pub fn u64_field(v: &serde_json::Value, key: &str) -> u64 {
        v[key]
            .as_u64()
            .unwrap_or_else(|| panic!("index entry lacks integer {key:?}: {v}"))
    }

    /// Input image `name` as the Rust API sees it (RGBA inputs go through `from_rgba`).
    pub fn input_image(index: &serde_json::Value, name: &str) -> super::RgbImage {
        let entry = index["images"]
            .as_array()
            .and_then(|all| all.iter().find(|e| e["name"] == name))
            .unwrap_or_else(|| panic!("no input image {name:?} in index.json"));
        let width = u64_field(entry, "width") as u32;
        let height = u64_field(entry, "height") as u32;
        let bytes = read(str_field(entry, "file"));
        let image = match u64_field(entry, "channels") {
            3 => super::RgbImage::from_rgb(width, height, bytes),
            4 => super::RgbImage::from_rgba(width, height, &bytes),
            other => panic!("unsupported channel count {other}"),
        };
        image.unwrap_or_else(|e| panic!("input image {name}: {e}"))
    }

    /// The goldens' checksum: `sum_i bits[i] * (2i + 1)` modulo 2^64. An odd multiplier is
    /// invertible modulo 2^64, so any single changed element changes the sum.
    pub fn checksum(bits: impl Iterator<Item = u64>) -> u64 {
        bits.enumerate().fold(0u64, |acc, (i, b)| {
            acc.wrapping_add(b.wrapping_mul((i as u64).wrapping_mul(2).wrapping_add(1)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{checksum, index, input_image, read, str_field, u64_field};
    use super::*;

    #[test]
    fn rgba_input_matches_transformers_convert_to_rgb() {
        let index = index();
        let cases = index["rgba_to_rgb"].as_array().cloned().unwrap_or_default();
        assert!(!cases.is_empty(), "index.json has no rgba_to_rgb cases");
        for case in &cases {
            let name = str_field(case, "image");
            let got = input_image(&index, name);
            let want = read(str_field(case, "file"));
            assert_eq!(got.data.len(), want.len(), "{name}: length");
            if let Some(i) = got.data.iter().zip(&want).position(|(a, b)| a != b) {
                panic!(
                    "{name}: byte {i} is {} but transformers gives {}",
                    got.data[i], want[i]
                );
            }
        }
    }

    #[test]
    fn every_colour_alpha_pair_matches_transformers() {
        let index = index();
        // Same layout as the generator: y = colour, x = alpha.
        let mut rgba = Vec::with_capacity(256 * 256 * 4);
        for colour in 0..=255u8 {
            for alpha in 0..=255u8 {
                rgba.extend_from_slice(&[colour, colour, colour, alpha]);
            }
        }
        let rgb = RgbImage::from_rgba(256, 256, &rgba).unwrap();
        let got = checksum(rgb.data.iter().map(|&b| u64::from(b)));
        assert_eq!(got, u64_field(&index["alpha_table"], "checksum"));
    }

    #[test]
    fn compositing_endpoints() {
        // Transparent pixels become white, opaque ones keep their colour.
        let img = RgbImage::from_rgba(2, 1, &[10, 20, 30, 0, 10, 20, 30, 255]).unwrap();
        assert_eq!(img.data, vec![255, 255, 255, 10, 20, 30]);
    }

    #[test]
    fn empty_images_are_rejected() {
        assert!(matches!(
            RgbImage::from_rgb(0, 5, vec![]),
            Err(PreprocessError::EmptyImage)
        ));
        assert!(matches!(
            RgbImage::from_rgba(5, 0, &[]),
            Err(PreprocessError::EmptyImage)
        ));
        let hand_built = RgbImage {
            width: 0,
            height: 0,
            data: vec![],
        };
        assert!(matches!(
            hand_built.validate(),
            Err(PreprocessError::EmptyImage)
        ));
    }

    #[test]
    fn oversized_images_are_rejected_before_allocation() {
        // The buffer is deliberately empty: the size check must fire before the length check.
        let err = RgbImage::from_rgb(20000, 20000, Vec::new()).unwrap_err();
        assert!(
            matches!(err, PreprocessError::ImageTooLarge { width: 20000, height: 20000, max_side }
                if max_side == MAX_INPUT_SIDE),
            "{err:?}"
        );
        let err = RgbImage::from_rgba(1, MAX_INPUT_SIDE + 1, &[]).unwrap_err();
        assert!(
            matches!(err, PreprocessError::ImageTooLarge { .. }),
            "{err:?}"
        );
        // The limit itself is accepted (the length check is what fails here).
        let err = RgbImage::from_rgb(MAX_INPUT_SIDE, 1, Vec::new()).unwrap_err();
        assert!(matches!(err, PreprocessError::BufferSize { .. }), "{err:?}");
    }

    #[test]
    fn buffer_length_must_match() {
        let err = RgbImage::from_rgb(2, 3, vec![0; 17]).unwrap_err();
        assert!(
            matches!(
                err,
                PreprocessError::BufferSize {
                    expected: 18,
                    got: 17
                }
            ),
            "{err:?}"
        );
        let err = RgbImage::from_rgba(2, 3, &[0; 18]).unwrap_err();
        assert!(
            matches!(
                err,
                PreprocessError::BufferSize {
                    expected: 24,
                    got: 18
                }
            ),
            "{err:?}"
        );
        let mut img = RgbImage::from_rgb(2, 3, vec![0; 18]).unwrap();
        img.data.pop();
        assert!(matches!(
            img.validate(),
            Err(PreprocessError::BufferSize { .. })
        ));
        assert!(
            err.to_string().contains("24"),
            "message should state the expected size: {err}"
        );
    }
}
