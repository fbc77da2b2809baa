//! The SigLIP-style vision tower of Idefics3 and its connector.
//!
//! Follows `Idefics3VisionTransformer` and `Idefics3Connector` in transformers'
//! `models/idefics3/modeling_idefics3.py`. Tiles are encoded one at a time: a 512-pixel SmolVLM
//! tile has 1024 patches, and a batch of 17 tiles' attention scores would not fit a phone.

mod attention;
mod connector;
mod embeddings;
mod encoder;
mod mlp;

pub use connector::Connector;
pub use embeddings::{VisionEmbeddings, extract_patches};
pub use encoder::{VisionLayer, VisionTransformer};
