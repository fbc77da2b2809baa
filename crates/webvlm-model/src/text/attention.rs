//! Causal grouped-query self-attention with RoPE and a KV cache.

use burn::tensor::{Tensor, TensorData, activation::softmax};

use super::kv_cache::KvCache;
use super::rope::Rope;
use crate::config::TextConfig;
use crate::error::Result;
use crate::nn::Linear;
use crate::weights::WeightReader;

/// `LlamaAttention`.
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
        let bias = cfg.attention_bias;
        Ok(Self {
            q: Linear::load(vb, "q_proj", d, h * hd, bias)?,
            k: Linear::load(vb, "k_proj", d, kvh * hd, bias)?,
            v: Linear::load(vb, "v_proj", d, kvh * hd, bias)?,
            o: Linear::load(vb, "o_proj", h * hd, d, bias)?,
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
    pub fn forward(&self, x: Tensor<2>, rope: &Rope, cache: &mut KvCache, layer: usize) -> Result<Tensor<2>> {
        let [n, _] = x.dims();
        let start = cache.len();
        let (h, kvh, hd) = (self.heads, self.kv_heads, self.head_dim);
        let rep = h / kvh;
        let q: Tensor<3> = self.q.forward(x.clone())?.reshape([n, h, hd]).swap_dims(0, 1);
        let k: Tensor<3> = self.k.forward(x.clone())?.reshape([n, kvh, hd]).swap_dims(0, 1);
        let v: Tensor<3> = self.v.forward(x)?.reshape([n, kvh, hd]).swap_dims(0, 1);
        let q = rope.apply(q, start);
        let k = rope.apply(k, start);
        let (keys, values) = cache.append(layer, k, v);

        let q: Tensor<3> = q.reshape([kvh, rep * n, hd]);
        let scale = (hd as f64).powf(-0.5);
        let mut scores = q.matmul(keys.swap_dims(1, 2)) * scale; // [kvh, rep·n, total]
        if n > 1 {
            scores = scores + causal_mask(n, start, rep, &values.device()).unsqueeze::<3>();
        }
        let ctx = softmax(scores, 2).matmul(values); // [kvh, rep·n, hd]
        let ctx: Tensor<3> = ctx.reshape([h, n, hd]);
        self.o.forward(ctx.swap_dims(0, 1).reshape([n, h * hd]))
    }
}

/// `[rep·n, start+n]`: query i (absolute position start+i) sees keys 0..=start+i.
fn causal_mask(n: usize, start: usize, rep: usize, device: &burn::tensor::Device) -> Tensor<2> {
    let total = start + n;
    let mut mask = Vec::with_capacity(rep * n * total);
    for _ in 0..rep {
        for i in 0..n {
            for j in 0..total {
                mask.push(if j <= start + i { 0.0f32 } else { f32::NEG_INFINITY });
            }
        }
    }
    Tensor::from_data(TensorData::new(mask, [rep * n, total]), device)
}
