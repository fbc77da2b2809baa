//! Building blocks shared by the vision tower and the decoder.

mod embedding;
mod linear;
mod norm;

pub use embedding::Embedding;
pub use linear::Linear;
pub use norm::{LayerNorm, RmsNorm};
