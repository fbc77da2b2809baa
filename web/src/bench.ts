/**
 * The benchmark report: one JSON schema for the browser page (`www/bench`) and the native
 * `webvlm bench --model` (Rust: `webvlm_runtime::bench`), so a phone's figures and a
 * workstation's can be laid side by side. Field names are snake_case on both sides.
 *
 * Timings are milliseconds, rates tokens per second, sizes bytes. `null` marks a figure the
 * runtime cannot observe (main-thread long tasks natively, a user agent natively).
 */

export const BENCH_SCHEMA = 'webvlm.bench/1';

export interface BenchDevice {
  /** `webgpu` in a browser; `vulkan`, `metal`, `dx12`, `gl` natively. */
  backend: string;
  vendor: string;
  architecture: string;
  description: string;
  /** e.g. `shader-f16`, `subgroups` (WebGPU feature names). */
  features: string[];
  limits: Record<string, number>;
}

export interface BenchModel {
  /** URL (browser) or directory (native). */
  source: string;
  model_type: string;
  quant: string;
  /** Bytes of the model's files (weights and assets). */
  file_bytes: number;
  /** Bytes of weights one decoded token reads (decoder layers, final norm, lm_head, one embedding row). */
  decode_weight_bytes: number;
  context_length: number;
  /** Image tokens per tile. */
  image_seq_len: number;
}

export interface BenchSettings {
  prompt: string;
  /** Size of the test image; 0 × 0 for a text-only run. */
  image_width: number;
  image_height: number;
  /** Whether images are cut into tiles (the model's default unless overridden). */
  image_splitting: boolean;
  max_new_tokens: number;
  /** Measured generations (warm-up runs are not reported). */
  runs: number;
  warmup_runs: number;
}

export interface BenchLoad {
  /** Network → cache → GPU (browser); first load in the process (native, page cache as it is). */
  cold_ms: number;
  /** Cache → GPU (browser); a second load (native). */
  warm_ms: number;
}

export interface LongTasks {
  count: number;
  total_ms: number;
  max_ms: number;
}

export interface BenchRun {
  prompt_tokens: number;
  /** Of which image tokens. */
  image_tokens: number;
  generated_tokens: number;
  /** Image decode + preprocessing + tokenisation. */
  image_ms: number;
  /** Vision tower + connector (0 without an image). */
  encode_ms: number;
  /** Decoder over the prompt, to the first token's logits. */
  prefill_ms: number;
  prefill_tokens_per_s: number;
  /** From the request to the first token. */
  ttft_ms: number;
  /** From the first token to the last. */
  decode_ms: number;
  /** (generated − 1) / decode time: the first token comes from the prefill. */
  decode_tokens_per_s: number;
  /** Highest GPU memory the runtime had reserved, sampled before the run and after encode, prefill and the last token. */
  peak_gpu_bytes: number;
  /** Main-thread tasks over 50 ms during the run (browser only). */
  long_tasks: LongTasks | null;
  /** GPU commands of the prefill and of one decoded token (median of the decoder steps). */
  gpu_counts: { encode?: BenchGpuCost; prefill: BenchGpuCost; per_token: BenchGpuCost };
}

/** Host-side cost of GPU work: counted at the WebGPU API in a browser, at CubeCL/wgpu natively. */
export interface BenchGpuCost {
  dispatches: number;
  submissions: number;
  readback_bytes: number;
  syncs: number;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  /** Coefficient of variation: population standard deviation / mean. */
  cv: number;
}

export interface BenchSummary {
  decode_tokens_per_s: Stat;
  prefill_tokens_per_s: Stat;
  ttft_ms: Stat;
  encode_ms: Stat;
  /**
   * Median decode rate of the second half of the runs over the first half, minus one:
   * negative when the device slows down under sustained load (thermal throttling).
   */
  decode_drift: number;
  peak_gpu_bytes: number;
  /** Field-wise median over the runs of each run's per-token counts. */
  gpu_counts_per_token: BenchGpuCost;
}

export interface BenchRoofline {
  weight_bytes_per_token: number;
  /** weight_bytes_per_token × median decode tokens/s. */
  implied_gbps: number;
  /** Read + write bandwidth of a plain copy kernel on the same device (0 when not measured). */
  copy_gbps: number;
  /** implied_gbps / copy_gbps (0 when not measured). */
  fraction_of_copy: number;
}

export interface KernelBenchRow {
  name: string;
  /** q4, q8 or f16. */
  scheme: string;
  m: number;
  n: number;
  k: number;
  kernel: string;
  us_per_call: number;
  gbps: number;
  copy_gbps: number;
  ratio: number;
  /** 2·M·N·K per second, in GFLOP/s (absent in older reports). */
  gflops?: number;
  /** GFLOP/s of the FMA peak kernel on the same device in the same run. */
  fma_gflops?: number;
  /** gflops / fma_gflops. */
  fraction_of_fma?: number;
}

export interface BenchReport {
  schema: typeof BENCH_SCHEMA;
  runtime: 'browser' | 'native';
  /** ISO 8601. */
  created: string;
  webvlm_version: string;
  user_agent: string | null;
  device: BenchDevice;
  model: BenchModel;
  settings: BenchSettings;
  load: BenchLoad;
  runs: BenchRun[];
  summary: BenchSummary;
  roofline: BenchRoofline;
  kernels: KernelBenchRow[];
}

/** Median, min, max and coefficient of variation (0 for an empty list). */
export function stat(values: number[]): Stat {
  if (values.length === 0) return { median: 0, min: 0, max: 0, cv: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], cv: mean > 0 ? Math.sqrt(variance) / mean : 0 };
}

/** Second-half median over first-half median, minus one (0 with fewer than two runs). */
export function drift(values: number[]): number {
  if (values.length < 2) return 0;
  const half = values.length >> 1;
  const first = stat(values.slice(0, half)).median;
  const second = stat(values.slice(values.length - half)).median;
  return first > 0 ? second / first - 1 : 0;
}

export function summarize(runs: BenchRun[]): BenchSummary {
  const decode = runs.map((r) => r.decode_tokens_per_s);
  return {
    decode_tokens_per_s: stat(decode),
    prefill_tokens_per_s: stat(runs.map((r) => r.prefill_tokens_per_s)),
    ttft_ms: stat(runs.map((r) => r.ttft_ms)),
    encode_ms: stat(runs.map((r) => r.encode_ms)),
    decode_drift: drift(decode),
    peak_gpu_bytes: runs.reduce((m, r) => Math.max(m, r.peak_gpu_bytes), 0),
    gpu_counts_per_token: medianGpuCost(runs.map((r) => r.gpu_counts.per_token)),
  };
}

/** Field-wise median of per-token counts (rounded; 0 for none), as the native report computes it. */
export function medianGpuCost(costs: BenchGpuCost[]): BenchGpuCost {
  const med = (f: (c: BenchGpuCost) => number) => Math.round(stat(costs.map(f)).median);
  return {
    dispatches: med((c) => c.dispatches),
    submissions: med((c) => c.submissions),
    readback_bytes: med((c) => c.readback_bytes),
    syncs: med((c) => c.syncs),
  };
}

export function roofline(weightBytesPerToken: number, decodeTokensPerS: number, copyGbps: number): BenchRoofline {
  const implied = (weightBytesPerToken * decodeTokensPerS) / 1e9;
  return {
    weight_bytes_per_token: weightBytesPerToken,
    implied_gbps: implied,
    copy_gbps: copyGbps,
    fraction_of_copy: copyGbps > 0 ? implied / copyGbps : 0,
  };
}
