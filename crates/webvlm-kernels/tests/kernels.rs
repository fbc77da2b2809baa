//! The kernels on wgpu (lavapipe on machines without a GPU) against the CPU reference:
//! dequantise, then multiply in f64 (`reference::matmul_ref`).
//!
//! Tolerances, per output, relative to `S = Σ_k |x_k|·|w_nk|` (the scale a dot product's
//! rounding error grows with; the answer itself may be near zero by cancellation):
//! * f32 compute: `|y − ref| ≤ 1e-5·S + 1e-6`. f32 sums of ≤ 2000 terms stay around 1e-6·S;
//!   a single wrong or missing weight costs about S/K ≥ 5e-4·S at these sizes.
//! * f16 compute: `|y − ref| ≤ 4e-3·S + 1e-3`. Weights and activations are rounded to f16
//!   (2^-11 each) and summed in f16 four to sixteen at a time; the indexing these variants
//!   share with f32 is pinned down by the f32 tolerance above.

mod common;

use common::{gpu, read, tensor};
use webvlm_kernels::reference::{Lcg, abs_matmul_ref, matmul_ref};
use webvlm_kernels::{Act, DeviceQuantMatrix, KernelError, KernelOptions, QuantMatrix, QuantScheme, Reduction, Tile, quant_matmul, quant_matmul_epilogue, quant_matmul_with};

const SCHEMES: [QuantScheme; 3] = [QuantScheme::Q8, QuantScheme::Q4, QuantScheme::F16];

/// (m, n, k): K and N off multiples of 32, of 4 and of the tiles; odd M; M = 1 and M > 1.
const SHAPES: [(usize, usize, usize); 12] = [
    (1, 1, 1),
    (1, 37, 45),
    (1, 130, 100),
    (1, 577, 64),
    (1, 300, 33),
    (1, 64, 1539),
    (2, 1, 3),
    (3, 37, 45),
    (7, 65, 100),
    (17, 33, 97),
    (33, 200, 257),
    (64, 130, 96),
];

struct Case {
    x: Vec<f32>,
    qm: QuantMatrix,
    m: usize,
    want: Vec<f32>,
    scale: Vec<f32>,
}

fn case(m: usize, n: usize, k: usize, scheme: QuantScheme, seed: u64) -> Case {
    let mut rng = Lcg::new(seed);
    let qm = QuantMatrix::quantize(&rng.normals(n * k), n, k, scheme).unwrap();
    let x = rng.normals(m * k);
    let want = matmul_ref(&x, m, &qm).unwrap();
    let scale = abs_matmul_ref(&x, m, &qm).unwrap();
    Case { x, qm, m, want, scale }
}

fn check(got: &[f32], c: &Case, rel: f32, abs: f32, what: &str) {
    assert_eq!(got.len(), c.want.len(), "{what}: output length");
    let mut worst = 0f32;
    for (i, ((&g, &w), &s)) in got.iter().zip(&c.want).zip(&c.scale).enumerate() {
        let err = (g - w).abs();
        assert!(err <= rel * s + abs, "{what}: y[{}, {}] = {g}, want {w} (err {err:e}, scale {s})", i / c.qm.n(), i % c.qm.n());
        worst = worst.max(err / (s + 1e-30));
    }
    eprintln!("{what}: worst relative error {worst:.2e}");
}

fn run(c: &Case, w: &DeviceQuantMatrix, options: &KernelOptions) -> Vec<f32> {
    let device = &gpu().device;
    read(quant_matmul_with(tensor(c.x.clone(), c.m, c.qm.k(), device), w, options).unwrap())
}

#[test]
fn default_variants_match_the_reference() {
    let device = &gpu().device;
    for scheme in SCHEMES {
        for (i, &(m, n, k)) in SHAPES.iter().enumerate() {
            let c = case(m, n, k, scheme, i as u64);
            let w = DeviceQuantMatrix::upload(&c.qm, device).unwrap();
            let got = read(quant_matmul(tensor(c.x.clone(), m, k, device), &w).unwrap());
            check(&got, &c, 1e-5, 1e-6, &format!("{scheme:?} {m}x{n}x{k}"));
        }
    }
}

#[test]
fn every_matvec_reduction_matches() {
    let mut reductions = vec![
        Reduction::Workgroup { wg: 64, tpr: 1, rpi: 4 },
        Reduction::Workgroup { wg: 64, tpr: 1, rpi: 8 },
        Reduction::Workgroup { wg: 32, tpr: 1, rpi: 12 },
        Reduction::Workgroup { wg: 64, tpr: 4, rpi: 4 },
        Reduction::Workgroup { wg: 128, tpr: 16, rpi: 4 },
        Reduction::Workgroup { wg: 128, tpr: 32, rpi: 8 },
        Reduction::Workgroup { wg: 32, tpr: 32, rpi: 4 },
    ];
    if gpu().subgroups {
        reductions.push(Reduction::Subgroup { wg: 128, rpw: 16, rpi: 4 });
        reductions.push(Reduction::Subgroup { wg: 128, rpw: 32, rpi: 8 });
        reductions.push(Reduction::Subgroup { wg: 32, rpw: 4, rpi: 4 });
        reductions.push(Reduction::Subgroup { wg: 32, rpw: 36, rpi: 12 });
    } else {
        eprintln!("adapter lacks subgroups: subgroup matvec only validated by naga");
    }
    for scheme in SCHEMES {
        for (i, &(n, k)) in [(37, 45), (300, 33), (130, 100), (64, 1539)].iter().enumerate() {
            let c = case(1, n, k, scheme, 100 + i as u64);
            let w = DeviceQuantMatrix::upload(&c.qm, &gpu().device).unwrap();
            for r in &reductions {
                let got = run(&c, &w, &KernelOptions { matvec: Some(*r), ..Default::default() });
                check(&got, &c, 1e-5, 1e-6, &format!("{scheme:?} 1x{n}x{k} {r:?}"));
            }
        }
    }
}

#[test]
fn every_matmul_tile_matches() {
    let tiles = [Tile { tm: 32, tn: 32, rm: 4, rn: 4 }, Tile { tm: 16, tn: 64, rm: 2, rn: 8 }, Tile { tm: 8, tn: 8, rm: 1, rn: 1 }, Tile { tm: 64, tn: 64, rm: 8, rn: 8 }];
    for scheme in SCHEMES {
        for (i, &(m, n, k)) in [(3, 37, 45), (17, 33, 97), (33, 200, 257), (70, 65, 64)].iter().enumerate() {
            let c = case(m, n, k, scheme, 200 + i as u64);
            let w = DeviceQuantMatrix::upload(&c.qm, &gpu().device).unwrap();
            for t in tiles {
                let got = run(&c, &w, &KernelOptions { tile: Some(t), ..Default::default() });
                check(&got, &c, 1e-5, 1e-6, &format!("{scheme:?} {m}x{n}x{k} {t:?}"));
            }
        }
    }
}

#[test]
fn f16_compute_matches_within_f16_tolerance() {
    if !gpu().shader_f16 {
        eprintln!("adapter lacks shader-f16: f16 variants only validated by naga");
        return;
    }
    for scheme in SCHEMES {
        for (i, &(m, n, k)) in [(1, 130, 100), (1, 64, 1539), (7, 65, 100), (33, 200, 257)].iter().enumerate() {
            let c = case(m, n, k, scheme, 300 + i as u64);
            let w = DeviceQuantMatrix::upload(&c.qm, &gpu().device).unwrap();
            let mut variants = vec![KernelOptions { f16: true, ..Default::default() }];
            if m == 1 {
                variants.push(KernelOptions { f16: true, matvec: Some(Reduction::Workgroup { wg: 128, tpr: 16, rpi: 4 }), ..Default::default() });
                if gpu().subgroups {
                    variants.push(KernelOptions { f16: true, matvec: Some(Reduction::Subgroup { wg: 128, rpw: 16, rpi: 4 }), ..Default::default() });
                }
            }
            for o in variants {
                let got = run(&c, &w, &o);
                check(&got, &c, 4e-3, 1e-3, &format!("f16 compute {scheme:?} {m}x{n}x{k} {:?}", o.matvec));
            }
        }
    }
}

/// A weight larger than the binding limit is split by rows, one dispatch per chunk; with a
/// forced tiny limit the result must be bit-identical to the unsplit one.
/// transformers' activations in f64.
fn act_ref(act: Act, x: f64) -> f64 {
    match act {
        Act::None => x,
        Act::GeluErf => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
        Act::GeluTanh => 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh()),
        Act::QuickGelu => x / (1.0 + (-1.702 * x).exp()),
        Act::Silu => x / (1.0 + (-x).exp()),
    }
}

/// The tiled matmul's epilogue, `act(x·Wᵀ + bias) + residual`, against the f64 reference for
/// every activation and every bias/residual combination, with the weight whole and split into
/// chunks of 7 rows (the bias is indexed by the whole matrix's column). Tolerance: the matmul's
/// (`1e-5·S + 1e-6`) times the activations' largest slope (≤ 1.13), plus 1e-6 of the answer
/// for the activation's own f32 arithmetic (erf approximated to 1.5e-7).
#[test]
fn matmul_epilogue_matches_the_reference() {
    let device = &gpu().device;
    let acts = [Act::None, Act::GeluErf, Act::GeluTanh, Act::QuickGelu, Act::Silu];
    for scheme in SCHEMES {
        for (i, &(m, n, k)) in [(3, 37, 45), (70, 130, 96)].iter().enumerate() {
            let c = case(m, n, k, scheme, 700 + i as u64);
            let mut rng = Lcg::new(800 + i as u64);
            let bias: Vec<f32> = rng.normals(n).iter().map(|b| 2.0 * b).collect();
            let res = rng.normals(m * n);
            let limit = scheme.row_bytes(k) * 7 + 3;
            let whole = DeviceQuantMatrix::upload(&c.qm, device).unwrap();
            let split = DeviceQuantMatrix::upload_with(&c.qm, device, KernelOptions { max_binding_bytes: Some(limit), ..Default::default() }).unwrap();
            for act in acts {
                for (with_bias, with_res) in [(true, false), (true, true), (false, true), (false, false)] {
                    for (w, how) in [(&whole, "whole"), (&split, "split")] {
                        let b = with_bias.then(|| t1(&bias));
                        let r = with_res.then(|| tensor(res.clone(), m, n, device));
                        let got = read(quant_matmul_epilogue(tensor(c.x.clone(), m, k, device), w, b.as_ref(), act, r).unwrap());
                        for (j, &g) in got.iter().enumerate() {
                            let pre = c.want[j] as f64 + if with_bias { bias[j % n] as f64 } else { 0.0 };
                            let want = act_ref(act, pre) + if with_res { res[j] as f64 } else { 0.0 };
                            let tol = 1.13 * (1e-5 * c.scale[j] as f64 + 1e-6) + 1e-6 * want.abs();
                            assert!(
                                (g as f64 - want).abs() <= tol,
                                "{scheme:?} {m}x{n}x{k} {how} {act:?} bias {with_bias} residual {with_res}: y[{}, {}] = {g}, want {want}",
                                j / n,
                                j % n
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn matmul_epilogue_refuses_misshapen_inputs() {
    let device = &gpu().device;
    let c = case(3, 37, 45, QuantScheme::Q8, 9);
    let w = DeviceQuantMatrix::upload(&c.qm, device).unwrap();
    let x = || tensor(c.x.clone(), 3, 45, device);
    assert!(quant_matmul_epilogue(x(), &w, Some(&t1(&[0.0; 36])), Act::None, None).is_err());
    assert!(quant_matmul_epilogue(x(), &w, None, Act::None, Some(tensor(vec![0.0; 37 * 2], 2, 37, device))).is_err());
    assert!(quant_matmul_epilogue(x(), &w, Some(&t1(&[0.0; 37])), Act::GeluErf, Some(tensor(vec![0.0; 37 * 3], 3, 37, device))).is_ok());
}

#[test]
fn forced_row_split_gives_identical_results() {
    let device = &gpu().device;
    for scheme in SCHEMES {
        for (i, &(m, n, k)) in [(1, 301, 100), (1, 77, 33), (5, 301, 100), (33, 97, 45)].iter().enumerate() {
            let c = case(m, n, k, scheme, 400 + i as u64);
            let whole = DeviceQuantMatrix::upload(&c.qm, device).unwrap();
            assert_eq!(whole.chunk_count(), 1);
            // Room for 7 rows (an odd count, so q8 chunks start at odd block indices).
            let limit = scheme.row_bytes(k) * 7 + 3;
            let split = DeviceQuantMatrix::upload_with(&c.qm, device, KernelOptions { max_binding_bytes: Some(limit), ..Default::default() }).unwrap();
            assert_eq!(split.chunk_count(), n.div_ceil(7), "{scheme:?} {n} rows in chunks of 7");
            let a = read(quant_matmul(tensor(c.x.clone(), m, k, device), &whole).unwrap());
            let b = read(quant_matmul(tensor(c.x.clone(), m, k, device), &split).unwrap());
            assert_eq!(a, b, "{scheme:?} {m}x{n}x{k}: split result differs");
            check(&b, &c, 1e-5, 1e-6, &format!("split {scheme:?} {m}x{n}x{k}"));
        }
    }
}

#[test]
fn a_row_larger_than_the_limit_is_an_error() {
    let c = case(1, 4, 64, QuantScheme::Q8, 5);
    let err = DeviceQuantMatrix::upload_with(&c.qm, &gpu().device, KernelOptions { max_binding_bytes: Some(16), ..Default::default() }).unwrap_err();
    assert!(matches!(err, KernelError::RowTooLarge { bytes: 64, limit: 16, .. }), "{err}");
}

#[test]
fn wrong_activation_width_is_an_error() {
    let device = &gpu().device;
    let c = case(2, 8, 40, QuantScheme::Q4, 6);
    let w = DeviceQuantMatrix::upload(&c.qm, device).unwrap();
    let err = quant_matmul(tensor(vec![0.0; 2 * 41], 2, 41, device), &w).unwrap_err();
    assert_eq!(err, KernelError::ShapeMismatch { k: 40, found: 41 });
}

/// Views burn hands out (a transposed tensor, a row slice at an offset) work as activations.
#[test]
fn strided_and_offset_activations() {
    let device = &gpu().device;
    let (m, n, k) = (9, 70, 64);
    let c = case(m, n, k, QuantScheme::Q8, 7);
    let w = DeviceQuantMatrix::upload(&c.qm, device).unwrap();
    // x stored as its transpose, then transposed back: a non-contiguous view.
    let mut xt = vec![0f32; m * k];
    for i in 0..m {
        for j in 0..k {
            xt[j * m + i] = c.x[i * k + j];
        }
    }
    let x = tensor(xt, k, m, device).transpose();
    check(&read(quant_matmul(x, &w).unwrap()), &c, 1e-5, 1e-6, "transposed activation");
    // The last row alone, as a slice of the whole activation (M = 1 from an offset).
    let last = tensor(c.x.clone(), m, k, device).slice([m - 1..m, 0..k]);
    let got = read(quant_matmul(last, &w).unwrap());
    let want = &c.want[(m - 1) * n..];
    for (j, (&g, &r)) in got.iter().zip(want).enumerate() {
        assert!((g - r).abs() <= 1e-5 * c.scale[(m - 1) * n + j] + 1e-6, "sliced row, column {j}: {g} vs {r}");
    }
}

/// Launches chain on burn's queue: the output of one feeds the next with no readback between.
#[test]
fn outputs_chain_without_readback() {
    let device = &gpu().device;
    let a = case(4, 48, 40, QuantScheme::Q4, 8);
    let mut rng = Lcg::new(9);
    let b = QuantMatrix::quantize(&rng.normals(24 * 48), 24, 48, QuantScheme::Q8).unwrap();
    let (wa, wb) = (DeviceQuantMatrix::upload(&a.qm, device).unwrap(), DeviceQuantMatrix::upload(&b, device).unwrap());
    let h = quant_matmul(tensor(a.x.clone(), 4, 40, device), &wa).unwrap();
    let h = burn::tensor::activation::relu(h);
    let got = read(quant_matmul(h, &wb).unwrap());
    let h_ref: Vec<f32> = a.want.iter().map(|v| v.max(0.0)).collect();
    let want = matmul_ref(&h_ref, 4, &b).unwrap();
    let scale = abs_matmul_ref(&h_ref, 4, &b).unwrap();
    for i in 0..want.len() {
        assert!((got[i] - want[i]).abs() <= 1e-5 * scale[i] + 1e-5, "y[{i}]: {} vs {}", got[i], want[i]);
    }
}

#[test]
fn empty_activation_gives_empty_output() {
    let device = &gpu().device;
    let c = case(1, 8, 32, QuantScheme::Q8, 10);
    let w = DeviceQuantMatrix::upload(&c.qm, device).unwrap();
    let y = quant_matmul(burn::tensor::Tensor::<2>::zeros([0, 32], device), &w).unwrap();
    assert_eq!(y.dims(), [0, 8]);
}

/// f16 rows start at any word; a lane's last chunk may reach into the next row, whose words
/// must be masked, not multiplied by a zero activation (Inf·0 = NaN). Raw planes from an
/// importer can hold Inf; the row before must not see it.
#[test]
fn f16_rows_do_not_read_their_neighbours() {
    let device = &gpu().device;
    let (n, k) = (2, 5); // 3 words per row: row 0's second chunk word is row 1's first
    let qm = QuantMatrix::quantize(&[1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0], n, k, QuantScheme::F16).unwrap();
    let webvlm_kernels::quant::Planes::F16 { w } = qm.planes() else { panic!("f16") };
    let mut w = w.clone();
    w[3] = (w[3] & 0xFFFF_0000) | 0x7C00; // row 1, column 0 = +Inf
    let qm = QuantMatrix::from_f16_plane(n, k, w).unwrap();
    let dw = DeviceQuantMatrix::upload(&qm, device).unwrap();
    for options in [KernelOptions::default(), KernelOptions { matvec: Some(Reduction::Workgroup { wg: 64, tpr: 4, rpi: 4 }), ..Default::default() }] {
        for m in [1, 3] {
            let y = read(quant_matmul_with(tensor(vec![1.0; m * k], m, k, device), &dw, &options).unwrap());
            for i in 0..m {
                assert_eq!(y[i * n], 15.0, "row 0 of activation {i} (m = {m})");
                assert!(y[i * n + 1].is_infinite());
            }
        }
    }
}

#[test]
fn invalid_forced_variants_are_errors() {
    let device = &gpu().device;
    let c = case(1, 8, 32, QuantScheme::Q8, 11);
    let w = DeviceQuantMatrix::upload(&c.qm, device).unwrap();
    let x = || tensor(c.x.clone(), 1, 32, device);
    for r in [Reduction::Workgroup { wg: 64, tpr: 3, rpi: 4 }, Reduction::Workgroup { wg: 64, tpr: 1, rpi: 2 }, Reduction::Subgroup { wg: 64, rpw: 6, rpi: 4 }, Reduction::Workgroup { wg: 512, tpr: 1, rpi: 4 }] {
        let err = quant_matmul_with(x(), &w, &KernelOptions { matvec: Some(r), ..Default::default() }).unwrap_err();
        assert!(matches!(err, KernelError::InvalidVariant(_)), "{r:?}: {err}");
    }
    let c = case(3, 8, 32, QuantScheme::Q8, 12);
    let w = DeviceQuantMatrix::upload(&c.qm, device).unwrap();
    let err = quant_matmul_with(tensor(c.x.clone(), 3, 32, device), &w, &KernelOptions { tile: Some(Tile { tm: 128, tn: 128, rm: 8, rn: 8 }), ..Default::default() }).unwrap_err();
    assert!(matches!(err, KernelError::InvalidVariant(_)), "{err}");
}

/// A vector on the test device.
fn t1(v: &[f32]) -> burn::tensor::Tensor<1> {
    burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(v.to_vec(), [v.len()]), &gpu().device)
}

/// `silu(g)·u` as `swiglu.wgsl` computes it, in f32.
fn silu_mul(g: f32, u: f32) -> f32 {
    g / (1.0 + (-g).exp()) * u
}

/// The matvec with its prologue and epilogue (`quant_matmul_fused`: SwiGLU on a `[gate | up]`
/// row, a bias and a residual added) against the reference: the gate on the CPU, then
/// `matmul_ref`, then the additions. Every reduction, the row-split path (addends indexed by
/// global row), and widths that are not whole blocks (the unfused path).
#[test]
fn fused_matvec_matches_the_reference() {
    use webvlm_kernels::quant_matmul_fused;
    let device = &gpu().device;
    let mut reductions = vec![None, Some(Reduction::Workgroup { wg: 8, tpr: 1, rpi: 8 }), Some(Reduction::Workgroup { wg: 128, tpr: 16, rpi: 4 })];
    if gpu().subgroups {
        reductions.push(Some(Reduction::Subgroup { wg: 128, rpw: 16, rpi: 4 }));
    }
    let mut rng = Lcg::new(77);
    for scheme in SCHEMES {
        for &(n, k) in &[(37, 64), (300, 96), (130, 1536), (65, 45)] {
            let qm = QuantMatrix::quantize(&rng.normals(n * k), n, k, scheme).unwrap();
            let gu: Vec<f32> = rng.normals(2 * k).iter().map(|v| 3.0 * v).collect();
            let gated: Vec<f32> = (0..k).map(|i| silu_mul(gu[i], gu[k + i])).collect();
            let bias = rng.normals(n);
            let res = rng.normals(n);
            let mm = matmul_ref(&gated, 1, &qm).unwrap();
            let scale = abs_matmul_ref(&gated, 1, &qm).unwrap();
            let want: Vec<f32> = (0..n).map(|i| mm[i] + bias[i] + res[i]).collect();
            let c = Case { x: gated.clone(), qm: qm.clone(), m: 1, want, scale: scale.iter().zip(&bias).zip(&res).map(|((s, b), r)| s + b.abs() + r.abs()).collect() };
            for split in [None, Some(scheme.row_bytes(k) * 16)] {
                for r in &reductions {
                    let mut w = DeviceQuantMatrix::upload_with(&qm, device, KernelOptions { max_binding_bytes: split, ..Default::default() }).unwrap();
                    w.set_options(KernelOptions { matvec: *r, ..Default::default() });
                    let what = format!("{scheme:?} {n}x{k} {r:?} split {split:?}");
                    let got = read(quant_matmul_fused(tensor(gu.clone(), 1, 2 * k, device), &w, true, &[t1(&bias), t1(&res)]).unwrap());
                    check(&got, &c, 1e-5, 1e-6, &format!("{what}, swiglu + bias + residual"));
                    // Without the prologue, one addend: x·Wᵀ + bias.
                    let plain = read(quant_matmul_fused(tensor(gated.clone(), 1, k, device), &w, false, &[t1(&bias)]).unwrap());
                    let c1 = Case { x: vec![], qm: qm.clone(), m: 1, want: (0..n).map(|i| mm[i] + bias[i]).collect(), scale: c.scale.clone() };
                    check(&plain, &c1, 1e-5, 1e-6, &format!("{what}, bias"));
                }
            }
        }
    }
    // Shapes are checked: a gate/up row of the wrong width, an addend of the wrong length, three addends.
    let qm = QuantMatrix::quantize(&rng.normals(8 * 64), 8, 64, QuantScheme::Q8).unwrap();
    let w = DeviceQuantMatrix::upload(&qm, device).unwrap();
    let z = |n| t1(&vec![0.0; n]);
    assert!(quant_matmul_fused(tensor(vec![0.0; 64], 1, 64, device), &w, true, &[]).is_err());
    assert!(quant_matmul_fused(tensor(vec![0.0; 64], 1, 64, device), &w, false, &[z(7)]).is_err());
    assert!(quant_matmul_fused(tensor(vec![0.0; 64], 1, 64, device), &w, false, &[z(8), z(8), z(8)]).is_err());
}

/// Rows stacked on the device (q/k/v, gate/up) multiply exactly like the parts side by side,
/// and matrices that cannot share one binding of whole planes are refused.
#[test]
fn concat_rows_equals_the_parts() {
    let device = &gpu().device;
    let mut rng = Lcg::new(78);
    for scheme in SCHEMES {
        let k = 96;
        let parts: Vec<QuantMatrix> = [64, 16, 16].iter().map(|&n| QuantMatrix::quantize(&rng.normals(n * k), n, k, scheme).unwrap()).collect();
        let up: Vec<DeviceQuantMatrix> = parts.iter().map(|p| DeviceQuantMatrix::upload(p, device).unwrap()).collect();
        let joined = DeviceQuantMatrix::concat_rows(&up.iter().collect::<Vec<_>>()).expect("joinable");
        assert_eq!((joined.n(), joined.k()), (96, k));
        assert_eq!(joined.byte_size(), up.iter().map(DeviceQuantMatrix::byte_size).sum::<u64>());
        for m in [1, 5] {
            let x = rng.normals(m * k);
            let got = read(quant_matmul(tensor(x.clone(), m, k, device), &joined).unwrap());
            let each: Vec<Vec<f32>> = up.iter().map(|w| read(quant_matmul(tensor(x.clone(), m, k, device), w).unwrap())).collect();
            let want: Vec<f32> = (0..m).flat_map(|r| each.iter().flat_map(move |e| e[r * e.len() / m..(r + 1) * e.len() / m].to_vec()).collect::<Vec<_>>()).collect();
            assert_eq!(got, want, "{scheme:?} joined rows, M = {m}");
        }
    }
    // Odd n·Kb leaves a q8 scale word half-used: not joined. Different widths or schemes neither,
    // nor a part cut into row chunks.
    let mut q = |n, k, s| DeviceQuantMatrix::upload(&QuantMatrix::quantize(&rng.normals(n * k), n, k, s).unwrap(), device).unwrap();
    let (a, b) = (q(3, 32, QuantScheme::Q8), q(4, 32, QuantScheme::Q8));
    assert!(DeviceQuantMatrix::concat_rows(&[&a, &b]).is_none());
    let (c, d) = (q(4, 32, QuantScheme::Q4), q(4, 64, QuantScheme::Q4));
    assert!(DeviceQuantMatrix::concat_rows(&[&c, &d]).is_none());
    let e = q(4, 32, QuantScheme::Q8);
    assert!(DeviceQuantMatrix::concat_rows(&[&c, &e]).is_none());
    let qm = QuantMatrix::quantize(&Lcg::new(79).normals(64 * 64), 64, 64, QuantScheme::Q4).unwrap();
    let chunked = DeviceQuantMatrix::upload_with(&qm, device, KernelOptions { max_binding_bytes: Some(QuantScheme::Q4.row_bytes(64) * 16), ..Default::default() }).unwrap();
    assert!(chunked.chunk_count() > 1);
    assert!(DeviceQuantMatrix::concat_rows(&[&chunked, &d]).is_none());
}
