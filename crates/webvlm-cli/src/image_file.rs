//! Decoding image files for the CLI (the core takes pixels, never files).

use std::path::Path;

use webvlm_model::RgbImage;
use webvlm_model::preprocess::{MAX_INPUT_SIDE, PreprocessError};

/// A file that could not be turned into pixels.
#[derive(Debug, thiserror::Error)]
pub enum ImageFileError {
    #[error("cannot read image `{path}`: {message}")]
    Unreadable { path: String, message: String },
    #[error("image `{path}`: {source}")]
    Invalid { path: String, source: PreprocessError },
}

/// Decode PNG/JPEG to RGB, refusing huge images from their header before decoding.
pub fn load(path: &Path) -> Result<RgbImage, ImageFileError> {
    let shown = path.display().to_string();
    let unreadable = |e: image::ImageError| ImageFileError::Unreadable { path: shown.clone(), message: e.to_string() };
    let (w, h) = image::image_dimensions(path).map_err(unreadable)?;
    if w == 0 || h == 0 {
        return Err(ImageFileError::Invalid { path: shown, source: PreprocessError::EmptyImage });
    }
    if w > MAX_INPUT_SIDE || h > MAX_INPUT_SIDE {
        return Err(ImageFileError::Invalid {
            path: shown,
            source: PreprocessError::ImageTooLarge { width: w, height: h, max_side: MAX_INPUT_SIDE },
        });
    }
    let img = image::open(path).map_err(unreadable)?;
    let result = if img.color().has_alpha() {
        let rgba = img.to_rgba8();
        RgbImage::from_rgba(rgba.width(), rgba.height(), rgba.as_raw())
    } else {
        let rgb = img.to_rgb8();
        RgbImage::from_rgb(rgb.width(), rgb.height(), rgb.into_raw())
    };
    result.map_err(|source| ImageFileError::Invalid { path: shown, source })
}
