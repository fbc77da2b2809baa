//! Errors of generation.

use webvlm_model::ModelError;

/// Anything that stops a generation early.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A sampling option is out of range.
    #[error("invalid generation option: {0}")]
    InvalidOption(String),
    /// The logits of a token hold NaN or +∞ (or nothing above −∞): the model has a numerical
    /// fault on this device, and a token picked from them would be noise.
    #[error(
        "the model's logits for generated token {token} are not finite (NaN, +inf, or all -inf): a numerical fault (an f16 overflow on this device, or a corrupt weight); the generation stopped"
    )]
    NonFiniteLogits { token: usize },
    /// The model failed (bad input, device loss, ...).
    #[error(transparent)]
    Model(#[from] ModelError),
}
