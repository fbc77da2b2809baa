//! The fused kernels (`shaders/{rms_norm,layer_norm,rope,softmax,swiglu,attention_decode,attention_flash,sample}.wgsl`) on wgpu (lavapipe
//! without a GPU) against the CPU reference: the same functions on burn's CPU backend, where
//! they run the plain burn ops the model used before the kernels existed.
//!
//! Tolerance: `|gpu − cpu| ≤ 2e-6 + 2e-5·|cpu|` per element (f32 throughout; the kernels sum in
//! a different order and use the GPU's exp/sqrt, which WGSL allows a few ulp of error). A wrong
//! index or a missed mask entry costs O(1).

mod common;

use burn::tensor::{Device, Int, Tensor, TensorData};
use common::gpu;
use webvlm_kernels::ops::{DecodeAttention, KeyRange, Mask, attention_softmax, decode_attention, flash_attention, flash_attention_joined, layer_norm, rms_norm, rope, swiglu};
use webvlm_kernels::KernelError;
use webvlm_kernels::reference::Lcg;

#[allow(deprecated)]
fn cpu() -> Device {
    Device::ndarray()
}

fn t<const D: usize>(data: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data.to_vec(), shape), device)
}

fn values_of<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    values(x)
}

fn values<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.try_into_data().expect("readback").try_into_vec::<f32>().expect("f32")
}

fn close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 2e-6 + 2e-5 * w.abs(), "{what}: [{i}] = {g}, want {w}");
    }
}

#[test]
fn rms_norm_matches_the_cpu_reference() {
    let mut rng = Lcg::new(1);
    for (rows, cols) in [(1, 1), (1, 7), (3, 576), (70, 100), (2, 1000)] {
        let x = rng.normals(rows * cols);
        let w: Vec<f32> = rng.normals(cols).iter().map(|v| 1.0 + 0.3 * v).collect();
        let run = |d: &Device| values(rms_norm(t(&x, [rows, cols], d), &t(&w, [cols], d), 1e-5).unwrap());
        close(&run(&gpu().device), &run(&cpu()), &format!("rms_norm {rows}x{cols}"));
    }
}

/// Rows of a few values to past several workgroup strides, means away from zero (five times
/// the spread: a one-pass E[x²] − E[x]² would lose digits there; far larger offsets lose them
/// in any f32 sum, the CPU's too).
#[test]
fn layer_norm_matches_the_cpu_reference() {
    let mut rng = Lcg::new(13);
    for (rows, cols, offset) in [(1, 1, 0.0), (3, 7, 1.0), (5, 64, -3.0), (4, 200, 10.0), (2, 1152, 0.5)] {
        let x: Vec<f32> = rng.normals(rows * cols).iter().map(|v| offset + 2.0 * v).collect();
        let w: Vec<f32> = rng.normals(cols).iter().map(|v| 1.0 + 0.3 * v).collect();
        let b = rng.normals(cols);
        let run = |d: &Device| values(layer_norm(t(&x, [rows, cols], d), &t(&w, [cols], d), &t(&b, [cols], d), 1e-6).unwrap());
        close(&run(&gpu().device), &run(&cpu()), &format!("layer norm {rows}x{cols} around {offset}"));
    }
    let d = gpu().device.clone();
    assert!(layer_norm(Tensor::<2>::zeros([2, 4], &d), &Tensor::<1>::zeros([3], &d), &Tensor::<1>::zeros([4], &d), 1e-5).is_err());
}

#[test]
fn rope_matches_the_cpu_reference_and_transposes_heads() {
    let mut rng = Lcg::new(2);
    let positions = 24;
    // rot < hd is partial rotary (Phi): the tail of each head passes through unchanged.
    for (n, heads, hd, rot, start) in [(1, 1, 2, 2, 0), (1, 9, 64, 64, 17), (5, 3, 64, 64, 7), (4, 2, 8, 8, 20), (3, 4, 16, 8, 5), (2, 2, 80, 32, 1)] {
        let x = rng.normals(n * heads * hd);
        let angles: Vec<f32> = (0..positions * rot).map(|i| (i / rot) as f32 * 0.37 + (i % (rot / 2)) as f32 * 0.11).collect();
        let cos: Vec<f32> = angles.iter().map(|a| a.cos()).collect();
        let sin: Vec<f32> = angles.iter().map(|a| a.sin()).collect();
        let run = |d: &Device| {
            let y = rope(t(&x, [n, heads * hd], d), heads, &t(&cos, [positions, rot], d), &t(&sin, [positions, rot], d), start).unwrap();
            assert_eq!(y.dims(), [heads, n, hd]);
            values(y)
        };
        let (got, want) = (run(&gpu().device), run(&cpu()));
        close(&got, &want, &format!("rope n={n} heads={heads} hd={hd} rot={rot} start={start}"));
        for (h, p, j) in (0..heads).flat_map(|h| (0..n).flat_map(move |p| (rot..hd).map(move |j| (h, p, j)))) {
            assert_eq!(got[(h * n + p) * hd + j], x[p * heads * hd + h * hd + j], "rope tail h={h} p={p} j={j}");
        }
    }
}

#[test]
fn rope_refuses_positions_past_the_table() {
    let d = &gpu().device;
    let table = Tensor::<2>::zeros([4, 8], d);
    assert!(rope(Tensor::zeros([2, 16], d), 2, &table, &table, 3).is_err());
    assert!(rope(Tensor::zeros([2, 15], d), 2, &table, &table, 0).is_err());
    let wide = Tensor::<2>::zeros([4, 10], d);
    assert!(rope(Tensor::zeros([2, 16], d), 2, &wide, &wide, 0).is_err(), "a table wider than the head");
}

#[test]
fn attention_softmax_matches_the_cpu_reference_with_and_without_the_causal_mask() {
    let mut rng = Lcg::new(3);
    // (batch, rep, n, start): prefill blocks of stacked heads, a decode step, a long row.
    for (b, rep, n, start) in [(1, 1, 1, 0), (2, 3, 4, 5), (3, 3, 1, 40), (1, 2, 7, 0), (1, 1, 2, 1100)] {
        let (rows, keys) = (rep * n, start + n);
        let x: Vec<f32> = rng.normals(b * rows * keys).iter().map(|v| 4.0 * v).collect();
        for mask in [Mask::None, Mask::Causal { n, start }] {
            let run = |d: &Device| values(attention_softmax(t(&x, [b, rows, keys], d), 0.125, mask).unwrap());
            let got = run(&gpu().device);
            close(&got, &run(&cpu()), &format!("softmax {b}x{rows}x{keys} {mask:?}"));
            if let Mask::Causal { .. } = mask {
                for r in 0..b * rows {
                    let visible = start + (r % rows) % n + 1;
                    assert!(got[r * keys + visible..(r + 1) * keys].iter().all(|&v| v == 0.0), "masked keys get exactly 0");
                    let sum: f32 = got[r * keys..(r + 1) * keys].iter().sum();
                    assert!((sum - 1.0).abs() < 1e-5, "row {r} sums to {sum}");
                }
            }
        }
    }
}

#[test]
fn swiglu_matches_the_cpu_reference() {
    let mut rng = Lcg::new(4);
    for (rows, cols) in [(1, 1), (1, 1536), (3, 7), (65, 33)] {
        let g: Vec<f32> = rng.normals(rows * cols).iter().map(|v| 6.0 * v).collect();
        let u = rng.normals(rows * cols);
        let run = |d: &Device| values(swiglu(t(&g, [rows, cols], d), t(&u, [rows, cols], d)).unwrap());
        close(&run(&gpu().device), &run(&cpu()), &format!("swiglu {rows}x{cols}"));
    }
}

#[test]
fn decode_attention_matches_the_cpu_reference() {
    let mut rng = Lcg::new(5);
    let positions = 1200;
    // (heads, kv_heads, hd, rot, capacity, pos, q gain): the first slot; GQA groups; several
    // tiles of 64 positions and a partial last one; partial rotary (Phi); head_dim above the
    // workgroup (80, 256); large scores, where the online softmax must rescale what it summed.
    for (heads, kvh, hd, rot, capacity, pos, gain) in [
        (1, 1, 2, 2, 1, 0, 1.0),
        (4, 2, 64, 64, 10, 6, 1.0),
        (6, 2, 64, 64, 300, 129, 1.0),
        (9, 3, 64, 64, 70, 63, 1.0),
        (2, 1, 80, 32, 66, 64, 3.0),
        (3, 3, 256, 256, 5, 2, 1.0),
        (15, 5, 64, 64, 1100, 1024, 6.0),
    ] {
        let qkv: Vec<f32> = rng.normals((heads + 2 * kvh) * hd).iter().map(|v| gain * v).collect();
        let k = rng.normals(kvh * capacity * hd);
        let v = rng.normals(kvh * capacity * hd);
        let angles: Vec<f32> = (0..positions * rot).map(|i| (i / rot) as f32 * 0.37 + (i % (rot / 2)) as f32 * 0.11).collect();
        let cos: Vec<f32> = angles.iter().map(|a| a.cos()).collect();
        let sin: Vec<f32> = angles.iter().map(|a| a.sin()).collect();
        let rope_pos = pos + 17;
        let run = |d: &Device| {
            let (cos, sin) = (t(&cos, [positions, rot], d), t(&sin, [positions, rot], d));
            let a = DecodeAttention { heads, kv_heads: kvh, cos: &cos, sin: &sin, rope_pos, pos, scale: (hd as f64).powf(-0.5) };
            let (y, keys, values) = decode_attention(t(&qkv, [1, qkv.len()], d), t(&k, [kvh, capacity, hd], d), t(&v, [kvh, capacity, hd], d), &a).unwrap();
            assert_eq!(y.dims(), [1, heads * hd]);
            (values_of(y), values_of(keys), values_of(values))
        };
        let what = format!("decode attention {heads}/{kvh} heads, hd {hd}, rot {rot}, slot {pos} of {capacity}");
        let (gpu_y, gpu_k, gpu_v) = run(&gpu().device);
        let (cpu_y, cpu_k, cpu_v) = run(&cpu());
        close(&gpu_y, &cpu_y, &what);
        close(&gpu_k, &cpu_k, &format!("{what}: keys"));
        assert_eq!(gpu_v, cpu_v, "{what}: values");
        // Only the new slot changed.
        for (i, (&a, &b)) in gpu_k.iter().zip(&k).enumerate() {
            if (i / hd) % capacity != pos {
                assert_eq!(a, b, "{what}: key {i} changed");
            }
        }
    }
}

#[test]
fn decode_attention_refuses_bad_shapes() {
    let d = gpu().device.clone();
    let z2 = |shape: [usize; 2]| Tensor::<2>::zeros(shape, &d);
    let z = |shape: [usize; 3]| Tensor::<3>::zeros(shape, &d);
    let (cos, sin) = (z2([8, 8]), z2([8, 8]));
    let a = |heads, kv_heads, pos, rope_pos| DecodeAttention { heads, kv_heads, cos: &cos, sin: &sin, rope_pos, pos, scale: 1.0 };
    // Past the cache, past the RoPE table, heads not a multiple of the KV heads, a qkv of the wrong width.
    assert!(decode_attention(z2([1, 32]), z([1, 4, 8]), z([1, 4, 8]), &a(2, 1, 4, 0)).is_err());
    assert!(decode_attention(z2([1, 32]), z([1, 4, 8]), z([1, 4, 8]), &a(2, 1, 1, 8)).is_err());
    assert!(decode_attention(z2([1, 56]), z([2, 4, 8]), z([2, 4, 8]), &a(3, 2, 1, 0)).is_err());
    assert!(decode_attention(z2([1, 40]), z([1, 4, 8]), z([1, 4, 8]), &a(2, 1, 1, 0)).is_err());
    assert!(decode_attention(z2([1, 32]), z([1, 4, 8]), z([1, 4, 8]), &a(2, 1, 1, 0)).is_ok());
}

/// How a test hands q, k or v to `flash_attention`.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// `[heads, rows, hd]` contiguous (RoPE's output, a KV cache).
    HeadsFirst,
    /// A projection's `[rows, heads·hd]` output viewed as heads (strided, no copy).
    Rows,
}

fn heads_tensor(data: &[f32], [heads, rows, hd]: [usize; 3], layout: Layout, d: &Device) -> Tensor<3> {
    match layout {
        Layout::HeadsFirst => t(data, [heads, rows, hd], d),
        Layout::Rows => {
            // `data` is [heads, rows, hd]; lay it out as [rows, heads·hd], then view it back.
            let mut r = vec![0.0; data.len()];
            for (i, &x) in data.iter().enumerate() {
                let (h, row, e) = (i / (rows * hd), i / hd % rows, i % hd);
                r[row * heads * hd + h * hd + e] = x;
            }
            t(&r, [rows, heads * hd], d).reshape([rows, heads, hd]).swap_dims(0, 1)
        }
    }
}

/// `attention_flash.wgsl` against burn's matmuls and softmax on the CPU: every key, causal
/// after cached positions with room left in the cache, windows (one of them empty), grouped
/// heads, head sizes from 6 (not whole vec4s) to 256, rows past one workgroup and a partial
/// last one, 1 100 keys with large scores (the online softmax rescales what it summed), q/k/v
/// as strided views of projections. Tolerance: the file's, its absolute part times the gain of
/// the queries.
#[test]
fn flash_attention_matches_the_cpu_reference() {
    let mut rng = Lcg::new(11);
    let windows = [0..16, 16..16, 16..80, 80..100];
    // (heads, kv_heads, rows, hd, cache room, keys, layout, gain)
    let cases: [(usize, usize, usize, usize, usize, KeyRange<'_>, Layout, f32); 8] = [
        (3, 3, 70, 64, 70, KeyRange::All, Layout::Rows, 1.0),
        (6, 2, 37, 64, 80, KeyRange::Causal { start: 20 }, Layout::HeadsFirst, 1.0),
        (4, 1, 130, 80, 130, KeyRange::Causal { start: 0 }, Layout::HeadsFirst, 3.0),
        (2, 1, 5, 6, 7, KeyRange::All, Layout::HeadsFirst, 1.0),
        (2, 2, 9, 256, 16, KeyRange::Causal { start: 3 }, Layout::Rows, 1.0),
        (2, 2, 100, 80, 100, KeyRange::Segments(&windows), Layout::Rows, 2.0),
        (2, 2, 100, 72, 100, KeyRange::Segments(&[0..100]), Layout::HeadsFirst, 1.0),
        (2, 1, 1100, 64, 1100, KeyRange::Causal { start: 0 }, Layout::HeadsFirst, 6.0),
    ];
    for (heads, kvh, n, hd, room, keys, layout, gain) in cases {
        let total = match keys {
            KeyRange::Causal { start } => start + n,
            _ => n,
        };
        let q: Vec<f32> = rng.normals(heads * n * hd).iter().map(|v| gain * v).collect();
        let k = rng.normals(kvh * room * hd);
        let v = rng.normals(kvh * room * hd);
        let kv_layout = if room == total { layout } else { Layout::HeadsFirst };
        let run = |d: &Device| {
            let y = flash_attention(
                heads_tensor(&q, [heads, n, hd], layout, d),
                heads_tensor(&k, [kvh, room, hd], kv_layout, d),
                heads_tensor(&v, [kvh, room, hd], kv_layout, d),
                total,
                keys,
                (hd as f64).powf(-0.5),
            )
            .unwrap();
            assert_eq!(y.dims(), [n, heads * hd]);
            values(y)
        };
        let what = format!("flash attention {heads}/{kvh} heads, {n} rows, hd {hd}, {total} of {room} keys, {keys:?}, {layout:?}");
        // Scores grow with the gain, and an ulp of a score is a relative error of every
        // weight exp() makes from it: the absolute bound grows with the gain too.
        let (got, want) = (run(&gpu().device), run(&cpu()));
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 2e-6 * gain + 2e-5 * w.abs(), "{what}: [{i}] = {g}, want {w}");
        }
    }
}

/// A joined q/k/v projection's rows `[n, (heads + 2·kv_heads)·hd]` read in place equal q, k and
/// v sliced apart, on the GPU and on the CPU.
#[test]
fn flash_attention_reads_a_joined_projection_in_place() {
    let mut rng = Lcg::new(12);
    let windows = [0..40, 40..41, 41..90];
    for (heads, kvh, n, hd, keys) in [(3, 3, 70, 64, KeyRange::All), (4, 2, 90, 20, KeyRange::Segments(&windows)), (2, 1, 5, 6, KeyRange::Causal { start: 0 })] {
        let width = (heads + 2 * kvh) * hd;
        let qkv = rng.normals(n * width);
        let scale = (hd as f64).powf(-0.5);
        let joined = |d: &Device| values(flash_attention_joined(t(&qkv, [n, width], d), heads, kvh, keys, scale).unwrap());
        let apart = |d: &Device| {
            let x = t(&qkv, [n, width], d);
            let part = |from: usize, count: usize| -> Tensor<3> { x.clone().slice_dim(1, from * hd..(from + count) * hd).reshape([n, count, hd]).swap_dims(0, 1) };
            values(flash_attention(part(0, heads), part(heads, kvh), part(heads + kvh, kvh), n, keys, scale).unwrap())
        };
        let what = format!("joined q/k/v {heads}/{kvh} heads, {n} rows, hd {hd}, {keys:?}");
        let gpu_joined = joined(&gpu().device);
        assert_eq!(gpu_joined, apart(&gpu().device), "{what}: in place vs sliced on the GPU");
        close(&gpu_joined, &apart(&cpu()), &what);
        assert_eq!(joined(&cpu()), apart(&cpu()), "{what}: on the CPU");
    }
    let d = gpu().device.clone();
    assert!(flash_attention_joined(Tensor::<2>::zeros([4, 50], &d), 2, 1, KeyRange::All, 1.0).is_err());
    assert!(flash_attention_joined(Tensor::<2>::zeros([4, 48], &d), 3, 2, KeyRange::All, 1.0).is_err());
}

#[test]
fn flash_attention_refuses_bad_shapes() {
    let d = gpu().device.clone();
    let z = |shape: [usize; 3]| Tensor::<3>::zeros(shape, &d);
    let run = |q, k, total, keys| flash_attention(z(q), z(k), z(k), total, keys, 1.0);
    // Heads not a multiple of the KV heads, head sizes that differ, more keys than the cache
    // holds, a causal row past the keys, windows that leave a gap or stop short.
    assert!(run([3, 4, 8], [2, 4, 8], 4, KeyRange::All).is_err());
    assert!(run([2, 4, 8], [1, 4, 6], 4, KeyRange::All).is_err());
    assert!(run([2, 4, 8], [1, 4, 8], 5, KeyRange::All).is_err());
    assert!(run([2, 4, 8], [1, 6, 8], 6, KeyRange::Causal { start: 3 }).is_err());
    assert!(run([2, 4, 8], [2, 4, 8], 4, KeyRange::Segments(&[0..1, 2..4])).is_err());
    assert!(run([2, 4, 8], [2, 4, 8], 4, KeyRange::Segments(&[0..3])).is_err());
    assert!(run([2, 4, 8], [1, 6, 8], 6, KeyRange::Causal { start: 2 }).is_ok());
    assert!(run([2, 4, 8], [2, 4, 8], 4, KeyRange::Segments(&[0..1, 1..4])).is_ok());
    // Heads of 260 values take the materialised path, whose 1 × 6 000² scores (144 MB) pass
    // lavapipe's 128 MiB binding: a named refusal before any launch, not a failure in burn.
    let err = run([1, 6000, 260], [1, 6000, 260], 6000, KeyRange::All).unwrap_err();
    assert!(matches!(err, KernelError::BindingTooLarge { what: "attention scores", bytes: 144_000_000, .. }), "{err}");
}

/// The ids a mask tensor holds, and the id tensor's value.
fn ints(t: Tensor<1, Int>) -> Vec<u32> {
    t.try_into_data().expect("readback").iter::<i64>().map(|v| v as u32).collect()
}

/// `sample.wgsl` against `sample_ref`, the host sampler, for the same row, seen ids, settings
/// and uniform: the same id, except where the reference's decision lay within 1e-5 of the mass
/// from a boundary (f32 sums on the device, f64 on the host), and those must be rare. Rows: random at three temperatures of spread up to Qwen's vocabulary, heavy ties
/// (top-k and top-p cut through a run of equal logits in index order), −∞ entries. A row that is
/// not `finite_row` (a NaN, a +∞, only −∞) gives `NON_FINITE` and leaves the mask as it was.
/// The mask comes back with the pick's bit set exactly when a penalty applies.
#[test]
fn sample_picks_what_the_reference_picks() {
    use webvlm_kernels::ops::{sample, seen_mask};
    use webvlm_kernels::sample::{NON_FINITE, SampleSettings, finite_row, sample_ref, uniform};
    let dev = &gpu().device;
    let mut rng = Lcg::new(31);
    let mut rows: Vec<Vec<f32>> = Vec::new();
    for (n, scale) in [(7, 1.0), (1000, 2.0), (1000, 0.3), (49_152, 3.0), (151_936, 4.0)] {
        rows.push(rng.normals(n).iter().map(|v| v * scale).collect());
    }
    rows.push((0..600).map(|_| (rng.next_u32() % 3) as f32).collect());
    let mut odd = rng.normals(300);
    for i in (0..300).step_by(7) {
        odd[i] = f32::NEG_INFINITY;
    }
    rows.push(odd.clone());
    let mut nan = odd.clone();
    nan[5] = f32::NAN;
    nan[250] = f32::NAN;
    rows.push(nan);
    let mut inf = odd;
    inf[77] = f32::INFINITY;
    rows.push(inf);
    rows.push(vec![f32::NEG_INFINITY; 70]);
    let s = |temperature, top_k, top_p, repetition_penalty| SampleSettings { temperature, top_k, top_p, repetition_penalty };
    let settings = [
        s(0.0, 0, 1.0, 1.3),
        s(1.0, 0, 1.0, 1.0),
        s(0.7, 40, 1.0, 1.0),
        s(0.8, 0, 0.9, 1.0),
        s(1.3, 50, 0.77, 1.2),
        s(1.0, 3, 1.0, 0.8),
        s(2.0, 500, 0.5, 1.0),
    ];
    let (mut checked, mut near) = (0, 0);
    for (r, row) in rows.iter().enumerate() {
        let n = row.len();
        let seen: Vec<u32> = (0..n as u32).filter(|_| rng.next_u32() % 5 == 0).collect();
        for (c, set) in settings.iter().enumerate() {
            let seed = 1000 * r as u64 + c as u64;
            for draw in [0u64, 1, 2, 3, 1 << 33] {
                let want = sample_ref(row, &seen, set, uniform(seed, draw));
                let logits = Tensor::<2>::from_data(TensorData::new(row.clone(), [1, n]), dev);
                let (id, mask) = sample(logits, seen_mask(&seen, n, dev), set, seed, draw).unwrap();
                let got = ints(id)[0];
                let mut expect_mask = seen.clone();
                if !finite_row(row) {
                    assert_eq!(got, NON_FINITE, "row {r} is not finite: no pick");
                } else if set.repetition_penalty != 1.0 {
                    expect_mask.push(got);
                }
                let words = ints(mask);
                let held: Vec<u32> = (0..n as u32).filter(|&i| words[i as usize / 32] >> (i % 32) & 1 == 1).collect();
                expect_mask.sort_unstable();
                expect_mask.dedup();
                assert_eq!(held, expect_mask, "mask after row {r} settings {set:?}");
                checked += 1;
                if got != want.id && finite_row(row) {
                    assert!(want.margin < 1e-5, "row {r} ({n}), {set:?}, seed {seed} draw {draw}: got {got}, want {} (margin {})", want.id, want.margin);
                    near += 1;
                }
            }
        }
    }
    assert!(near * 50 <= checked, "{near} of {checked} draws differ (each within rounding of a boundary)");
}

/// The sampler refuses what it cannot mean, and penalises through a mask shared with another
/// tensor without touching that tensor.
#[test]
fn sample_refuses_bad_input_and_keeps_a_shared_mask() {
    use webvlm_kernels::ops::{sample, seen_mask};
    use webvlm_kernels::sample::SampleSettings;
    let dev = &gpu().device;
    let ok = SampleSettings { temperature: 0.0, top_k: 0, top_p: 1.0, repetition_penalty: 2.0 };
    let row = |n: usize| Tensor::<2>::from_data(TensorData::new((0..n).map(|i| i as f32).collect::<Vec<f32>>(), [1, n]), dev);
    assert!(sample(row(40), seen_mask(&[], 20, dev), &ok, 0, 0).is_err(), "mask of the wrong length");
    assert!(sample(row(40), seen_mask(&[], 40, dev), &SampleSettings { top_p: 0.0, ..ok }, 0, 0).is_err());
    assert!(sample(row(40), seen_mask(&[], 40, dev), &SampleSettings { temperature: f32::NAN, ..ok }, 0, 0).is_err());
    let two = Tensor::<2>::from_data(TensorData::new(vec![0f32; 8], [2, 4]), dev);
    assert!(sample(two, seen_mask(&[], 4, dev), &ok, 0, 0).is_err(), "two rows");
    // 39 is seen (39 / 2 = 19.5 < 38), so 38 wins; the caller's copy of the mask is unchanged.
    let mask = seen_mask(&[39], 40, dev);
    let (id, after) = sample(row(40), mask.clone(), &ok, 0, 0).unwrap();
    assert_eq!(ints(id), vec![38]);
    assert_eq!(ints(mask), vec![0, 1 << 7]);
    assert_eq!(ints(after), vec![0, (1 << 7) | (1 << 6)]);
}

/// A started read is on the queue before `start_read_u32` returns: once the device has
/// finished what was submitted, the read is complete without being polled in between. (A read
/// that began only when awaited would still be pending then, and work recorded after it
/// could not overlap the wait.)
#[test]
fn a_started_read_is_submitted_at_once() {
    use std::task::{Context, Poll, Waker};
    let dev = &gpu().device;
    let mut rng = Lcg::new(5);
    let row = rng.normals(49_152);
    let want = webvlm_kernels::sample::sample_ref(&row, &[], &webvlm_kernels::sample::SampleSettings { temperature: 0.0, top_k: 0, top_p: 1.0, repetition_penalty: 1.0 }, 0.0).id;
    let id = webvlm_kernels::ops::argmax(Tensor::<2>::from_data(TensorData::new(row, [1, 49_152]), dev)).unwrap();
    let mut read = webvlm_kernels::gpu::start_read_u32(&id).expect("a wgpu i32 tensor");
    pollster::block_on(webvlm_kernels::gpu::wait(dev)).unwrap();
    match read.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(ids) => assert_eq!(ids.unwrap(), vec![want]),
        Poll::Pending => panic!("the read was not submitted when it started"),
    }
}

/// `gather.wgsl` against the tables' CPU dequantisation, every format, on tables cut into row
/// chunks (a 512-byte binding cap) and whole: q8, f16 and bf16 rows are exact; q4 computes
/// `d·q + m`, which a GPU may fuse into one rounding, so it is allowed one f32 ulp of its
/// value. An id past the table gives zeros on wgpu.
#[test]
fn gather_matches_the_cpu_dequantisation() {
    use webvlm_kernels::{DeviceQuantMatrix, DeviceTable, KernelOptions, QuantMatrix, QuantScheme};
    let (n, k) = (45, 71);
    let mut rng = Lcg::new(29);
    let table = rng.normals(n * k);
    let bf16: Vec<f32> = table.iter().map(|v| half::bf16::from_f32(*v).to_f32()).collect();
    let ids = [0u32, 44, 7, 7, 20, 31, 1];
    let gpu_device = gpu().device.clone();
    let ids_on = |d: &Device, with_past: bool| {
        let mut v: Vec<i32> = ids.iter().map(|&i| i as i32).collect();
        if with_past {
            v.push(n as i32 + 3);
        }
        let len = v.len();
        Tensor::<1, Int>::from_data(TensorData::new(v, [len]), d)
    };
    for cap in [None, Some(512u64)] {
        let options = KernelOptions { max_binding_bytes: cap, ..KernelOptions::default() };
        let mut tables: Vec<(String, Vec<f32>, DeviceTable, DeviceTable)> = Vec::new();
        for scheme in [QuantScheme::Q8, QuantScheme::Q4, QuantScheme::F16] {
            let m = QuantMatrix::quantize(&table, n, k, scheme).unwrap();
            let on_gpu = DeviceTable::from_matrix(&DeviceQuantMatrix::upload_with(&m, &gpu_device, options).unwrap());
            let on_cpu = DeviceTable::upload(&m, &cpu()).unwrap();
            tables.push((scheme.name().into(), m.dequantize(), on_gpu, on_cpu));
        }
        let on_gpu = DeviceTable::bf16_with(&bf16, n, k, &gpu_device, options).unwrap();
        tables.push(("bf16".into(), bf16.clone(), on_gpu, DeviceTable::bf16(&bf16, n, k, &cpu()).unwrap()));
        for (name, want_all, on_gpu, on_cpu) in tables {
            let what = format!("gather {name} cap {cap:?}");
            let want: Vec<f32> = ids.iter().flat_map(|&i| want_all[i as usize * k..(i as usize + 1) * k].to_vec()).collect();
            let got = values(on_gpu.gather(ids_on(&gpu_device, true)).unwrap());
            let ulp = if name == "q4" { 1.2e-7 } else { 0.0 };
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= ulp * w.abs(), "{what}: [{i}] = {g}, want {w}");
            }
            assert!(got[want.len()..].iter().all(|&v| v == 0.0) && got.len() == want.len() + k, "{what}: the id past the table");
            assert_eq!(values(on_cpu.gather(ids_on(&cpu(), false)).unwrap()), want, "{what} on the CPU backend");
        }
    }
}
