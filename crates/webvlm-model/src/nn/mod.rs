//! Building blocks shared by the vision towers, connectors and decoders.

mod embedding;
mod feed_forward;
mod linear;
mod norm;

pub use embedding::Embedding;
pub use feed_forward::{FeedForward, GatedFeedForward};
pub use linear::Linear;
pub use norm::{LayerNorm, Norm, RmsNorm};

use burn::tensor::Tensor;

/// Bytes a tensor occupies on its device (what reading it once costs).
pub(crate) fn tensor_bytes<const D: usize>(t: &Tensor<D>) -> u64 {
    (t.shape().num_elements() * t.dtype().size()) as u64
}
