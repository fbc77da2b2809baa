//! The Llama-style text decoder: RoPE, grouped-query attention with a KV cache, RMSNorm, SwiGLU.
//!
//! Follows `LlamaModel` in transformers' `models/llama/modeling_llama.py`. The decoder works on
//! embeddings, so the caller decides what fills each position (token embeddings, image features).

mod attention;
mod block;
mod decoder;
mod kv_cache;
pub mod mlp;
mod rope;

pub use decoder::TextDecoder;
pub use kv_cache::KvCache;
pub use rope::{Positions, Rope, RopeAt, inverse_frequencies, rope_tables};
