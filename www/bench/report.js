// Pure helpers of the benchmark page (no DOM, no worker): turning the package's per-request
// usage into the report's runs, long-task accounting, the report itself and comparisons. The
// schema is the package's `BenchReport` (web/src/bench.ts), shared with `webvlm bench --model`.

/** One measured generation in the report's form, from the final chunk's `usage`. */
export function runFromUsage(usage, longTasks) {
  const t = usage.timings;
  const prefillTokens = usage.promptTokens - usage.reusedTokens;
  return {
    prompt_tokens: usage.promptTokens,
    image_tokens: usage.imageTokens,
    generated_tokens: usage.completionTokens,
    image_ms: t.imageMs + t.prepareMs,
    encode_ms: t.encodeMs,
    prefill_ms: t.prefillMs,
    prefill_tokens_per_s: t.prefillMs > 0 ? (prefillTokens * 1000) / t.prefillMs : 0,
    ttft_ms: t.firstTokenMs,
    decode_ms: t.decodeMs,
    decode_tokens_per_s: t.decodeTokensPerSecond,
    peak_gpu_bytes: usage.peakGpuBytes,
    long_tasks: longTasks,
    gpu_counts: {
      encode: snakeCost(usage.gpuCounts.encode),
      prefill: snakeCost(usage.gpuCounts.prefill),
      per_token: snakeCost(usage.gpuCounts.perToken),
    },
  };
}

/** The package's camelCase GPU cost in the report's field names. */
function snakeCost(c) {
  return { dispatches: c.dispatches, submissions: c.submissions, readback_bytes: c.readbackBytes, syncs: c.syncs };
}

/** Count, total and longest of PerformanceObserver 'longtask' entries. */
export function aggregateLongTasks(entries) {
  let total = 0;
  let max = 0;
  for (const e of entries) {
    total += e.duration;
    max = Math.max(max, e.duration);
  }
  return { count: entries.length, total_ms: total, max_ms: max };
}

/** The device block from the package's adapter info. */
export function deviceFromAdapter(adapter) {
  return {
    backend: 'webgpu',
    vendor: adapter.vendor ?? '',
    architecture: adapter.architecture ?? '',
    description: adapter.description || (adapter.isFallbackAdapter ? 'fallback adapter' : ''),
    features: [...(adapter.features ?? [])].sort(),
    limits: { ...(adapter.limits ?? {}) },
  };
}

/**
 * The whole report. `bench` is the package module (for BENCH_SCHEMA, summarize, roofline), so
 * the statistics are the package's own.
 */
export function buildReport(bench, { info, settings, load, runs, kernels, userAgent, created, version }) {
  const summary = bench.summarize(runs);
  const copy = kernels.reduce((m, k) => Math.max(m, k.copy_gbps), 0);
  return {
    schema: bench.BENCH_SCHEMA,
    runtime: 'browser',
    created,
    webvlm_version: version,
    user_agent: userAgent,
    device: deviceFromAdapter(info.adapter),
    model: {
      source: info.url,
      model_type: info.modelType,
      quant: info.quant,
      file_bytes: info.bytes,
      decode_weight_bytes: info.decodeWeightBytes,
      context_length: info.contextLength,
      image_seq_len: info.imageSeqLen,
    },
    settings,
    load,
    runs,
    summary,
    roofline: bench.roofline(info.decodeWeightBytes, summary.decode_tokens_per_s.median, copy),
    kernels,
  };
}

/** What a comparison lines up: label, getter, unit, whether higher is better. */
export const COMPARED = [
  ['decode tok/s (median)', (r) => r.summary.decode_tokens_per_s.median, 'tok/s', true],
  ['prefill tok/s (median)', (r) => r.summary.prefill_tokens_per_s.median, 'tok/s', true],
  ['first token (median)', (r) => r.summary.ttft_ms.median, 'ms', false],
  ['image encode (median)', (r) => r.summary.encode_ms.median, 'ms', false],
  ['decode CV', (r) => r.summary.decode_tokens_per_s.cv, '', false],
  ['cold load', (r) => r.load.cold_ms, 'ms', false],
  ['warm load', (r) => r.load.warm_ms, 'ms', false],
  ['peak GPU memory', (r) => r.summary.peak_gpu_bytes, 'B', false],
  ['dispatches per token', (r) => r.summary.gpu_counts_per_token.dispatches, '', false],
  ['submissions per token', (r) => r.summary.gpu_counts_per_token.submissions, '', false],
  ['bytes read back per token', (r) => r.summary.gpu_counts_per_token.readback_bytes, 'B', false],
  ['implied bandwidth', (r) => r.roofline.implied_gbps, 'GB/s', true],
];

/** Rows `{ label, a, b, ratio, better }`: ratio = a / b (this run over the other). */
export function compareReports(a, b) {
  if (!b || typeof b !== 'object' || !b.summary || !b.load) throw new Error('not a webvlm benchmark report');
  return COMPARED.map(([label, get, unit, higherIsBetter]) => {
    const va = Number(get(a));
    const vb = Number(get(b));
    const ratio = vb !== 0 ? va / vb : NaN;
    const better = Number.isFinite(ratio) && ratio !== 1 ? (ratio > 1) === higherIsBetter : null;
    return { label, unit, a: va, b: vb, ratio, better };
  });
}

/** Reads a saved report (text) and checks it is one. */
export function parseReport(text) {
  const r = JSON.parse(text);
  if (typeof r?.schema !== 'string' || !r.schema.startsWith('webvlm.bench/')) throw new Error('not a webvlm benchmark report (no schema)');
  return r;
}

/** Page settings from the query string, with defaults. */
export function settingsFromQuery(search) {
  const q = new URLSearchParams(search);
  const int = (k, d, min, max) => {
    const v = Number.parseInt(q.get(k) ?? '', 10);
    return Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : d;
  };
  const flag = (k, d) => (q.has(k) ? q.get(k) !== '0' && q.get(k) !== 'false' : d);
  return {
    model: q.get('model') ?? '',
    runs: int('runs', 5, 1, 100),
    tokens: int('tokens', 32, 2, 1024),
    warmup: int('warmup', 1, 0, 10),
    image: flag('image', true),
    imageSize: int('size', 512, 16, 4096),
    splitting: q.has('splitting') ? flag('splitting', true) : null,
    kernels: flag('kernels', true),
    // Empty: the page's own prompt (one for an image, one for text alone).
    prompt: q.get('prompt') ?? '',
    autorun: flag('autorun', false),
  };
}

/** A GPU limit: power-of-two sizes in KiB / MiB / GiB, counts as they are. */
export function formatLimit(name, n) {
  if (!Number.isFinite(n)) return '–';
  if (!/Size$/.test(name)) return String(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${units[i]}`;
}

/** A number with `sig` significant digits (no exponent for the usual range), '–' when not finite. */
export function formatSig(v, sig = 3) {
  if (!Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  const digits = Math.max(0, sig - 1 - Math.floor(Math.log10(Math.abs(v))));
  return v.toFixed(Math.min(digits, 12));
}

export function formatBytes(n) {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
