//! webvlm's model core: architectures, weights, preprocessing and prompts.
//!
//! Families: SmolVLM / Idefics3, LLaVA-1.5, Qwen2-VL, Qwen2.5-VL, and the text-only Llama, Qwen2
//! and Phi decoders (see [`config::Family`]); one implementation of each component serves them
//! all.
//! Everything here runs on burn tensors whose [`burn::tensor::Device`] decides the backend at run
//! time: wgpu (Vulkan, Metal, WebGPU) or burn's ndarray CPU backend, used as a reference.
//! No function blocks on the GPU except the explicit `*_sync` readbacks natively; the browser
//! build reads back asynchronously.
//!
//! ```text
//! RgbImage ─preprocess─▶ tiles ─vision─▶ patches ─connector─▶ image features ─┐
//! question ─chat template─▶ text ─expand <image>─▶ ids ─embed──────────────────┴▶ decoder ─▶ logits
//! ```

pub mod config;
pub mod device;
pub mod memory;
pub mod error;
pub mod model;
pub mod nn;
pub mod preprocess;
pub mod prompt;
pub mod source;
pub mod text;
pub mod tokenizer;
pub mod vision;
pub mod vlm;
pub mod weights;

pub use config::{Family, ModelConfig};
pub use error::{ModelError, Result};
pub use model::{Model, TileFeatures};
pub use preprocess::RgbImage;
pub use source::{DirSource, MemorySource, ModelSource};
pub use tokenizer::Tokenizer;
pub use vlm::{PackedLoad, PreparedPrompt, Vlm};
pub use weights::packed::Check;

/// Re-exported so dependants use the same burn.
pub use burn;
