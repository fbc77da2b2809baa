//! Generation on top of `webvlm-model`: prefill, step-by-step decoding with a KV cache,
//! sampling (greedy, temperature, top-k, top-p, repetition penalty, seeded), stop conditions and
//! streaming text deltas.
//!
//! The loop is driven by the caller one [`Generator::step`] at a time and every readback is
//! async, so a browser worker can yield to its event loop (and see an abort) between tokens.

pub mod bench;
mod error;
mod generate;
pub mod sampling;
mod stream;

pub use error::GenerateError;
pub use generate::{FinishReason, GenerationOptions, Generator, Step};
pub use sampling::Sampler;
pub use stream::TextStream;
