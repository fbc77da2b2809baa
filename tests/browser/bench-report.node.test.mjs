// The benchmark page's pure helpers (www/bench/report.js) and the package's statistics
// (web/src/bench.ts), without a browser.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import * as bench from '../../web/dist/bench.js';
import { VERSION } from '../../web/dist/index.js';
import { aggregateLongTasks, buildReport, compareReports, parseReport, runFromUsage, settingsFromQuery } from '../../www/bench/report.js';

const usage = (decode, extra = {}) => ({
  promptTokens: 90,
  completionTokens: 8,
  reusedTokens: 0,
  imageTokens: 64,
  peakGpuBytes: 5e8,
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
});

test('the package version constant is the package.json version', () => {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../web/package.json', import.meta.url), 'utf8'));
  assert.equal(VERSION, pkg.version);
});
