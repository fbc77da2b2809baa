//! Per-layer key/value cache, preallocated to the context length so decoding never reallocates.

use burn::tensor::{Device, Tensor};

/// Keys and values of every layer for the positions seen so far.
#[derive(Clone, Debug)]
pub struct KvCache {
    /// Per layer: `[kv_heads, capacity, head_dim]`
    keys: Vec<Tensor<3>>,
    /// Per layer: `[kv_heads, capacity, head_dim]`
    values: Vec<Tensor<3>>,
    len: usize,
    capacity: usize,
    /// RoPE position of the next token minus `len`: M-RoPE compresses an image's tokens into
    /// fewer positions, so positions run behind indices after one (0 otherwise).
    position_lag: usize,
    /// Stands in for a layer's tensor while `append` owns it.
    placeholder: Tensor<3>,
}

impl KvCache {
    pub fn new(layers: usize, kv_heads: usize, head_dim: usize, capacity: usize, device: &Device) -> Self {
        let empty = || Tensor::<3>::zeros([kv_heads, capacity, head_dim], device);
        Self {
            keys: (0..layers).map(|_| empty()).collect(),
            values: (0..layers).map(|_| empty()).collect(),
            len: 0,
            capacity,
            position_lag: 0,
            placeholder: Tensor::<3>::zeros([1, 1, 1], device),
        }
    }

    /// Positions already cached.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forget everything (a new conversation).
    pub fn clear(&mut self) {
        self.len = 0;
        self.position_lag = 0;
    }

    /// Drop positions from `len` on (e.g. to rewind a turn). The caller re-runs what follows
    /// with its positions, which also resets the lag when they are given.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// RoPE position of the next token.
    pub fn next_position(&self) -> usize {
        self.len - self.position_lag.min(self.len)
    }

    /// Record the RoPE position of the next token (after M-RoPE positions were used).
    pub(crate) fn set_next_position(&mut self, next: usize) {
        self.position_lag = self.len.saturating_sub(next);
    }

    /// Make room for `capacity` positions, keeping what is cached. Multi-turn chat grows the
    /// cache turn by turn instead of reserving the whole context window up front (the window
    /// of a real model costs hundreds of MB, more than a phone can spare).
    pub fn grow(&mut self, capacity: usize) {
        if capacity <= self.capacity {
            return;
        }
        for t in self.keys.iter_mut().chain(self.values.iter_mut()) {
            let [h, old, d] = t.dims();
            let bigger = Tensor::<3>::zeros([h, capacity, d], &t.device());
            *t = bigger.slice_assign([0..h, 0..old, 0..d], t.clone());
        }
        self.capacity = capacity;
    }

    /// Write `n` new positions for `layer` at `len..len+n` and return the layer's whole key
    /// and value buffers (positions past `len+n` unused). The caller checks capacity first;
    /// [`KvCache::advance`] commits.
    ///
    /// # Shapes
    /// `k, v: [kv_heads, n, head_dim]` → `([kv_heads, capacity, head_dim], same)`
    pub(crate) fn append(&mut self, layer: usize, k: Tensor<3>, v: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let [h, n, d] = k.dims();
        let (start, end) = (self.len, self.len + n);
        // Moved out, not cloned: a buffer with a second owner cannot be written in place, and
        // burn would copy the whole cache of this layer on every token.
        let keys = std::mem::replace(&mut self.keys[layer], self.placeholder.clone()).slice_assign([0..h, start..end, 0..d], k);
        let values = std::mem::replace(&mut self.values[layer], self.placeholder.clone()).slice_assign([0..h, start..end, 0..d], v);
        self.keys[layer] = keys.clone();
        self.values[layer] = values.clone();
        (keys, values)
    }

    /// Move `layer`'s whole key and value buffers out (all `capacity` positions) for a kernel
    /// that writes them in place, which it may only do while nothing else holds them; give
    /// them back with [`KvCache::put_layer`].
    ///
    /// # Shapes
    /// `([kv_heads, capacity, head_dim], same)`
    pub(crate) fn take_layer(&mut self, layer: usize) -> (Tensor<3>, Tensor<3>) {
        (
            std::mem::replace(&mut self.keys[layer], self.placeholder.clone()),
            std::mem::replace(&mut self.values[layer], self.placeholder.clone()),
        )
    }

    pub(crate) fn put_layer(&mut self, layer: usize, keys: Tensor<3>, values: Tensor<3>) {
        self.keys[layer] = keys;
        self.values[layer] = values;
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }
}

