//! A small run of the bench, so `bench_kernels` is exercised in CI (the full SmolVLM shape list
//! runs from `webvlm bench kernels`, or `cargo test --release -p webvlm-kernels --test
//! bench_smoke -- --ignored --nocapture` here).

mod common;

use webvlm_kernels::QuantScheme;
use webvlm_kernels::bench::{BenchShape, bench_kernels, default_shapes, fma_peak, format_table};
use webvlm_kernels::reference::fma_peak_ref;

#[test]
fn small_bench_runs_and_reports_sane_numbers() {
    let shapes = vec![
        BenchShape::new("tiny q8", 1, 96, 64, QuantScheme::Q8),
        BenchShape::new("tiny q4", 1, 96, 64, QuantScheme::Q4),
        BenchShape::new("tiny prefill", 5, 40, 64, QuantScheme::Q4),
    ];
    let rows = bench_kernels(&common::gpu().device, &shapes, 2).unwrap();
    eprintln!("{}", format_table(&rows));
    for s in &shapes {
        let of_shape: Vec<_> = rows.iter().filter(|r| &r.shape == s).collect();
        assert!(of_shape.len() >= 3, "{}: every variant is listed", s.name);
        assert_eq!(of_shape.iter().filter(|r| r.default).count(), 1, "{}: exactly one default", s.name);
    }
    for r in &rows {
        assert!(r.time.as_nanos() > 0 && r.gbps.is_finite() && r.gbps > 0.0 && r.copy_gbps > 0.0, "{r:?}");
        assert!((r.ratio - r.gbps / r.copy_gbps).abs() < 1e-9);
        assert!(r.fma_gflops.is_finite() && r.fma_gflops > 0.0, "{r:?}");
        assert!((r.fraction_of_fma - r.gflops / r.fma_gflops).abs() < 1e-9);
    }
    assert!(rows.windows(2).all(|w| w[0].fma_gflops == w[1].fma_gflops), "one peak per run");
}

/// The FMA peak kernel computes what its CPU reference does (its chains are not optimised
/// away), for chains that converge (b < 1) and chains that decay to c.
#[test]
fn fma_peak_matches_the_cpu_recurrence() {
    let device = &common::gpu().device;
    for (iters, b, c) in [(0, 0.5, 0.25), (1, 0.999, 0.001), (300, 0.999, 0.001), (37, -0.75, 0.5)] {
        let got: Vec<f32> = fma_peak(device, 3, iters, b, c).unwrap().try_into_data().unwrap().try_to_vec::<f32>().unwrap();
        assert_eq!(got.len(), 3 * 64);
        for (i, &g) in got.iter().enumerate() {
            let want = fma_peak_ref(i as u32, iters, b, c);
            assert!((g - want).abs() <= 1e-5 * want.abs().max(1.0), "invocation {i}, {iters} steps: {g} vs {want}");
        }
    }
    assert!(fma_peak(device, 0, 1, 0.5, 0.5).is_err(), "no workgroups");
}

/// The full report (slow on lavapipe): run with `-- --ignored --nocapture`.
#[test]
#[ignore]
fn full_bench() {
    let rows = bench_kernels(&common::gpu().device, &default_shapes(), 5).unwrap();
    println!("{}", format_table(&rows));
}

/// A few shapes for quick A/B runs while tuning: `-- --ignored --nocapture quick_bench`.
#[test]
#[ignore]
fn quick_bench() {
    let shapes = vec![
        BenchShape::new("smolvlm-256m gate/up", 1, 1536, 576, QuantScheme::Q8),
        BenchShape::new("smolvlm-256m gate/up", 1, 1536, 576, QuantScheme::Q4),
        BenchShape::new("smolvlm-256m gate/up", 1, 1536, 576, QuantScheme::F16),
    ];
    let rows = bench_kernels(&common::gpu().device, &shapes, 5).unwrap();
    println!("{}", format_table(&rows));
}
