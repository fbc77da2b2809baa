//! Causal grouped-query self-attention with RoPE and a KV cache (Llama, Qwen2 and Phi differ
//! only in which projections carry a bias and in the output projection's name).

use burn::tensor::Tensor;
use webvlm_kernels::ops::{Mask, attention_softmax};

use super::kv_cache::KvCache;
use super::rope::RopeAt;
use crate::config::{DecoderKind, TextConfig};
use crate::error::Result;
use crate::nn::Linear;
use crate::weights::WeightReader;

/// `LlamaAttention`, `Qwen2Attention`, `PhiAttention`.
#[derive(Clone, Debug)]
pub struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
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
        Ok(Self {
            q: Linear::load(vb, "q_proj", d, h * hd, qkv_bias)?,
            k: Linear::load(vb, "k_proj", d, kvh * hd, qkv_bias)?,
            v: Linear::load(vb, "v_proj", d, kvh * hd, qkv_bias)?,
            o: Linear::load(vb, o_name, h * hd, d, o_bias)?,
            heads: h,
            kv_heads: kvh,
            head_dim: hd,
        })
    }

    pub fn weight_bytes(&self) -> u64 {
        [&self.q, &self.k, &self.v, &self.o].iter().map(|l| l.weight_bytes()).sum()
    }

    /// Attend the `n` new positions (starting at `cache.len()`) to everything cached so far.
    ///
    /// Grouped-query attention without copying K/V: the `rep = heads / kv_heads` query heads
    /// that share a KV head are stacked along the sequence axis, `[kv_heads, rep·n, head_dim]`,
    /// which is exactly how transformers' `repeat_kv` pairs them (head h uses kv head h / rep).
    ///
    /// # Shapes
    /// `x: [n, hidden]` → `[n, hidden]`
    pub fn forward(&self, x: Tensor<2>, rope: &RopeAt, cache: &mut KvCache, layer: usize) -> Result<Tensor<2>> {
        let [n, _] = x.dims();
        let start = cache.len();
        let (h, kvh, hd) = (self.heads, self.kv_heads, self.head_dim);
        let rep = h / kvh;
        let q = rope.apply(self.q.forward(x.clone())?, h)?; // [h, n, hd]
        let k = rope.apply(self.k.forward(x.clone())?, kvh)?;
        let v: Tensor<3> = self.v.forward(x)?.reshape([n, kvh, hd]).swap_dims(0, 1);
        let (keys, values) = cache.append(layer, k, v);

        let q: Tensor<3> = q.reshape([kvh, rep * n, hd]);
        let scale = (hd as f64).powf(-0.5);
        let scores = q.matmul(keys.swap_dims(1, 2)); // [kvh, rep·n, total]
        let mask = if n > 1 { Mask::Causal { n, start } } else { Mask::None };
        let weights = attention_softmax(scores, scale, mask)
            .map_err(|e| crate::error::ModelError::Kernel { name: "attention softmax".into(), message: e.to_string() })?;
        let ctx = weights.matmul(values); // [kvh, rep·n, hd]
        let ctx: Tensor<3> = ctx.reshape([h, n, hd]);
        self.o.forward(ctx.swap_dims(0, 1).reshape([n, h * hd]))
    }
}
