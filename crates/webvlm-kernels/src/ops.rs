//! The decoder's row and element-wise operations as single WGSL dispatches: RMSNorm, RoPE with
//! the head transpose, the attention softmax with its scale and causal mask, and SwiGLU's
//! gate. With burn's fusion off, each was 3–8 kernel launches; a decoded token ran about 50
//! per layer, and launches, not arithmetic, set the speed on software devices and phones.
//!
//! Every function has the same meaning on any device: off wgpu (burn's CPU backend, the
//! reference) or with a non-f32 input it runs the plain burn ops, which are also what the
//! tests compare the kernels with.

use burn::tensor::activation::{silu, softmax};
use burn::tensor::{DType, Int, Tensor, TensorData};
use burn_cubecl::CubeBackend;
use burn_cubecl::cubecl::CubeCount;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;

use crate::device_matrix::wgpu_device;
use crate::empty_f32;
use crate::error::{KernelError, Result};
use crate::launch::Io;
use crate::params::{DecodeAttentionParams, EltParams, FlashParams, NormParams, RopeParams, SampleParams, SoftmaxParams, info_words};
use crate::sample::{SampleSettings, sample_ref, uniform};
use crate::shaders::{FusedOp, Kernel};
use crate::variants::DeviceCaps;

/// Invocations per workgroup of the fused kernels (a power of two; WebGPU guarantees 256).
pub const FUSED_WG: u32 = 64;

/// The f32 CubeCL tensor behind `t` when it lives on a wgpu device, made contiguous.
fn on_wgpu<const D: usize>(t: &Tensor<D>) -> Option<CubeTensor> {
    wgpu_device(&t.device())?;
    if t.dtype() != DType::F32 {
        return None;
    }
    t.clone().try_into_primitive::<CubeBackend>().ok().map(into_contiguous)
}

/// `count` workgroups on `like`'s device, folded into two dimensions past the per-dimension limit.
fn groups(count: usize, like: &CubeTensor) -> Result<CubeCount> {
    crate::launch::linear_count(count as u64, &DeviceCaps::of(&like.client), "fused op")
}

fn run(op: FusedOp, count: CubeCount, inputs: &[&CubeTensor], output: &CubeTensor, info: Vec<u64>) {
    crate::launch::launch(Kernel::Fused { op, wg: FUSED_WG }, &output.client, count, inputs, output, info);
}

/// Llama's RMSNorm over the last axis: `x / sqrt(mean(x²) + eps) · w`.
///
/// # Shapes
/// `x: [rows, cols]`, `w: [cols]` → `[rows, cols]`
pub fn rms_norm(x: Tensor<2>, w: &Tensor<1>, eps: f64) -> Result<Tensor<2>> {
    let [rows, cols] = x.dims();
    let (Some(xc), Some(wc)) = (on_wgpu(&x), on_wgpu(w)) else {
        let ms = x.clone().square().mean_dim(1);
        return Ok(x * (ms + eps).sqrt().recip() * w.clone().unsqueeze::<2>());
    };
    if rows == 0 {
        return Ok(x);
    }
    let y = empty_f32(&xc, [rows, cols]);
    let params = NormParams { rows: rows as u32, cols: cols as u32, eps: eps as f32, _pad: 0 };
    run(FusedOp::RmsNorm, groups(rows, &xc)?, &[&xc, &wc], &y, info_words(&params));
    Ok(Tensor::from_primitive::<CubeBackend>(y))
}

/// `nn.LayerNorm` over the last axis: `(x − mean) / sqrt(var + eps) · w + b`, the variance
/// biased (torch's).
///
/// # Shapes
/// `x: [rows, cols]`, `w, b: [cols]` → `[rows, cols]`
pub fn layer_norm(x: Tensor<2>, w: &Tensor<1>, b: &Tensor<1>, eps: f64) -> Result<Tensor<2>> {
    let [rows, cols] = x.dims();
    if w.dims() != [cols] || b.dims() != [cols] {
        return Err(KernelError::Device(format!("layer norm: rows of {cols} with a weight {:?} and a bias {:?}", w.dims(), b.dims())));
    }
    let (Some(xc), Some(wc), Some(bc)) = (on_wgpu(&x), on_wgpu(w), on_wgpu(b)) else {
        let (var, mean) = x.clone().var_mean_bias(1);
        let normed = (x - mean) / (var + eps).sqrt();
        return Ok(normed * w.clone().unsqueeze::<2>() + b.clone().unsqueeze::<2>());
    };
    if rows == 0 {
        return Ok(x);
    }
    let y = empty_f32(&xc, [rows, cols]);
    let params = NormParams { rows: rows as u32, cols: cols as u32, eps: eps as f32, _pad: 0 };
    run(FusedOp::LayerNorm, groups(rows, &xc)?, &[&xc, &wc, &bc], &y, info_words(&params));
    Ok(Tensor::from_primitive::<CubeBackend>(y))
}

/// Rotary embedding (rotate_half convention) of a projection's output, transposed to heads
/// first: row `p` of `x` sits at position `start + p`; `cos`/`sin` are `[positions, rot]` and
/// rotate the first `rot ≤ hd` values of each head (partial rotary), the rest passing through.
///
/// # Shapes
/// `x: [n, heads·hd]` → `[heads, n, hd]`
pub fn rope(x: Tensor<2>, heads: usize, cos: &Tensor<2>, sin: &Tensor<2>, start: usize) -> Result<Tensor<3>> {
    let [n, width] = x.dims();
    let hd = width / heads.max(1);
    let [positions, rot] = cos.dims();
    if hd * heads != width || rot > hd || rot % 2 != 0 || start + n > positions {
        return Err(KernelError::Device(format!(
            "rope: {n}×{width} input as {heads} heads at positions {start}.. with a {positions}×{rot} table"
        )));
    }
    let (Some(xc), Some(cc), Some(sc)) = (on_wgpu(&x), on_wgpu(cos), on_wgpu(sin)) else {
        let x: Tensor<3> = x.reshape([n, heads, hd]).swap_dims(0, 1);
        let c = cos.clone().slice([start..start + n, 0..rot]).unsqueeze::<3>();
        let s = sin.clone().slice([start..start + n, 0..rot]).unsqueeze::<3>();
        let half = rot / 2;
        let xr = x.clone().slice_dim(2, 0..rot);
        let x1 = x.clone().slice_dim(2, 0..half);
        let x2 = x.clone().slice_dim(2, half..rot);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 2);
        let y = xr * c + rotated * s;
        return Ok(if rot == hd { y } else { Tensor::cat(vec![y, x.slice_dim(2, rot..hd)], 2) });
    };
    let y = empty_f32(&xc, [heads, n, hd]);
    let total = heads * n * (hd - rot / 2);
    if total > 0 {
        let params = RopeParams { n: n as u32, heads: heads as u32, hd: hd as u32, start: start as u32, total: total as u32, rot: rot as u32, _pad: [0; 2] };
        run(FusedOp::Rope, groups(total.div_ceil(FUSED_WG as usize), &xc)?, &[&xc, &cc, &sc], &y, info_words(&params));
    }
    Ok(Tensor::from_primitive::<CubeBackend>(y))
}

/// Which keys each query row may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// Every key (the vision tower).
    None,
    /// Row `r` is query `r mod n` at absolute position `start + r mod n` and sees keys
    /// `0 ..= start + r mod n` (queries of the heads sharing a KV head are stacked by rows).
    Causal { n: usize, start: usize },
}

/// `softmax(scores · scale)` over the last axis, masked keys getting exactly 0.
///
/// # Shapes
/// `scores: [batch, rows, keys]` → same
pub fn attention_softmax(scores: Tensor<3>, scale: f64, mask: Mask) -> Result<Tensor<3>> {
    let [b, r, t] = scores.dims();
    let Some(sc) = on_wgpu(&scores) else {
        let mut scores = scores * scale;
        if let Mask::Causal { n, start } = mask {
            let bias = causal_bias(r, n, start, t, &scores.device());
            scores = scores + bias.unsqueeze::<3>();
        }
        return Ok(softmax(scores, 2));
    };
    if b * r == 0 || t == 0 {
        return Ok(scores);
    }
    let y = empty_f32(&sc, [b, r, t]);
    let (n, start, causal) = match mask {
        Mask::None => (1, 0, 0),
        Mask::Causal { n, start } => (n.max(1), start, 1),
    };
    let params = SoftmaxParams { rows: (b * r) as u32, cols: t as u32, scale: scale as f32, n: n as u32, start: start as u32, causal, _pad: [0; 2] };
    run(FusedOp::Softmax, groups(b * r, &sc)?, &[&sc], &y, info_words(&params));
    Ok(Tensor::from_primitive::<CubeBackend>(y))
}

/// Which keys each query row of [`flash_attention`] sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRange<'a> {
    /// Every key (the vision towers).
    All,
    /// Row `r` is the token at position `start + r` and sees keys `0 ..= start + r` (prefill
    /// after `start` cached positions).
    Causal { start: usize },
    /// Consecutive segments tiling the rows (Qwen2.5-VL's windows, in order): a row sees the
    /// keys of its own segment, keys and rows being the same sequence.
    Segments(&'a [std::ops::Range<usize>]),
}

/// `softmax(q·kᵀ·scale)·v` for every query row and head, keys `0 .. total` (those `keys`
/// allows); grouped-query heads share KV head `h / (heads / kv_heads)`. On wgpu one dispatch
/// (`attention_flash.wgsl`) that never holds a `[heads, n, keys]` scores tensor, reading q, k
/// and v through their strides (a projection's output viewed as heads, a KV cache with room
/// past `total`) and writing the rows with their heads side by side, as the output projection
/// reads them. Off wgpu, or for heads over 256 values or not in f32, burn's matmuls around
/// [`attention_softmax`]: the reference.
///
/// # Shapes
/// `q: [heads, n, hd]`, `k, v: [kv_heads, ≥ total, hd]` → `[n, heads·hd]`
pub fn flash_attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, total: usize, keys: KeyRange<'_>, scale: f64) -> Result<Tensor<2>> {
    let [heads, n, hd] = q.dims();
    let [kvh, room, khd] = k.dims();
    let keys_ok = keys_fit(keys, n, total);
    if kvh == 0 || heads % kvh != 0 || khd != hd || v.dims() != k.dims() || total > room || !keys_ok {
        return Err(KernelError::Device(format!(
            "flash attention: q {:?} over k {:?} / v {:?}, {total} keys, {keys:?}",
            q.dims(),
            k.dims(),
            v.dims()
        )));
    }
    let views = (hd.div_ceil(4) <= 64).then(|| (heads_view(&q), heads_view(&k), heads_view(&v)));
    let Some((Some(qv), Some(kv), Some(vv))) = views else {
        // On a wgpu device the materialised scores must fit one binding: refused by name here
        // rather than failing inside burn (heads of over 256 values, or not f32).
        if let Some(caps) = DeviceCaps::of_device(&q.device()) {
            crate::launch::check_binding(heads * n * total, "attention scores", caps.max_binding_bytes)?;
        }
        return Ok(flash_attention_ops(q, k, v, total, keys, scale));
    };
    let geometry = FlashGeometry { heads, kv_heads: kvh, n, hd, total };
    launch_flash(&geometry, [&qv, &kv, &vv], false, keys, scale, &q.device())
}

/// Query rows per lane of the flash kernel: one on a GPU; on a CPU adapter, where every
/// workgroup-memory load is paid lane by lane, as many as keep the lane's queries and
/// accumulators within 128 vec4s each (up to 8: with hd 64 on lavapipe, 8 rows ran a SigLIP
/// layer's attention 3.9× faster than 1, as fast as the materialised scores' matmuls; more rows
/// cost pipeline compile time).
pub fn flash_rows_per_lane(caps: &DeviceCaps, hd4: usize) -> usize {
    if caps.software { (128 / hd4.max(1)).clamp(1, 8) } else { 1 }
}

/// One of q, k, v as the kernel reads it: the buffer, the element offset, the head and row strides.
type HeadsView = (CubeTensor, u32, u32, u32);

struct FlashGeometry {
    heads: usize,
    kv_heads: usize,
    n: usize,
    hd: usize,
    total: usize,
}

/// `joined`: k and v are views of q's buffer, which is then bound once.
fn launch_flash(g: &FlashGeometry, [q, k, v]: [&HeadsView; 3], joined: bool, keys: KeyRange<'_>, scale: f64, device: &burn::tensor::Device) -> Result<Tensor<2>> {
    let FlashGeometry { heads, kv_heads, n, hd, total } = *g;
    let qc = &q.0;
    crate::launch::check_binding(n * heads * hd, "attention output", DeviceCaps::of(&qc.client).max_binding_bytes)?;
    let y = empty_f32(qc, [n, heads * hd]);
    if n == 0 || heads == 0 || hd == 0 {
        return Ok(Tensor::from_primitive::<CubeBackend>(y));
    }
    let (mode, start, ranges) = match keys {
        KeyRange::All => (0, 0, None),
        KeyRange::Causal { start } => (1, start, None),
        KeyRange::Segments(segments) => {
            let mut words = vec![0u32; 2 * n];
            for s in segments {
                for r in s.clone() {
                    words[2 * r] = s.start as u32;
                    words[2 * r + 1] = s.end as u32;
                }
            }
            let t = words_tensor(words, device).try_into_primitive::<CubeBackend>().map_err(|e| KernelError::Device(format!("{e:?}")))?;
            (2, 0, Some(t))
        }
    };
    // One word the kernel never reads stands in for the ranges it does not need.
    let ranges = ranges.unwrap_or_else(|| {
        CubeTensor::new_contiguous(qc.client.clone(), qc.device.clone(), [1usize].into(), qc.client.empty(4), DType::I32)
    });
    let rows = flash_rows_per_lane(&DeviceCaps::of(&qc.client), hd.div_ceil(4));
    let row_blocks = n.div_ceil(FUSED_WG as usize * rows);
    let params = FlashParams {
        heads: heads as u32,
        rep: (heads / kv_heads) as u32,
        n: n as u32,
        hd: hd as u32,
        total: total as u32,
        mode,
        start: start as u32,
        scale: scale as f32,
        q_hs: q.2,
        q_rs: q.3,
        k_hs: k.2,
        k_rs: k.3,
        v_hs: v.2,
        v_rs: v.3,
        row_blocks: row_blocks as u32,
        q_off: q.1,
        k_off: k.1,
        v_off: v.1,
        _pad: [0; 2],
    };
    let kernel = Kernel::FlashAttention { hd4: hd.div_ceil(4) as u32, rows: rows as u32, joined };
    let bindings: &[(&CubeTensor, Io)] = if joined {
        &[(qc, Io::Read), (&y, Io::Write), (&ranges, Io::Read)]
    } else {
        &[(qc, Io::Read), (&y, Io::Write), (&k.0, Io::Read), (&v.0, Io::Read), (&ranges, Io::Read)]
    };
    crate::launch::launch_io(kernel, &qc.client, groups(heads * row_blocks, qc)?, bindings, info_words(&params));
    Ok(Tensor::from_primitive::<CubeBackend>(y))
}

/// [`flash_attention`] over a joined projection's output, q, k and v side by side in each row
/// (no RoPE): on wgpu the kernel reads the three straight from it, no slice copied.
///
/// # Shapes
/// `qkv: [n, (heads + 2·kv_heads)·hd]` → `[n, heads·hd]`
pub fn flash_attention_joined(qkv: Tensor<2>, heads: usize, kv_heads: usize, keys: KeyRange<'_>, scale: f64) -> Result<Tensor<2>> {
    let [n, width] = qkv.dims();
    let parts = heads + 2 * kv_heads;
    if kv_heads == 0 || heads % kv_heads != 0 || width % parts != 0 {
        return Err(KernelError::Device(format!("flash attention: a [{n}, {width}] q/k/v row as {heads} + 2·{kv_heads} heads")));
    }
    let hd = width / parts;
    let on_device = hd.div_ceil(4) <= 64 && keys_fit(keys, n, n);
    match on_wgpu(&qkv) {
        Some(c) if on_device => {
            let (w, h) = (width as u32, hd as u32);
            let view = |heads_before: usize| (c.clone(), (heads_before * hd) as u32, h, w);
            let (q, k, v) = (view(0), view(heads), view(heads + kv_heads));
            let geometry = FlashGeometry { heads, kv_heads, n, hd, total: n };
            launch_flash(&geometry, [&q, &k, &v], true, keys, scale, &qkv.device())
        }
        _ => {
            let split = |from: usize, count: usize| -> Tensor<3> {
                qkv.clone().slice_dim(1, from * hd..(from + count) * hd).reshape([n, count, hd]).swap_dims(0, 1)
            };
            flash_attention(split(0, heads), split(heads, kv_heads), split(heads + kv_heads, kv_heads), n, keys, scale)
        }
    }
}

/// Whether `keys` is a valid choice for `n` query rows over `total` keys.
fn keys_fit(keys: KeyRange<'_>, n: usize, total: usize) -> bool {
    match keys {
        KeyRange::All => true,
        KeyRange::Causal { start } => start + n <= total,
        KeyRange::Segments(s) => {
            total == n
                && s.first().is_none_or(|f| f.start == 0)
                && s.windows(2).all(|w| w[0].end == w[1].start)
                && s.iter().all(|r| r.start <= r.end)
                && s.last().map_or(n == 0, |l| l.end == n)
        }
    }
}

/// The f32 CubeCL tensor behind a `[heads, rows, hd]` view on wgpu, as the kernel reads it
/// (offset 0: a view's own offset is in its binding); copied only when its last axis is not
/// contiguous.
fn heads_view(t: &Tensor<3>) -> Option<HeadsView> {
    wgpu_device(&t.device())?;
    if t.dtype() != DType::F32 {
        return None;
    }
    let c = t.clone().try_into_primitive::<CubeBackend>().ok()?;
    let c = if c.meta.strides()[2] == 1 || c.meta.shape()[2] <= 1 { c } else { into_contiguous(c) };
    let (hs, rs) = (c.meta.strides()[0], c.meta.strides()[1]);
    Some((c, 0, u32::try_from(hs).ok()?, u32::try_from(rs).ok()?))
}

/// [`flash_attention`] as burn ops: the scores materialised, per segment.
fn flash_attention_ops(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, total: usize, keys: KeyRange<'_>, scale: f64) -> Tensor<2> {
    let [heads, n, hd] = q.dims();
    let kvh = k.dims()[0];
    let k = k.slice_dim(1, 0..total);
    let v = v.slice_dim(1, 0..total);
    // Query heads sharing a KV head stacked along the rows: `[kv_heads, rep·rows, hd]`, how
    // transformers' repeat_kv pairs them.
    let attend = |q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, mask: Mask| -> Tensor<3> {
        let [_, rows, _] = q.dims();
        let q: Tensor<3> = q.reshape([kvh, heads / kvh * rows, hd]);
        let w = attention_softmax(q.matmul(k.swap_dims(1, 2)), scale, mask).expect("softmax of a checked shape");
        w.matmul(v).reshape([heads, rows, hd])
    };
    let ctx = match keys {
        KeyRange::All => attend(q, k, v, Mask::None),
        KeyRange::Causal { start } => attend(q, k, v, Mask::Causal { n, start }),
        KeyRange::Segments(segments) => {
            let parts: Vec<Tensor<3>> = segments
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let part = |t: &Tensor<3>| t.clone().slice_dim(1, s.clone());
                    attend(part(&q), part(&k), part(&v), Mask::None)
                })
                .collect();
            Tensor::cat(parts, 1)
        }
    };
    ctx.swap_dims(0, 1).reshape([n, heads * hd])
}

/// The additive mask of [`Mask::Causal`]: 0 where visible, −∞ elsewhere.
fn causal_bias(rows: usize, n: usize, start: usize, keys: usize, device: &burn::tensor::Device) -> Tensor<2> {
    let mut bias = Vec::with_capacity(rows * keys);
    for r in 0..rows {
        let i = r % n.max(1);
        bias.extend((0..keys).map(|j| if j <= start + i { 0.0f32 } else { f32::NEG_INFINITY }));
    }
    Tensor::from_data(TensorData::new(bias, [rows, keys]), device)
}

/// `act` elementwise with burn's ops (the reference of the matmul epilogue's activations).
pub fn activate(x: Tensor<2>, act: crate::shaders::Act) -> Tensor<2> {
    use burn::tensor::activation;
    use crate::shaders::Act;
    match act {
        Act::None => x,
        Act::GeluErf => activation::gelu(x),
        Act::GeluTanh => activation::gelu_approximate(x),
        Act::QuickGelu => activation::sigmoid(x.clone() * 1.702) * x,
        Act::Silu => activation::silu(x),
    }
}

/// SwiGLU's gate on a joined gate/up product's output: `silu(x[.., ..k]) · x[.., k..]`.
///
/// # Shapes
/// `x: [rows, 2·k]` → `[rows, k]`
pub fn swiglu_joined(x: Tensor<2>, k: usize) -> Result<Tensor<2>> {
    swiglu(x.clone().slice_dim(1, 0..k), x.slice_dim(1, k..2 * k))
}

/// SwiGLU's gate: `silu(g) · u`.
///
/// # Shapes
/// `g, u: [rows, cols]` → same
pub fn swiglu(g: Tensor<2>, u: Tensor<2>) -> Result<Tensor<2>> {
    let dims = g.dims();
    let (Some(gc), Some(uc)) = (on_wgpu(&g), on_wgpu(&u)) else {
        return Ok(silu(g) * u);
    };
    if dims != u.dims() {
        return Err(KernelError::Device(format!("swiglu: gate {dims:?} and up {:?} differ", u.dims())));
    }
    let len = dims[0] * dims[1];
    let y = empty_f32(&gc, dims);
    if len > 0 {
        let params = EltParams { len: len as u32, _pad: [0; 3] };
        run(FusedOp::SwiGlu, groups(len.div_ceil(FUSED_WG as usize), &gc)?, &[&gc, &uc], &y, info_words(&params));
    }
    Ok(Tensor::from_primitive::<CubeBackend>(y))
}

/// Greedy sampling on the device: the index of the largest value of a `[1, cols]` row (the
/// first on ties, like the CPU sampler's loop; [`crate::sample::NON_FINITE`] for a row that is
/// not [`crate::sample::finite_row`]),
/// as a one-element integer tensor that stays on the device until somebody reads its 4 bytes
/// (and can index an embedding there).
/// Off wgpu it is burn's `argmax`; the runtime samples on the CPU there instead.
///
/// # Shapes
/// `x: [1, cols]` → `[1]` (i32)
pub fn argmax(x: Tensor<2>) -> Result<Tensor<1, Int>> {
    let [rows, cols] = x.dims();
    if rows != 1 || cols == 0 {
        return Err(KernelError::Device(format!("argmax: a [1, cols > 0] row, got [{rows}, {cols}]")));
    }
    let Some(xc) = on_wgpu(&x) else {
        return Ok(x.argmax(1).reshape([1]));
    };
    // i32, burn's index type (what `select` takes), holding the u32 index (< 2³¹).
    let handle = xc.client.empty(DType::I32.size());
    let y = CubeTensor::new_contiguous(xc.client.clone(), xc.device.clone(), [1usize].into(), handle, DType::I32);
    let params = EltParams { len: cols as u32, _pad: [0; 3] };
    crate::launch::launch(Kernel::Fused { op: FusedOp::Argmax, wg: FUSED_WG }, &xc.client, CubeCount::Static(1, 1, 1), &[&xc], &y, info_words(&params));
    Ok(Tensor::from_primitive::<CubeBackend>(y))
}

/// The repetition penalty's memory of the ids seen so far, as [`sample`] reads and updates it:
/// bit `i % 32` of word `i / 32` set for every id `i` in `ids` (ids ≥ `vocab` are ignored).
///
/// # Shapes
/// → `[ceil(vocab / 32)]` (u32 words in burn's int type)
pub fn seen_mask(ids: &[u32], vocab: usize, device: &burn::tensor::Device) -> Tensor<1, Int> {
    let mut words = vec![0u32; vocab.div_ceil(32).max(1)];
    for &id in ids.iter().filter(|&&id| (id as usize) < vocab) {
        words[id as usize / 32] |= 1 << (id % 32);
    }
    words_tensor(words, device)
}

/// u32 words as burn's int type, bit for bit (the mask and the id travel as i32 on wgpu).
fn words_tensor(words: Vec<u32>, device: &burn::tensor::Device) -> Tensor<1, Int> {
    let words: Vec<i32> = words.into_iter().map(|w| w as i32).collect();
    let len = words.len();
    Tensor::from_data(TensorData::new(words, [len]), device)
}

/// Sampling on the device: the token `settings` pick from a logits row with the uniform of
/// draw `draw` under `seed` ([`crate::sample`] states the rule; `sample_ref` is the reference).
/// The ids set in `seen` (from [`seen_mask`]) are penalised, and the pick's bit is set in it
/// when a penalty applies, so the next token needs nothing from the host. On wgpu one
/// dispatch (`sample.wgsl`) updates `seen` in place (a copy first when it shares its memory);
/// off wgpu the row is read and `sample_ref` picks. Returns the id and the mask.
///
/// # Shapes
/// `logits: [1, vocab]`, `seen: [ceil(vocab / 32)]` → `([1], seen)`
pub fn sample(logits: Tensor<2>, seen: Tensor<1, Int>, settings: &SampleSettings, seed: u64, draw: u64) -> Result<(Tensor<1, Int>, Tensor<1, Int>)> {
    let [rows, cols] = logits.dims();
    let words = cols.div_ceil(32);
    let valid = settings.temperature >= 0.0 && settings.temperature.is_finite() && settings.top_p > 0.0 && settings.top_p <= 1.0
        && settings.repetition_penalty > 0.0 && settings.repetition_penalty.is_finite();
    if rows != 1 || cols == 0 || seen.dims() != [words] || !valid || cols > u32::MAX as usize / 2 {
        return Err(KernelError::Device(format!("sample: a [1, cols > 0] row and a [{words}] mask with valid settings, got {:?}, {:?}, {settings:?}", logits.dims(), seen.dims())));
    }
    let Some(xc) = on_wgpu(&logits) else {
        return Ok(sample_on_host(logits, seen, settings, seed, draw));
    };
    let device = seen.device();
    let mask = match seen.clone().try_into_primitive::<CubeBackend>() {
        Ok(c) if c.is_contiguous() && c.dtype.size() == 4 => {
            drop(seen);
            if c.can_mut() { c } else { into_contiguous(Tensor::<1, Int>::from_primitive::<CubeBackend>(c).add_scalar(0).try_into_primitive::<CubeBackend>().map_err(|e| KernelError::Device(format!("{e:?}")))?) }
        }
        _ => into_contiguous(seen_copy(seen, &device)?),
    };
    let handle = xc.client.empty(DType::I32.size());
    let y = CubeTensor::new_contiguous(xc.client.clone(), xc.device.clone(), [1usize].into(), handle, DType::I32);
    let work = empty_f32(&xc, [2 * cols]);
    let params = SampleParams {
        cols: cols as u32,
        top_k: settings.top_k.min(cols) as u32,
        top_p: settings.top_p,
        temperature: settings.temperature,
        penalty: settings.repetition_penalty,
        key: [seed as u32, (seed >> 32) as u32],
        draw: [draw as u32, (draw >> 32) as u32],
        _pad: [0; 3],
    };
    crate::launch::launch_io(
        Kernel::Fused { op: FusedOp::Sample, wg: FusedOp::Sample.workgroup_size() },
        &xc.client,
        CubeCount::Static(1, 1, 1),
        &[(&xc, Io::Read), (&y, Io::Write), (&mask, Io::ReadWrite), (&work, Io::ReadWrite)],
        info_words(&params),
    );
    Ok((Tensor::from_primitive::<CubeBackend>(y), Tensor::from_primitive::<CubeBackend>(mask)))
}

/// A mask in another int type, or not contiguous: rebuilt as the kernel's u32 words.
fn seen_copy(seen: Tensor<1, Int>, device: &burn::tensor::Device) -> Result<CubeTensor> {
    words_tensor(seen.into_data().iter::<i64>().map(|w| w as u32).collect(), device)
        .try_into_primitive::<CubeBackend>()
        .map_err(|e| KernelError::Device(format!("{e:?}")))
}

/// [`sample`] off wgpu: the row and mask read back, the reference picks.
fn sample_on_host(logits: Tensor<2>, seen: Tensor<1, Int>, settings: &SampleSettings, seed: u64, draw: u64) -> (Tensor<1, Int>, Tensor<1, Int>) {
    let device = logits.device();
    let cols = logits.dims()[1];
    let row: Vec<f32> = logits.into_data().iter::<f32>().collect();
    let mut words: Vec<u32> = seen.into_data().iter::<i64>().map(|w| w as u32).collect();
    let ids: Vec<u32> = (0..cols as u32).filter(|&i| words[i as usize / 32] >> (i % 32) & 1 == 1).collect();
    let id = sample_ref(&row, &ids, settings, uniform(seed, draw)).id;
    if settings.repetition_penalty != 1.0 {
        words[id as usize / 32] |= 1 << (id % 32);
    }
    (words_tensor(vec![id], &device), words_tensor(words, &device))
}

/// What [`decode_attention`] needs to know of the model's attention.
#[derive(Debug, Clone, Copy)]
pub struct DecodeAttention<'a> {
    pub heads: usize,
    pub kv_heads: usize,
    /// `[positions, rot]` RoPE tables (rotate_half; `rot ≤ head_dim`, partial rotary below).
    pub cos: &'a Tensor<2>,
    pub sin: &'a Tensor<2>,
    /// The token's RoPE position (its row of the tables).
    pub rope_pos: usize,
    /// The cache slot the token goes to; slots `0 ..= pos` are attended to.
    pub pos: usize,
    pub scale: f64,
}

/// One new token through attention (decode): RoPE on its query and key, its key and value
/// written into the cache at slot `pos`, and `softmax(q·kᵀ·scale)·v` over slots `0 ..= pos`
/// for every query head (grouped-query heads share KV head `h / (heads / kv_heads)`). On wgpu
/// one dispatch (`attention_decode.wgsl`) writes the cache buffers in place, which must then
/// be the only owners of their memory (else, and off wgpu, burn ops do the same: the
/// reference). Returns the output and the cache buffers to put back.
///
/// # Shapes
/// `qkv: [1, (heads + 2·kv_heads)·hd]` (q, k, v side by side), `keys, values: [kv_heads,
/// capacity, hd]` → `([1, heads·hd], keys, values)`
pub fn decode_attention(qkv: Tensor<2>, keys: Tensor<3>, values: Tensor<3>, a: &DecodeAttention<'_>) -> Result<(Tensor<2>, Tensor<3>, Tensor<3>)> {
    let [kvh, capacity, hd] = keys.dims();
    let (heads, [rows, width]) = (a.heads, qkv.dims());
    let [positions, rot] = a.cos.dims();
    if rows != 1 || kvh != a.kv_heads || kvh == 0 || heads % kvh != 0 || width != (heads + 2 * kvh) * hd || values.dims() != keys.dims()
        || a.pos >= capacity || rot > hd || rot % 2 != 0 || a.rope_pos >= positions
    {
        return Err(KernelError::Device(format!(
            "decode attention: qkv {:?} as {heads}/{} heads over a cache of {:?} / {:?}, slot {}, RoPE row {} of {positions}×{rot}",
            qkv.dims(),
            a.kv_heads,
            keys.dims(),
            values.dims(),
            a.pos,
            a.rope_pos
        )));
    }
    let rep = heads / kvh;
    let fused = hd <= 256 && keys.dtype() == DType::F32 && values.dtype() == DType::F32 && wgpu_device(&keys.device()).is_some();
    let unique = |t: Tensor<3>| -> std::result::Result<CubeTensor, Tensor<3>> {
        match t.clone().try_into_primitive::<CubeBackend>() {
            Ok(c) if c.is_contiguous() => {
                // `t` still holds a reference: unique means exactly that one plus ours.
                drop(t);
                if c.can_mut() { Ok(c) } else { Err(Tensor::from_primitive::<CubeBackend>(c)) }
            }
            _ => Err(t),
        }
    };
    if fused {
        if let (Some(q), Some(cc), Some(sc)) = (on_wgpu(&qkv), on_wgpu(a.cos), on_wgpu(a.sin)) {
            match (unique(keys), unique(values)) {
                (Ok(kc), Ok(vc)) => {
                    let y = empty_f32(&q, [1, heads * hd]);
                    let params = DecodeAttentionParams {
                        heads: heads as u32,
                        rep: rep as u32,
                        hd: hd as u32,
                        rot: rot as u32,
                        pos: a.pos as u32,
                        rope_pos: a.rope_pos as u32,
                        capacity: capacity as u32,
                        scale: a.scale as f32,
                    };
                    crate::launch::launch_io(
                        Kernel::Fused { op: FusedOp::DecodeAttention, wg: FUSED_WG },
                        &q.client,
                        groups(heads, &q)?,
                        &[(&q, Io::Read), (&y, Io::Write), (&cc, Io::Read), (&sc, Io::Read), (&kc, Io::ReadWrite), (&vc, Io::ReadWrite)],
                        info_words(&params),
                    );
                    return Ok((
                        Tensor::from_primitive::<CubeBackend>(y),
                        Tensor::from_primitive::<CubeBackend>(kc),
                        Tensor::from_primitive::<CubeBackend>(vc),
                    ));
                }
                (k, v) => {
                    let back = |r: std::result::Result<CubeTensor, Tensor<3>>| r.map_or_else(|t| t, Tensor::from_primitive::<CubeBackend>);
                    return decode_attention_ops(qkv, back(k), back(v), a);
                }
            }
        }
    }
    decode_attention_ops(qkv, keys, values, a)
}

/// [`decode_attention`] as burn ops (and the fused kernels for RoPE and the softmax).
fn decode_attention_ops(qkv: Tensor<2>, keys: Tensor<3>, values: Tensor<3>, a: &DecodeAttention<'_>) -> Result<(Tensor<2>, Tensor<3>, Tensor<3>)> {
    let [kvh, _, hd] = keys.dims();
    let heads = a.heads;
    let rep = heads / kvh;
    let q = rope(qkv.clone().slice_dim(1, 0..heads * hd), heads, a.cos, a.sin, a.rope_pos)?; // [h, 1, hd]
    let k = rope(qkv.clone().slice_dim(1, heads * hd..(heads + kvh) * hd), kvh, a.cos, a.sin, a.rope_pos)?;
    let v: Tensor<3> = qkv.slice_dim(1, (heads + kvh) * hd..(heads + 2 * kvh) * hd).reshape([kvh, 1, hd]);
    let slot = a.pos..a.pos + 1;
    let keys = keys.slice_assign([0..kvh, slot.clone(), 0..hd], k);
    let values = values.slice_assign([0..kvh, slot, 0..hd], v);
    let total = a.pos + 1;
    let kt = keys.clone().slice([0..kvh, 0..total, 0..hd]);
    let vt = values.clone().slice([0..kvh, 0..total, 0..hd]);
    let scores = q.reshape([kvh, rep, hd]).matmul(kt.swap_dims(1, 2));
    let w = attention_softmax(scores, a.scale, Mask::None)?;
    Ok((w.matmul(vt).reshape([1, heads * hd]), keys, values))
}
