//! A small run of the bench, so `bench_kernels` is exercised in CI (the full SmolVLM shape list
//! runs from `webvlm bench kernels`, or `cargo test --release -p webvlm-kernels --test
//! bench_smoke -- --ignored --nocapture` here).

mod common;

use webvlm_kernels::QuantScheme;
use webvlm_kernels::bench::{BenchShape, bench_kernels, default_shapes, format_table};

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
    }
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
