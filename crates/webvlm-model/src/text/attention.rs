//! Causal grouped-query self-attention with RoPE and a KV cache (Llama, Qwen2 and Phi differ
//! only in which projections carry a bias and in the output projection's name).

use burn::tensor::Tensor;
use webvlm_kernels::ops::{DecodeAttention, KeyRange, decode_attention, flash_attention};

use super::kv_cache::KvCache;
use super::rope::RopeAt;
use crate::config::{DecoderKind, TextConfig};
use crate::error::Result;
use crate::nn::Linear;
use crate::weights::WeightReader;

/// The q, k and v projections: one weight with their rows stacked when they can be joined
/// (one matrix product per token instead of three), else apart.
#[derive(Clone, Debug)]
enum Qkv {
    /// `[q | k | v]` rows.
    Joined(Linear),
    Apart { q: Linear, k: Linear, v: Linear },
}

/// `LlamaAttention`, `Qwen2Attention`, `PhiAttention`.
#[derive(Clone, Debug)]
pub struct Attention {
    qkv: Qkv,
    o: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    pub fn load(vb: &mut WeightReader, cfg: &TextConfig) -> Result<Self> {
        let (h, kvh, hd, d) = (cfg.num_attention_heads, cfg.num_key_value_heads(), cfg.head_dim(), cfg.hidden_size);
        let (qkv_bias, o_bias, o_name) = match cfg.decoder {
            DecoderKind::Llama => (cfg.attention_bias, cfg.attention_bias, "o_proj"),
            DecoderKind::Qwen2 => (true, false, "o_proj"),
            DecoderKind::Phi => (true, true, "dense"),
        };
        let q = Linear::load(vb, "q_proj", d, h * hd, qkv_bias)?;
        let k = Linear::load(vb, "k_proj", d, kvh * hd, qkv_bias)?;
        let v = Linear::load(vb, "v_proj", d, kvh * hd, qkv_bias)?;
        let qkv = Linear::concat_rows(&[&q, &k, &v]).map_or(Qkv::Apart { q, k, v }, Qkv::Joined);
        Ok(Self { qkv, o: Linear::load(vb, o_name, h * hd, d, o_bias)?, heads: h, kv_heads: kvh, head_dim: hd })
    }

    pub fn weight_bytes(&self) -> u64 {
        let qkv = match &self.qkv {
            Qkv::Joined(l) => l.weight_bytes(),
            Qkv::Apart { q, k, v } => q.weight_bytes() + k.weight_bytes() + v.weight_bytes(),
        };
        qkv + self.o.weight_bytes()
    }

    /// The q, k and v projections side by side.
    ///
    /// # Shapes
    /// `x: [n, hidden]` → `[n, (heads + 2·kv_heads)·head_dim]`
    fn project(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        match &self.qkv {
            // Biases (Qwen2, Phi) are added inside the matvec.
            Qkv::Joined(l) => l.forward_fused(x, false, None),
            Qkv::Apart { q, k, v } => Ok(Tensor::cat(vec![q.forward(x.clone())?, k.forward(x.clone())?, v.forward(x)?], 1)),
        }
    }

    /// Attend the `n` new positions (starting at `cache.len()`) to everything cached so far.
    ///
    /// Grouped-query attention without copying K/V: query head h reads KV head h / rep
    /// (transformers' `repeat_kv` pairing). One token (decode) goes through a single kernel:
    /// RoPE, the cache write and attention; several (prefill) through flash attention over the
    /// cache, never holding their scores.
    ///
    /// `residual`, when given, is added to the output inside the o-projection.
    ///
    /// # Shapes
    /// `x, residual: [n, hidden]` → `[n, hidden]`
    pub fn forward(&self, x: Tensor<2>, rope: &RopeAt, cache: &mut KvCache, layer: usize, residual: Option<Tensor<2>>) -> Result<Tensor<2>> {
        let [n, _] = x.dims();
        let start = cache.len();
        let (h, kvh, hd) = (self.heads, self.kv_heads, self.head_dim);
        let scale = (hd as f64).powf(-0.5);
        let qkv = self.project(x)?;
        if n == 1 {
            let (cos, sin, rope_pos) = rope.tables();
            let a = DecodeAttention { heads: h, kv_heads: kvh, cos, sin, rope_pos, pos: start, scale };
            let (keys, values) = cache.take_layer(layer);
            let (ctx, keys, values) = decode_attention(qkv, keys, values, &a)
                .map_err(|e| crate::error::ModelError::Kernel { name: "decode attention".into(), source: e })?;
            cache.put_layer(layer, keys, values);
            return self.o.forward_fused(ctx, false, residual);
        }
        let q = rope.apply(qkv.clone().slice_dim(1, 0..h * hd), h)?; // [h, n, hd]
        let k = rope.apply(qkv.clone().slice_dim(1, h * hd..(h + kvh) * hd), kvh)?;
        let v: Tensor<3> = qkv.slice_dim(1, (h + kvh) * hd..(h + 2 * kvh) * hd).reshape([n, kvh, hd]).swap_dims(0, 1);
        let (keys, values) = cache.append(layer, k, v);
        // [n, h·hd], heads side by side: what the o-projection reads.
        let ctx = flash_attention(q, keys, values, start + n, KeyRange::Causal { start }, scale)
            .map_err(|e| crate::error::ModelError::Kernel { name: "prefill attention".into(), source: e })?;
        self.o.forward_fused(ctx, false, residual)
    }
}
