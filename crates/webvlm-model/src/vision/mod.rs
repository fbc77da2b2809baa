//! Vision towers (SigLIP for Idefics3, CLIP for LLaVA) and their connectors.
//!
//! Follows `Idefics3VisionTransformer` / `Idefics3Connector`
//! (`models/idefics3/modeling_idefics3.py`) and `CLIPVisionTransformer` /
//! `LlavaMultiModalProjector` (`models/clip`, `models/llava`) in transformers. Tiles are encoded
//! one at a time: a 512-pixel SmolVLM tile has 1024 patches, and a batch of 17 tiles' attention
//! scores would not fit a phone.

mod attention;
mod connector;
mod embeddings;
mod encoder;
mod qwen;

pub use connector::{Connector, pixel_shuffle, pixel_shuffle_tiles};
pub use embeddings::{VisionEmbeddings, unfold_patches};
pub use encoder::{VisionLayer, VisionTransformer};
pub use qwen::{Patches, QwenFeatures, QwenVision, window_order};
