// The benchmark page's pure helpers (www/bench/report.js) and the package's statistics
// (web/src/bench.ts), without a browser.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import * as bench from '../../web/dist/bench.js';
import { VERSION } from '../../web/dist/index.js';
import { aggregateLongTasks, buildReport, compareReports, formatLimit, formatSig, parseReport, runFromUsage, settingsFromQuery } from '../../www/bench/report.js';

const usage = (decode, extra = {}) => ({
  promptTokens: 90,
  completionTokens: 8,
  reusedTokens: 0,
  imageTokens: 64,
  peakGpuBytes: 5e8,
  gpuCounts: {
    encode: { dispatches: 92, submissions: 3, readbackBytes: 0, syncs: 1 },
    prefill: { dispatches: 700, submissions: 3, readbackBytes: 4, syncs: 1 },
    perToken: { dispatches: 190, submissions: 1, readbackBytes: 4, syncs: 1 },
  },
  timings: { imageMs: 3, prepareMs: 7, encodeMs: 400, prefillMs: 900, firstTokenMs: 1320, decodeMs: 7000 / decode, decodeTokensPerSecond: decode },
  ...extra,
});

const info = {
  url: 'http://x/models/m/',
  modelType: 'idefics3',
  quant: 'q4',
  family: 'vlm',
  contextLength: 8192,
  imageSeqLen: 64,
  vocabSize: 49280,
  decodeWeightBytes: 80e6,
  imageSplitting: true,
  bytes: 2e8,
  adapter: { vendor: 'v', architecture: 'a', description: '', features: ['subgroups', 'shader-f16'], limits: { maxBufferSize: 1 }, isFallbackAdapter: true },
  timings: { fetchMs: 1, uploadMs: 1 },
};

test('stat: median, extremes and coefficient of variation', () => {
  assert.deepEqual(bench.stat([]), { median: 0, min: 0, max: 0, cv: 0 });
  const s = bench.stat([3, 1, 2]);
  assert.equal(s.median, 2);
  assert.equal(s.min, 1);
  assert.equal(s.max, 3);
  assert.ok(Math.abs(s.cv - Math.sqrt(2 / 3) / 2) < 1e-12);
  assert.equal(bench.stat([1, 2, 3, 10]).median, 2.5);
});

test('drift compares the second half of the runs with the first (the Rust twin agrees)', () => {
  assert.equal(bench.drift([10]), 0);
  assert.ok(Math.abs(bench.drift([10, 10, 8, 8]) + 0.2) < 1e-12);
  assert.ok(Math.abs(bench.drift([10, 99, 5]) + 0.5) < 1e-12);
});

test('a run maps usage fields; prefill rate counts only the prefilled tokens', () => {
  const r = runFromUsage(usage(4, { reusedTokens: 30 }), { count: 1, total_ms: 60, max_ms: 60 });
  assert.equal(r.image_ms, 10);
  assert.equal(r.encode_ms, 400);
  assert.equal(r.prefill_tokens_per_s, (60 * 1000) / 900);
  assert.equal(r.ttft_ms, 1320);
  assert.equal(r.decode_tokens_per_s, 4);
  assert.equal(r.image_tokens, 64);
  assert.deepEqual(r.long_tasks, { count: 1, total_ms: 60, max_ms: 60 });
  assert.deepEqual(r.gpu_counts.encode, { dispatches: 92, submissions: 3, readback_bytes: 0, syncs: 1 });
});

test('long tasks aggregate to count, total and longest', () => {
  assert.deepEqual(aggregateLongTasks([]), { count: 0, total_ms: 0, max_ms: 0 });
  assert.deepEqual(aggregateLongTasks([{ duration: 60 }, { duration: 120 }]), { count: 2, total_ms: 180, max_ms: 120 });
});

test('the report has the shared schema, summary and roofline; a comparison gives ratios', () => {
  const runs = [usage(4), usage(5), usage(6)].map((u) => runFromUsage(u, null));
  const kernels = [{ name: 'k', scheme: 'q4', m: 1, n: 2, k: 3, kernel: 'x', us_per_call: 1, gbps: 1, copy_gbps: 4, ratio: 0.25 }];
  const settings = { prompt: 'p', image_width: 512, image_height: 512, image_splitting: true, max_new_tokens: 8, runs: 3, warmup_runs: 1 };
  const report = buildReport(bench, { info, settings, load: { cold_ms: 5, warm_ms: 2 }, runs, kernels, userAgent: 'ua', created: '2026-11-24T00:00:00Z', version: VERSION });
  assert.equal(report.schema, 'webvlm.bench/1');
  assert.equal(report.runtime, 'browser');
  assert.equal(report.summary.decode_tokens_per_s.median, 5);
  assert.equal(report.summary.peak_gpu_bytes, 5e8);
  assert.ok(Math.abs(report.roofline.implied_gbps - 0.4) < 1e-12);
  assert.equal(report.roofline.copy_gbps, 4);
  assert.deepEqual(report.device.features, ['shader-f16', 'subgroups']);
  assert.equal(report.model.decode_weight_bytes, 80e6);
  const rows = compareReports(report, parseReport(JSON.stringify(report)));
  assert.ok(rows.every((r) => r.ratio === 1 || Number.isNaN(r.ratio)), JSON.stringify(rows));
  const faster = structuredClone(report);
  faster.summary.decode_tokens_per_s.median = 10;
  const decode = compareReports(report, faster).find((r) => r.label.startsWith('decode tok/s'));
  assert.equal(decode.ratio, 0.5);
  assert.equal(decode.better, false);
  assert.throws(() => parseReport('{"a":1}'), /not a webvlm benchmark report/);
  assert.throws(() => compareReports(report, { schema: 'webvlm.bench/1' }), /not a webvlm benchmark report/);
});

test('query settings clamp and default', () => {
  const q = settingsFromQuery('?model=/m/&runs=0&tokens=9999&splitting=0&kernels=0&autorun=1');
  assert.equal(q.model, '/m/');
  assert.equal(q.runs, 1);
  assert.equal(q.tokens, 1024);
  assert.equal(q.splitting, false);
  assert.equal(q.kernels, false);
  assert.equal(q.autorun, true);
  assert.equal(settingsFromQuery('').splitting, null);
  assert.equal(settingsFromQuery('').warmup, 1);
  assert.equal(settingsFromQuery('').prompt, '', 'no prompt: the page picks its own');
  assert.equal(settingsFromQuery('?prompt=What+is+the+capital+of+France%3F&image=0').prompt, 'What is the capital of France?');
});

test('roofline: implied bandwidth from bytes per token and decode rate; fraction of the copy kernel', () => {
  assert.deepEqual(bench.roofline(80e6, 12.5, 4), { weight_bytes_per_token: 80e6, implied_gbps: 1, copy_gbps: 4, fraction_of_copy: 0.25 });
  assert.equal(bench.roofline(80e6, 12.5, 0).fraction_of_copy, 0, 'no kernel bench: 0, not Infinity');
});

test('summarize: stats per metric, drift of decode, highest peak memory', () => {
  const runs = [4, 6, 5, 7].map((d, i) => runFromUsage(usage(d, { peakGpuBytes: 100 + i }), null));
  const s = bench.summarize(runs);
  assert.deepEqual(s.decode_tokens_per_s, bench.stat([4, 6, 5, 7]));
  assert.equal(s.decode_tokens_per_s.median, 5.5);
  assert.ok(Math.abs(s.decode_drift - (6 / 5 - 1)) < 1e-12);
  assert.equal(s.encode_ms.median, 400);
  assert.equal(s.encode_ms.cv, 0);
  assert.equal(s.peak_gpu_bytes, 103);
  assert.deepEqual(bench.summarize([]).decode_tokens_per_s, { median: 0, min: 0, max: 0, cv: 0 });
});

test('a run without a prefill (all reused) has rate 0, not NaN; a text run has no image time', () => {
  const r = runFromUsage(usage(4, { reusedTokens: 90, imageTokens: 0, timings: { imageMs: 0, prepareMs: 2, encodeMs: 0, prefillMs: 0, firstTokenMs: 5, decodeMs: 10, decodeTokensPerSecond: 4 } }), null);
  assert.equal(r.prefill_tokens_per_s, 0);
  assert.equal(r.image_ms, 2);
  assert.equal(r.encode_ms, 0);
  assert.equal(r.long_tasks, null);
});

test('the comparison marks better and worse by direction and survives a zero', () => {
  const runs = [runFromUsage(usage(4), null)];
  const settings = { prompt: 'p', image_width: 0, image_height: 0, image_splitting: false, max_new_tokens: 8, runs: 1, warmup_runs: 0 };
  const a = buildReport(bench, { info, settings, load: { cold_ms: 100, warm_ms: 50 }, runs, kernels: [], userAgent: null, created: 'x', version: 'v' });
  assert.equal(a.roofline.copy_gbps, 0, 'no kernel rows: copy not measured');
  const b = structuredClone(a);
  b.load.cold_ms = 200;
  b.summary.ttft_ms.median = 2 * a.summary.ttft_ms.median;
  b.roofline.implied_gbps = 0;
  const rows = Object.fromEntries(compareReports(a, b).map((r) => [r.label, r]));
  assert.equal(rows['cold load'].ratio, 0.5);
  assert.equal(rows['cold load'].better, true, 'a shorter load is better');
  assert.equal(rows['first token (median)'].better, true);
  assert.equal(rows['decode tok/s (median)'].ratio, 1);
  assert.equal(rows['decode tok/s (median)'].better, null);
  assert.ok(Number.isNaN(rows['implied bandwidth'].ratio));
  assert.equal(rows['implied bandwidth'].better, null);
});

test('limits and figures format for people', () => {
  assert.equal(formatLimit('maxBufferSize', 2 ** 30), '1 GiB');
  assert.equal(formatLimit('maxStorageBufferBindingSize', 134217728), '128 MiB');
  assert.equal(formatLimit('maxComputeWorkgroupStorageSize', 16384), '16 KiB');
  assert.equal(formatLimit('maxComputeInvocationsPerWorkgroup', 256), '256');
  assert.equal(formatSig(0.0003145518), '0.000315');
  assert.equal(formatSig(1.16), '1.16');
  assert.equal(formatSig(123.456), '123');
  assert.equal(formatSig(0), '0');
  assert.equal(formatSig(NaN), '–');
});

test('the package version constant is the package.json version', () => {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../web/package.json', import.meta.url), 'utf8'));
  assert.equal(VERSION, pkg.version);
});
