//! Kernel bench: time per call, effective bandwidth, and the bandwidth of a plain copy of the
//! same number of bytes on the same device in the same run, so the ratio says how close a
//! kernel comes to what the memory system can do. Every variant that can run is listed, the
//! default (what [`crate::quant_matmul`] picks) marked, llm.c-style.
//!
//! Timing: after a warm-up call (which also compiles the pipeline), each sample queues
//! `calls` launches back to back and then waits for the device ([`crate::gpu::wait`]), so the
//! GPU work is really done; a sample's time is divided by `calls`, and the reported time is the
//! median over `repeats` samples. `calls` grows for small matrices so that submission
//! latency does not swamp a 20 µs kernel.
//!
//! The measuring is async and takes its clock from the caller, so the same code runs natively
//! (blocking on it, `Instant`) and in a browser worker (`performance.now()`).

use std::time::Duration;

use burn::tensor::{Device, Tensor, TensorData};

use crate::device_matrix::{Repr, wgpu_device};
use crate::error::{KernelError, Result};
use crate::quant::{QuantMatrix, QuantScheme};
use crate::reference::Lcg;
use crate::shaders::{Kernel, Reduction, Tile};
use crate::variants::{DeviceCaps, KernelOptions};
use crate::{DeviceQuantMatrix, quant_matmul_with};

/// One matrix product to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchShape {
    /// What the weight is, e.g. `smolvlm-256m gate/up`.
    pub name: String,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub scheme: QuantScheme,
}

impl BenchShape {
    pub fn new(name: &str, m: usize, n: usize, k: usize, scheme: QuantScheme) -> Self {
        Self { name: name.into(), m, n, k, scheme }
    }
}

/// One measured kernel variant on one shape.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    pub shape: BenchShape,
    /// [`Kernel::label`] of the variant.
    pub kernel: String,
    /// Whether [`crate::quant_matmul`] picks this variant by default on this device.
    pub default: bool,
    /// Median time per call.
    pub time: Duration,
    /// Weight bytes + activations read + outputs written, per call.
    pub bytes: u64,
    /// `bytes / time`.
    pub gbps: f64,
    /// `2·M·N·K / time`: the figure that matters for prefill, which is compute-bound.
    pub gflops: f64,
    /// Read + write bandwidth of `copy.wgsl` on a buffer of the weight's size (best variant).
    pub copy_gbps: f64,
    /// `gbps / copy_gbps`.
    pub ratio: f64,
    /// GFLOP/s of `fma_peak.wgsl` on the same device in the same run (best variant).
    pub fma_gflops: f64,
    /// `gflops / fma_gflops`: how close a (compute-bound) matmul comes to the device's peak.
    pub fraction_of_fma: f64,
}

/// The shapes the report asks for: SmolVLM-256M's decoder projections (hidden 576, 9 heads
/// × 64, 3 kv heads, FFN 1536, vocab 49280) and a 1.5B decoder's FFN (hidden 1536, FFN 8960)
/// at M = 1 in q8, q4 and f16, one prefill shape at M = 64, and SigLIP's fc1 over a tile's
/// 1024 patches (768 → 3072) in q8 and f16.
pub fn default_shapes() -> Vec<BenchShape> {
    let decode = [
        ("smolvlm-256m q/o", 576, 576),
        ("smolvlm-256m k/v", 192, 576),
        ("smolvlm-256m gate/up", 1536, 576),
        ("smolvlm-256m down", 576, 1536),
        ("smolvlm-256m lm_head", 49280, 576),
        ("1.5b gate/up", 8960, 1536),
        ("1.5b down", 1536, 8960),
    ];
    let mut out = Vec::new();
    for scheme in [QuantScheme::Q8, QuantScheme::Q4, QuantScheme::F16] {
        out.extend(decode.iter().map(|&(name, n, k)| BenchShape::new(name, 1, n, k, scheme)));
    }
    for scheme in [QuantScheme::Q8, QuantScheme::Q4] {
        out.push(BenchShape::new("smolvlm-256m gate/up prefill", 64, 1536, 576, scheme));
    }
    // The SigLIP fc1 of one 512-px tile: compute-bound, read against the FMA peak.
    for scheme in [QuantScheme::Q8, QuantScheme::F16] {
        out.push(BenchShape::new("siglip fc1 tile", 1024, 3072, 768, scheme));
    }
    out
}

/// The shapes the browser page measures: SmolVLM-256M's q4 decode projections, the default
/// variant only (a software adapter takes seconds per variant).
pub fn browser_shapes() -> Vec<BenchShape> {
    [("smolvlm-256m gate/up", 1536, 576), ("smolvlm-256m down", 576, 1536), ("smolvlm-256m lm_head", 49280, 576)]
        .into_iter()
        .map(|(name, n, k)| BenchShape::new(name, 1, n, k, QuantScheme::Q4))
        .collect()
}

/// A clock in seconds from any fixed origin.
pub type Clock<'a> = &'a dyn Fn() -> f64;

/// Measure every runnable variant on every shape, blocking (native).
#[cfg(not(target_family = "wasm"))]
pub fn bench_kernels(device: &Device, shapes: &[BenchShape], repeats: usize) -> Result<Vec<BenchRow>> {
    let origin = std::time::Instant::now();
    let clock = move || origin.elapsed().as_secs_f64();
    pollster::block_on(bench_kernels_with(device, shapes, repeats, true, &clock))
}

/// Measure `shapes` (every variant when `all_variants`, else the default one) timed by `now`.
pub async fn bench_kernels_with(device: &Device, shapes: &[BenchShape], repeats: usize, all_variants: bool, now: Clock<'_>) -> Result<Vec<BenchRow>> {
    let cube = wgpu_device(device).ok_or_else(|| KernelError::NotWgpu(format!("{device:?}")))?;
    let caps = DeviceCaps::of(&cube.client());
    let fma_gflops = fma_peak_gflops(device, &caps, repeats, now).await?;
    let mut rows = Vec::new();
    for (i, shape) in shapes.iter().enumerate() {
        let mut rng = Lcg::new(i as u64);
        let qm = QuantMatrix::quantize(&rng.normals(shape.n * shape.k), shape.n, shape.k, shape.scheme)?;
        let w = DeviceQuantMatrix::upload(&qm, device)?;
        let x = Tensor::<2>::from_data(TensorData::new(rng.normals(shape.m * shape.k), [shape.m, shape.k]), device);
        let bytes = w.byte_size() + 4 * (shape.m * shape.k + shape.m * shape.n) as u64;
        let calls = (64 << 20) / bytes.max(1);
        let calls = calls.clamp(1, 200) as usize;
        let copy_gbps = best_copy_gbps(device, &caps, w.byte_size(), calls, repeats, now).await?;
        let default = default_kernel(&w, shape.m, &caps);
        // The listed variants plus the default, each once.
        let mut runs: Vec<(KernelOptions, Kernel)> = Vec::new();
        let candidates = if all_variants { candidate_options(shape, &caps) } else { Vec::new() };
        for options in std::iter::once(KernelOptions::default()).chain(candidates) {
            let kernel = if shape.m == 1 { options.matvec_kernel(shape.scheme, shape.k, &caps) } else { options.matmul_kernel(shape.scheme, shape.m, &caps) };
            if !runs.iter().any(|(_, k)| *k == kernel) {
                runs.push((options, kernel));
            }
        }
        for (options, kernel) in runs {
            let time = time_calls(device, calls, repeats, now, || quant_matmul_with(x.clone(), &w, &options).map(drop)).await?;
            let gbps = bytes as f64 / time.as_secs_f64() / 1e9;
            let gflops = 2.0 * (shape.m * shape.n * shape.k) as f64 / time.as_secs_f64() / 1e9;
            rows.push(BenchRow {
                shape: shape.clone(),
                kernel: kernel.label(),
                default: Some(kernel) == default,
                time,
                bytes,
                gbps,
                gflops,
                copy_gbps,
                ratio: gbps / copy_gbps,
                fma_gflops,
                fraction_of_fma: gflops / fma_gflops,
            });
        }
    }
    Ok(rows)
}

/// The variant [`crate::quant_matmul`] would run.
fn default_kernel(w: &DeviceQuantMatrix, m: usize, caps: &DeviceCaps) -> Option<Kernel> {
    let Repr::Wgpu { options, .. } = &w.repr else { return None };
    Some(if m == 1 { options.matvec_kernel(w.scheme(), w.k(), caps) } else { options.matmul_kernel(w.scheme(), m, caps) })
}

/// The variants worth comparing for a shape on this device.
fn candidate_options(shape: &BenchShape, caps: &DeviceCaps) -> Vec<KernelOptions> {
    if shape.m > 1 {
        return [Tile { tm: 32, tn: 32, rm: 4, rn: 4 }, Tile { tm: 16, tn: 64, rm: 2, rn: 8 }, Tile { tm: 64, tn: 64, rm: 8, rn: 8 }]
            .into_iter()
            .map(|tile| KernelOptions { tile: Some(tile), ..Default::default() })
            .collect();
    }
    let mut reductions = vec![
        Reduction::Workgroup { wg: 8, tpr: 1, rpi: 8 },
        Reduction::Workgroup { wg: 64, tpr: 1, rpi: 4 },
        Reduction::Workgroup { wg: 64, tpr: 1, rpi: 8 },
        Reduction::Workgroup { wg: 64, tpr: 4, rpi: 4 },
        Reduction::Workgroup { wg: 128, tpr: 16, rpi: 4 },
        Reduction::Workgroup { wg: 128, tpr: 32, rpi: 4 },
    ];
    if caps.subgroups {
        reductions.push(Reduction::Subgroup { wg: 128, rpw: 8, rpi: 4 });
        reductions.push(Reduction::Subgroup { wg: 128, rpw: 32, rpi: 8 });
    }
    reductions.into_iter().map(|r| KernelOptions { matvec: Some(r), ..Default::default() }).collect()
}

/// Median seconds per call of `f`, `calls` per sample, after one warm-up sample.
async fn time_calls(device: &Device, calls: usize, repeats: usize, now: Clock<'_>, mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    f()?;
    crate::gpu::wait(device).await?;
    let mut samples = Vec::with_capacity(repeats.max(1));
    for _ in 0..repeats.max(1) {
        let start = now();
        for _ in 0..calls {
            f()?;
        }
        crate::gpu::wait(device).await?;
        samples.push(Duration::from_secs_f64(((now() - start) / calls as f64).max(0.0)));
    }
    samples.sort();
    Ok(samples[samples.len() / 2])
}

/// Read + write GB/s of the fastest copy variant over `bytes` (rounded up to whole vec4s).
async fn best_copy_gbps(device: &Device, caps: &DeviceCaps, bytes: u64, calls: usize, repeats: usize, now: Clock<'_>) -> Result<f64> {
    let len = bytes.div_ceil(16) as usize;
    let src = crate::device_matrix::upload_words(&vec![0u32; len * 4], device)?;
    let dst = crate::device_matrix::upload_words(&vec![0u32; len * 4], device)?;
    let mut best = 0f64;
    for items in [1, 4, 16] {
        let kernel = Kernel::Copy { wg: 64, items };
        let t = time_calls(device, calls, repeats, now, || crate::launch::copy(kernel, caps, &src, &dst, len)).await?;
        best = best.max((2 * len * 16) as f64 / t.as_secs_f64() / 1e9);
    }
    Ok(best)
}

/// Workgroups of the FMA peak kernel per call: enough to fill a large GPU's cores.
const FMA_WORKGROUPS: usize = 1024;
/// FMA steps per invocation: 64 FLOPs each.
const FMA_ITERS: u32 = 512;

/// Run `fma_peak.wgsl` (64-invocation workgroups): each invocation's 8 vec4 chains take `iters`
/// steps of `a = a·b + c` (|b| < 1), and it writes their sum ([`crate::reference::fma_peak_ref`]).
///
/// # Shapes
/// → `[workgroups · 64]`
pub fn fma_peak(device: &Device, workgroups: usize, iters: u32, b: f32, c: f32) -> Result<Tensor<1>> {
    let cube = wgpu_device(device).ok_or_else(|| KernelError::NotWgpu(format!("{device:?}")))?;
    let caps = DeviceCaps::of(&cube.client());
    let kernel = Kernel::FmaPeak { wg: 64 };
    // One dimension only: the shader indexes invocations as if the grid were exactly that wide.
    if workgroups == 0 || workgroups > caps.max_workgroups as usize {
        return Err(KernelError::TooManyWorkgroups { what: "fma peak", count: workgroups as u64, limit: caps.max_workgroups });
    }
    let client = cube.client();
    let len = workgroups * 64;
    let out = burn_cubecl::tensor::CubeTensor::new_contiguous(client.clone(), cube, [len].into(), client.empty(len * 4), burn::tensor::DType::F32);
    let params = crate::params::FmaParams { iters, b, c, _pad: 0 };
    crate::launch::launch_io(
        kernel,
        &out.client,
        burn_cubecl::cubecl::CubeCount::Static(workgroups as u32, 1, 1),
        &[(&out, crate::launch::Io::Write)],
        crate::params::info_words(&params),
    );
    Ok(Tensor::from_primitive::<burn_cubecl::CubeBackend>(out))
}

/// GFLOP/s of the FMA peak kernel (median of `repeats` samples of a few calls).
async fn fma_peak_gflops(device: &Device, caps: &DeviceCaps, repeats: usize, now: Clock<'_>) -> Result<f64> {
    let workgroups = FMA_WORKGROUPS.min(caps.max_workgroups as usize);
    let flops = (workgroups * 64) as f64 * f64::from(FMA_ITERS) * 64.0;
    let t = time_calls(device, 2, repeats, now, || fma_peak(device, workgroups, FMA_ITERS, 0.999, 0.001).map(drop)).await?;
    Ok(flops / t.as_secs_f64() / 1e9)
}

/// Rows as a plain-text table (what `webvlm bench kernels` prints).
pub fn format_table(rows: &[BenchRow]) -> String {
    let mut s = format!(
        "{:<30} {:>4} {:>6} {:>6} {:<34} {:>10} {:>8} {:>8} {:>6} {:>8} {:>8} {:>6}\n",
        "shape", "M", "N", "K", "kernel", "µs/call", "GB/s", "copy", "ratio", "GFLOP/s", "FMA", "of FMA"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<30} {:>4} {:>6} {:>6} {:<34} {:>10.1} {:>8.2} {:>8.2} {:>5.0}% {:>8.2} {:>8.1} {:>5.1}%{}\n",
            r.shape.name,
            r.shape.m,
            r.shape.n,
            r.shape.k,
            r.kernel,
            r.time.as_secs_f64() * 1e6,
            r.gbps,
            r.copy_gbps,
            r.ratio * 100.0,
            r.gflops,
            r.fma_gflops,
            r.fraction_of_fma * 100.0,
            if r.default { " *" } else { "" }
        ));
    }
    s
}
