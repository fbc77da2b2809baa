//! The benchmark report, shared with the browser page (`web/src/bench.ts` holds the same
//! schema in TypeScript): one JSON shape for `webvlm bench --model` and `www/bench`, so figures
//! from a phone and from a workstation can be compared field by field.
//!
//! Timings are milliseconds, rates tokens per second, sizes bytes; `None` (JSON `null`) marks
//! what a runtime cannot observe (main-thread long tasks natively).

use std::collections::BTreeMap;
use std::ops::Deref;

use serde::{Deserialize, Serialize};
use webvlm_model::{PreparedPrompt, Vlm};

use webvlm_kernels::counters;

use crate::error::GenerateError;
use crate::generate::{GenerationOptions, Generator};

pub const BENCH_SCHEMA: &str = "webvlm.bench/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub schema: String,
    /// `native` or `browser`.
    pub runtime: String,
    /// ISO 8601.
    pub created: String,
    pub webvlm_version: String,
    pub user_agent: Option<String>,
    pub device: BenchDevice,
    pub model: BenchModel,
    pub settings: BenchSettings,
    pub load: BenchLoad,
    pub runs: Vec<BenchRun>,
    pub summary: BenchSummary,
    pub roofline: BenchRoofline,
    pub kernels: Vec<KernelBenchRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchDevice {
    /// `webgpu` in a browser; `vulkan`, `metal`, `dx12`, `gl` (or `cpu`) natively.
    pub backend: String,
    pub vendor: String,
    pub architecture: String,
    pub description: String,
    /// WebGPU feature names (`shader-f16`, `subgroups`, …).
    pub features: Vec<String>,
    pub limits: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchModel {
    pub source: String,
    pub model_type: String,
    pub quant: String,
    pub file_bytes: u64,
    /// Weight bytes one decoded token reads (decoder layers, final norm, lm_head, one embedding row).
    pub decode_weight_bytes: u64,
    pub context_length: usize,
    pub image_seq_len: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchSettings {
    pub prompt: String,
    /// 0 × 0 for a text-only run.
    pub image_width: u32,
    pub image_height: u32,
    pub image_splitting: bool,
    pub max_new_tokens: usize,
    pub runs: usize,
    pub warmup_runs: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchLoad {
    /// First load (browser: network → OPFS → GPU; native: first load in the process).
    pub cold_ms: f64,
    /// Second load (browser: OPFS → GPU; native: files in the page cache).
    pub warm_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LongTasks {
    pub count: u32,
    pub total_ms: f64,
    pub max_ms: f64,
}

/// One measured generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRun {
    pub prompt_tokens: usize,
    pub image_tokens: usize,
    pub generated_tokens: usize,
    /// Image decode + preprocessing + tokenisation.
    pub image_ms: f64,
    /// Vision tower + connector (0 without an image).
    pub encode_ms: f64,
    /// Decoder over the prompt, to the first token's logits.
    pub prefill_ms: f64,
    pub prefill_tokens_per_s: f64,
    /// From the request to the first token.
    pub ttft_ms: f64,
    /// From the first token to the last.
    pub decode_ms: f64,
    /// (generated − 1) / decode time: the first token comes from the prefill.
    pub decode_tokens_per_s: f64,
    /// Highest reserved GPU memory, sampled before the run and after encode, prefill and the last token.
    pub peak_gpu_bytes: u64,
    /// Main-thread tasks over 50 ms (browser only).
    pub long_tasks: Option<LongTasks>,
    /// What the prefill and each decoded token cost the host in GPU commands.
    pub gpu_counts: GpuCounts,
}

/// Host-side cost of some GPU work, counted where it happens (natively: CubeCL's launch
/// observer and wgpu's submission index, see `webvlm_kernels::counters`; in a browser:
/// wrappers around `GPUComputePassEncoder.dispatchWorkgroups`, `GPUQueue.submit` and
/// `GPUBuffer.mapAsync`). Deterministic for a given model, prompt and build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GpuCost {
    /// Compute dispatches.
    pub dispatches: u64,
    /// Queue submissions.
    pub submissions: u64,
    /// Bytes copied from the device to the host.
    pub readback_bytes: u64,
    /// Times the host waited for the device.
    pub syncs: u64,
}

impl From<webvlm_kernels::counters::GpuCounts> for GpuCost {
    fn from(c: webvlm_kernels::counters::GpuCounts) -> Self {
        Self { dispatches: c.dispatches, submissions: c.submissions, readback_bytes: c.readback_bytes, syncs: c.syncs }
    }
}

/// A run's GPU command counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GpuCounts {
    /// The vision encode of the prompt's images (zero without one; absent from reports
    /// written before it was counted).
    #[serde(default)]
    pub encode: GpuCost,
    /// The decoder over the prompt, to the first token (the vision encode excluded).
    pub prefill: GpuCost,
    /// One decoded token in steady state: the median of the steps that ran the decoder.
    pub per_token: GpuCost,
}

/// Field-wise median of `costs` (0 for none).
pub fn median_cost(costs: &[GpuCost]) -> GpuCost {
    let med = |f: fn(&GpuCost) -> u64| stat(&costs.iter().map(|c| f(c) as f64).collect::<Vec<_>>()).median.round() as u64;
    GpuCost { dispatches: med(|c| c.dispatches), submissions: med(|c| c.submissions), readback_bytes: med(|c| c.readback_bytes), syncs: med(|c| c.syncs) }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Population standard deviation / mean.
    pub cv: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchSummary {
    pub decode_tokens_per_s: Stat,
    pub prefill_tokens_per_s: Stat,
    pub ttft_ms: Stat,
    pub encode_ms: Stat,
    /// Second-half median decode rate over the first half's, minus one (negative = slowing).
    pub decode_drift: f64,
    pub peak_gpu_bytes: u64,
    /// Median over the runs of each run's per-token counts.
    pub gpu_counts_per_token: GpuCost,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BenchRoofline {
    pub weight_bytes_per_token: u64,
    /// weight_bytes_per_token × median decode tokens/s.
    pub implied_gbps: f64,
    /// Read + write bandwidth of a plain copy kernel on the same device (0 when not measured).
    pub copy_gbps: f64,
    pub fraction_of_copy: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelBenchRow {
    pub name: String,
    pub scheme: String,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub kernel: String,
    pub us_per_call: f64,
    pub gbps: f64,
    pub copy_gbps: f64,
    pub ratio: f64,
    /// 2·M·N·K per second, in GFLOP/s.
    #[serde(default)]
    pub gflops: f64,
    /// GFLOP/s of the FMA peak kernel on the same device in the same run (0 in older reports).
    #[serde(default)]
    pub fma_gflops: f64,
    /// gflops / fma_gflops.
    #[serde(default)]
    pub fraction_of_fma: f64,
}

impl From<&webvlm_kernels::bench::BenchRow> for KernelBenchRow {
    fn from(r: &webvlm_kernels::bench::BenchRow) -> Self {
        Self {
            name: r.shape.name.clone(),
            scheme: r.shape.scheme.name().to_string(),
            m: r.shape.m,
            n: r.shape.n,
            k: r.shape.k,
            kernel: r.kernel.clone(),
            us_per_call: r.time.as_secs_f64() * 1e6,
            gbps: r.gbps,
            copy_gbps: r.copy_gbps,
            ratio: r.ratio,
            gflops: r.gflops,
            fma_gflops: r.fma_gflops,
            fraction_of_fma: r.fraction_of_fma,
        }
    }
}

/// Median, min, max and coefficient of variation (all 0 for no values).
pub fn stat(values: &[f64]) -> Stat {
    if values.is_empty() {
        return Stat { median: 0.0, min: 0.0, max: 0.0, cv: 0.0 };
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 };
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    Stat { median, min: sorted[0], max: sorted[sorted.len() - 1], cv: if mean > 0.0 { variance.sqrt() / mean } else { 0.0 } }
}

/// Second-half median over first-half median, minus one (0 with fewer than two values).
pub fn drift(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let half = values.len() / 2;
    let first = stat(&values[..half]).median;
    let second = stat(&values[values.len() - half..]).median;
    if first > 0.0 { second / first - 1.0 } else { 0.0 }
}

pub fn summarize(runs: &[BenchRun]) -> BenchSummary {
    let of = |f: fn(&BenchRun) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let decode = of(|r| r.decode_tokens_per_s);
    BenchSummary {
        decode_tokens_per_s: stat(&decode),
        prefill_tokens_per_s: stat(&of(|r| r.prefill_tokens_per_s)),
        ttft_ms: stat(&of(|r| r.ttft_ms)),
        encode_ms: stat(&of(|r| r.encode_ms)),
        decode_drift: drift(&decode),
        peak_gpu_bytes: runs.iter().map(|r| r.peak_gpu_bytes).max().unwrap_or(0),
        gpu_counts_per_token: median_cost(&runs.iter().map(|r| r.gpu_counts.per_token).collect::<Vec<_>>()),
    }
}

pub fn roofline(weight_bytes_per_token: u64, decode_tokens_per_s: f64, copy_gbps: f64) -> BenchRoofline {
    let implied_gbps = weight_bytes_per_token as f64 * decode_tokens_per_s / 1e9;
    BenchRoofline {
        weight_bytes_per_token,
        implied_gbps,
        copy_gbps,
        fraction_of_copy: if copy_gbps > 0.0 { implied_gbps / copy_gbps } else { 0.0 },
    }
}

/// One generation timed stage by stage: the vision encode (waited for on the device), the
/// prefill up to the first token's logits, then every step. `now` is a clock in milliseconds;
/// `prepare_ms` is what the caller spent turning the request into `prompt`.
pub async fn measure_run<V: Deref<Target = Vlm>>(
    vlm: V,
    prompt: PreparedPrompt,
    opts: GenerationOptions,
    prepare_ms: f64,
    now: &dyn Fn() -> f64,
) -> Result<BenchRun, GenerateError> {
    let device = vlm.model.device().clone();
    let mut peak = 0u64;
    let mut sample = || peak = peak.max(webvlm_kernels::gpu_memory(&device).map_or(0, |m| m.reserved));
    sample();
    let image_token = vlm.config().image_token_id;
    let prompt_tokens = prompt.input_ids.len();
    let image_tokens = prompt.input_ids.iter().filter(|&&id| id == image_token).count();
    let mut generator = Generator::new(vlm, prompt, opts)?;
    let encodes = generator.needs_encode();
    let t0 = now();
    let before = counters::snapshot();
    generator.encode().await?;
    let encode_counts = counters::snapshot().since(&before);
    // Sampling asks the device thread for a report (about a millisecond): at stage ends only.
    // The allocator keeps what it reserved, so the last sample holds the run's peak.
    if encodes {
        sample();
    }
    let t1 = now();
    let before = counters::snapshot();
    generator.prefill().await?;
    let t2 = now();
    let prefill_counts = counters::snapshot().since(&before);
    sample();
    let mut first_token_at = None;
    let mut steps = Vec::new();
    let mut last = counters::snapshot();
    while generator.step().await?.is_some() {
        first_token_at.get_or_insert_with(&now);
        let at = counters::snapshot();
        steps.push(GpuCost::from(at.since(&last)));
        last = at;
    }
    let t3 = now();
    // The last step only hands out the token the one before it chose: it runs no decoder.
    if generator.finish_reason().is_some() {
        steps.pop();
    }
    sample();
    let generated = generator.generated().len();
    let first = first_token_at.unwrap_or(t3);
    let prefill_ms = t2 - t1;
    let decode_ms = t3 - first;
    Ok(BenchRun {
        prompt_tokens,
        image_tokens,
        generated_tokens: generated,
        image_ms: prepare_ms,
        encode_ms: if encodes { t1 - t0 } else { 0.0 },
        prefill_ms,
        prefill_tokens_per_s: if prefill_ms > 0.0 { prompt_tokens as f64 * 1000.0 / prefill_ms } else { 0.0 },
        ttft_ms: prepare_ms + (first - t0),
        decode_ms,
        decode_tokens_per_s: if generated > 1 && decode_ms > 0.0 { (generated - 1) as f64 * 1000.0 / decode_ms } else { 0.0 },
        peak_gpu_bytes: peak,
        long_tasks: None,
        gpu_counts: GpuCounts { encode: encode_counts.into(), prefill: prefill_counts.into(), per_token: median_cost(&steps) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_of_odd_and_even_lists() {
        let s = stat(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert!((s.cv - (2.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-12);
        assert_eq!(stat(&[1.0, 2.0, 3.0, 10.0]).median, 2.5);
        assert_eq!(stat(&[]).median, 0.0);
        assert_eq!(stat(&[5.0, 5.0]).cv, 0.0);
    }

    #[test]
    fn drift_sees_a_slowdown() {
        assert_eq!(drift(&[10.0]), 0.0);
        assert!((drift(&[10.0, 10.0, 8.0, 8.0]) + 0.2).abs() < 1e-12);
        // An odd count compares the first and last halves, leaving the middle run out.
        assert!((drift(&[10.0, 99.0, 5.0]) + 0.5).abs() < 1e-12);
    }

    #[test]
    fn roofline_is_bytes_times_rate() {
        let r = roofline(100_000_000, 20.0, 4.0);
        assert!((r.implied_gbps - 2.0).abs() < 1e-12);
        assert!((r.fraction_of_copy - 0.5).abs() < 1e-12);
        assert_eq!(roofline(1, 1.0, 0.0).fraction_of_copy, 0.0);
    }
}
