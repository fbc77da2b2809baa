//! Errors of generation.

use webvlm_model::ModelError;

/// Anything that stops a generation early.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A sampling option is out of range.
    #[error("invalid generation option: {0}")]
    InvalidOption(String),
    /// The model failed (bad input, device loss, ...).
    #[error(transparent)]
    Model(#[from] ModelError),
}
