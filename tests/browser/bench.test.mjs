// The benchmark page (www/bench) end to end in Chromium on SwiftShader WebGPU with the tiny
// fixture: every metric present, positive where it must be and consistent with the runs; the
// same JSON schema as the native `webvlm bench --model`; export and compare. Artefacts:
// test-results/bench-browser.json, bench-native.json, bench.png.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, REPO, launch, serve } from './harness.mjs';
import { stat } from '../../web/dist/bench.js';

const T = { timeout: 900_000 };
const RUNS = 3;
const TOKENS = 4;
let browser;
let server;
let page;
let report;

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launch();
  server = await serve();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

/** Every key path with the type found there; null matches any type (fields a runtime cannot observe). */
function shape(v, at = '$', out = new Map()) {
  if (v === null) out.set(at, 'null');
  else if (Array.isArray(v)) {
    out.set(at, 'array');
    if (v.length) shape(v[0], `${at}[]`, out);
  } else if (typeof v === 'object') {
    out.set(at, 'object');
    // `limits` is a map whose keys are the adapter's.
    if (at.endsWith('.limits')) return out;
    for (const [k, x] of Object.entries(v)) shape(x, `${at}.${k}`, out);
  } else out.set(at, typeof v);
  return out;
}

const close = (a, b, what) => assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

/**
 * A stand-in for the package (served in place of /web/dist/index.js): the real statistics from
 * bench.js, a WebVLM that records its calls in `window.__stubCalls`, answers with known usage
 * (decode rate 10 + k on the k-th generation) and blocks the main thread for 120 ms in each
 * generation (a long task). With a model URL containing `fail` the second generation throws.
 */
const STUB = `
export * from '/web/dist/bench.js';
export const VERSION = '0.0.0-stub';
const calls = (globalThis.__stubCalls = []);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export class WebVLM {
  static cache = { delete: async (url) => { calls.push(['cache.delete', url]); return true; } };
  static async load(url, options = {}) {
    calls.push(['load', url]);
    options.onProgress?.({ phase: 'download', loaded: 1, total: 2, fromCache: false });
    await sleep(5);
    return new WebVLM(url);
  }
  constructor(url) {
    this.n = 0;
    this.url = url;
    this.info = {
      url, modelType: 'idefics3', quant: 'q4', family: 'vlm', contextLength: 8192, imageSeqLen: 64, vocabSize: 49280,
      decodeWeightBytes: 80e6, imageSplitting: true, bytes: 2e8,
      adapter: { vendor: 'stub-vendor', architecture: 'stub-arch', description: 'Stub GPU', features: ['subgroups', 'shader-f16'],
        limits: { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 }, isFallbackAdapter: false },
      timings: { fetchMs: 1, uploadMs: 1 },
    };
  }
  async *generate(req) {
    const k = ++this.n;
    calls.push(['generate', { prompt: req.prompt, image: req.image instanceof Blob ? req.image.type : null, maxTokens: req.maxTokens, ignoreEos: req.ignoreEos, imageSplitting: req.imageSplitting }]);
    await sleep(0);
    if (k === 2 && this.url.includes('fail')) throw Object.assign(new Error('stub: the GPU device was lost'), { name: 'DeviceLostError' });
    const t0 = performance.now();
    while (performance.now() - t0 < 120) {}
    await sleep(0);
    for (let i = 0; i < req.maxTokens; i++) yield { text: 'x', tokenId: i, done: false };
    const rate = 10 + k;
    yield { text: '', done: true, finishReason: 'length', usage: {
      promptTokens: 100, completionTokens: req.maxTokens, reusedTokens: 0, imageTokens: 64, peakGpuBytes: 1e8 + k,
      gpuCounts: {
        encode: { dispatches: 90 + k, submissions: 3, readbackBytes: 0, syncs: 1 },
        prefill: { dispatches: 600 + k, submissions: 2, readbackBytes: 4, syncs: 1 },
        perToken: { dispatches: 200 + k, submissions: 1, readbackBytes: 4, syncs: 1 },
      },
      timings: { imageMs: 2, prepareMs: 3, encodeMs: 40 + k, prefillMs: 50, firstTokenMs: 100 + k, decodeMs: ((req.maxTokens - 1) * 1000) / rate, decodeTokensPerSecond: rate },
    } };
  }
  async reset() { calls.push(['reset']); }
  async benchKernels(options) {
    calls.push(['benchKernels', options]);
    return [
      { name: 'smolvlm-256m gate/up', scheme: 'q4', m: 1, n: 1536, k: 576, kernel: 'matvec_q4/stub', us_per_call: 10, gbps: 20, copy_gbps: 40, ratio: 0.5 },
      { name: 'smolvlm-256m lm_head', scheme: 'q4', m: 1, n: 49280, k: 576, kernel: 'matvec_q4/stub', us_per_call: 100, gbps: 30, copy_gbps: 50, ratio: 0.6 },
    ];
  }
  async dispose() { calls.push(['dispose']); }
}
`;

async function stubPage(width = 390) {
  const context = await browser.newContext({ viewport: { width, height: 800 } });
  await context.route('**/web/dist/index.js', (route) => route.fulfill({ contentType: 'text/javascript', body: STUB }));
  const p = await context.newPage();
  const lines = [];
  p.on('console', (m) => lines.push(`[${m.type()}] ${m.text()}`));
  p.on('pageerror', (e) => lines.push(`[pageerror] ${e.message}`));
  p.consoleLines = lines;
  return p;
}

// The page's own logic (order of calls, usage → runs, long tasks, summary, layout, compare) in
// seconds, with the package stubbed: it needs no WebGPU and fails apart from the engine.
describe('benchmark page, stub package', () => {
  test('drives cold load, warm load, warm-up, reset before each run, kernels; maps usage exactly', T, async () => {
    const p = await stubPage();
    const q = new URLSearchParams({ model: '/models/stub/', runs: 4, tokens: 5, warmup: 2, splitting: 0, kernels: 1, autorun: 1 });
    await p.goto(new URL(`/bench/?${q}`, server.url).href);
    await p.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 60_000 });
    assert.equal(await p.evaluate(() => document.body.dataset.state), 'done', `${await p.textContent('#error')}\n${p.consoleLines.join('\n')}`);
    const calls = await p.evaluate(() => window.__stubCalls);
    const url = new URL('/models/stub/', server.url).href;
    const kinds = calls.map(([k]) => k);
    assert.deepEqual(kinds, ['cache.delete', 'load', 'dispose', 'load', ...Array(6).fill(['reset', 'generate']).flat(), 'benchKernels', 'dispose']);
    assert.deepEqual(calls.filter(([k]) => k === 'load' || k === 'cache.delete').map(([, u]) => u), [url, url, url]);
    for (const [k, g] of calls) {
      if (k === 'generate') assert.deepEqual(g, { prompt: 'Describe this image in detail.', image: 'image/png', maxTokens: 5, ignoreEos: true, imageSplitting: false });
    }

    const r = await p.evaluate(() => window.__benchReport);
    assert.deepEqual(JSON.parse(await p.textContent('#report-json')), r);
    assert.equal(r.schema, 'webvlm.bench/1');
    assert.equal(r.runtime, 'browser');
    assert.equal(r.webvlm_version, '0.0.0-stub');
    assert.deepEqual(r.device, {
      backend: 'webgpu', vendor: 'stub-vendor', architecture: 'stub-arch', description: 'Stub GPU', features: ['shader-f16', 'subgroups'],
      limits: { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 },
    });
    assert.deepEqual(r.model, { source: url, model_type: 'idefics3', quant: 'q4', file_bytes: 2e8, decode_weight_bytes: 80e6, context_length: 8192, image_seq_len: 64 });
    assert.deepEqual(r.settings, { prompt: 'Describe this image in detail.', image_width: 512, image_height: 512, image_splitting: false, max_new_tokens: 5, runs: 4, warmup_runs: 2 });
    assert.ok(r.load.cold_ms > 0 && r.load.warm_ms > 0);
    // Generations 1-2 were the warm-up: the runs are generations 3-6.
    assert.deepEqual(r.runs.map((x) => x.decode_tokens_per_s), [13, 14, 15, 16]);
    assert.deepEqual(r.runs.map((x) => x.encode_ms), [43, 44, 45, 46]);
    for (const x of r.runs) {
      assert.equal(x.image_ms, 5);
      assert.equal(x.prefill_tokens_per_s, 2000);
      assert.equal(x.generated_tokens, 5);
      assert.ok(x.long_tasks, 'Chromium has the Long Tasks API');
      assert.ok(x.long_tasks.count >= 1 && x.long_tasks.max_ms >= 100 && x.long_tasks.total_ms >= x.long_tasks.max_ms, JSON.stringify(x.long_tasks));
    }
    assert.equal(r.summary.decode_tokens_per_s.median, 14.5);
    close(r.summary.decode_drift, 15.5 / 13.5 - 1, 'drift');
    assert.equal(r.summary.peak_gpu_bytes, 1e8 + 6);
    assert.equal(r.roofline.copy_gbps, 50);
    close(r.roofline.implied_gbps, (80e6 * 14.5) / 1e9, 'implied');
    close(r.roofline.fraction_of_copy, (80e6 * 14.5) / 1e9 / 50, 'fraction');
    assert.equal(r.kernels.length, 2);

    assert.match(await p.textContent('#device'), /stub-vendor · stub-arch · Stub GPU[\s\S]*shader-f16: yes · subgroups: yes[\s\S]*maxBufferSize 1 GiB/);
    assert.match(await p.textContent('#summary'), /Roofline: .*1\.16 GB\/s; copy kernel 50\.0 GB\/s/);
    assert.equal(await p.locator('#runs-table tr').count(), 5);
    assert.equal(await p.locator('#charts svg').count(), 2);
    assert.equal(await p.locator('#charts svg rect.bar').count(), 4);
    assert.equal(await p.textContent('#progress'), 'Done.');
    assert.ok(!(await p.isDisabled('#run')) && !(await p.isDisabled('#export')));
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `the page is no wider than a phone (${width} px): wide tables scroll in their card`);
    await p.screenshot({ path: path.join(ARTIFACTS, 'bench-stub.png'), fullPage: true });

    // Compare with a slower saved run: ratios and better/worse.
    const saved = structuredClone(r);
    saved.summary.decode_tokens_per_s.median = 29;
    saved.load.cold_ms = r.load.cold_ms * 2;
    await p.setInputFiles('#compare-file', { name: 'saved.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(saved)) });
    await p.waitForSelector('#compare-table');
    const rows = await p.$$eval('#compare-table tr', (trs) => trs.slice(1).map((tr) => [tr.cells[0].textContent, Number(tr.cells[3].dataset.ratio), tr.cells[3].className, tr.cells[3].textContent]));
    const byLabel = Object.fromEntries(rows.map(([l, ...rest]) => [l, rest]));
    assert.deepEqual(byLabel['decode tok/s (median)'], [0.5, 'worse', '0.50×']);
    assert.deepEqual(byLabel['cold load'], [0.5, 'better', '0.50×']);
    assert.deepEqual(byLabel['warm load'], [1, '', '1.00×']);
    assert.equal(await p.locator('#charts svg').nth(1).locator('rect.stage').count(), 4 * 2 + 4, 'two stacked bars and the legend');
    await p.context().close();
  });

  test('a failed run shows the error, ends in data-state error and frees the model', T, async () => {
    const p = await stubPage();
    await p.goto(new URL('/bench/?model=/models/fail/&runs=2&tokens=2&warmup=0&kernels=0&autorun=1', server.url).href);
    await p.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 60_000 });
    assert.equal(await p.evaluate(() => document.body.dataset.state), 'error');
    assert.match(await p.textContent('#error'), /DeviceLostError: stub: the GPU device was lost/);
    assert.ok(await p.isVisible('#error'));
    assert.deepEqual((await p.evaluate(() => window.__stubCalls)).map(([k]) => k), ['cache.delete', 'load', 'dispose', 'load', 'reset', 'generate', 'reset', 'generate', 'dispose']);
    assert.equal(await p.evaluate(() => window.__benchReport), undefined);
    assert.ok(!(await p.isDisabled('#run')), 'the run button comes back');
    await p.context().close();
  });
});

describe('benchmark page, WebGPU on the tiny fixture', () => {
  test('runs headless on the fixture and reports every metric, consistently', T, async () => {
    page = await (await browser.newContext({ viewport: { width: 420, height: 900 } })).newPage();
    const lines = [];
    page.on('console', (m) => lines.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => lines.push(`[pageerror] ${e.message}`));
    const q = new URLSearchParams({ model: server.modelUrl, runs: RUNS, tokens: TOKENS, warmup: 1, size: 96, kernels: 1, autorun: 1 });
    await page.goto(new URL(`/bench/?${q}`, server.url).href);
    await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 840_000 });
    const state = await page.evaluate(() => document.body.dataset.state);
    assert.equal(state, 'done', `${await page.textContent('#error')}\n${lines.join('\n')}`);
    report = await page.evaluate(() => window.__benchReport);
    fs.writeFileSync(path.join(ARTIFACTS, 'bench-browser.json'), JSON.stringify(report, null, 2));
    await page.screenshot({ path: path.join(ARTIFACTS, 'bench.png'), fullPage: true });

    assert.equal(report.schema, 'webvlm.bench/1');
    assert.equal(report.runtime, 'browser');
    assert.match(report.user_agent, /Chrome/);
    assert.equal(report.device.backend, 'webgpu');
    assert.ok(report.device.features.includes('subgroups'), 'SwiftShader offers subgroups');
    assert.ok(report.device.limits.maxStorageBufferBindingSize > 0);
    assert.equal(report.model.quant, 'f16');
    assert.ok(report.model.decode_weight_bytes > 0 && report.model.file_bytes > report.model.decode_weight_bytes);
    assert.ok(report.load.cold_ms > 0 && report.load.warm_ms > 0);
    assert.equal(report.settings.runs, RUNS);
    assert.equal(report.settings.image_width, 96);
    assert.equal(report.runs.length, RUNS);
    for (const r of report.runs) {
      assert.equal(r.generated_tokens, TOKENS, 'ignoreEos: every requested token is generated');
      assert.ok(r.prompt_tokens > r.image_tokens && r.image_tokens > 0, JSON.stringify(r));
      for (const k of ['image_ms', 'encode_ms', 'prefill_ms', 'prefill_tokens_per_s', 'ttft_ms', 'decode_ms', 'decode_tokens_per_s', 'peak_gpu_bytes']) {
        assert.ok(Number.isFinite(r[k]) && r[k] > 0, `runs[].${k} = ${r[k]}`);
      }
      assert.ok(r.ttft_ms >= r.encode_ms + r.prefill_ms, 'the first token comes after encode and prefill');
      close(r.decode_tokens_per_s, ((TOKENS - 1) * 1000) / r.decode_ms, 'decode rate = (tokens − 1) / decode time');
      assert.ok(r.long_tasks && Number.isInteger(r.long_tasks.count) && r.long_tasks.max_ms <= r.long_tasks.total_ms + 1e-9);
      // Counted at the WebGPU API in the worker: a greedy token reads back its 4-byte id only.
      const t = r.gpu_counts.per_token;
      assert.ok(t.dispatches > 0 && t.submissions >= 1, JSON.stringify(r.gpu_counts));
      assert.equal(t.readback_bytes, 4, 'a greedy token reads back 4 bytes');
      assert.equal(t.syncs, 1, 'one wait on the GPU per token');
      assert.ok(r.gpu_counts.prefill.dispatches > t.dispatches, JSON.stringify(r.gpu_counts));
      assert.ok(r.gpu_counts.encode.dispatches > 0 && r.gpu_counts.encode.readback_bytes === 0, 'the encode stays on the GPU: ' + JSON.stringify(r.gpu_counts));
    }
    assert.deepEqual(report.summary.gpu_counts_per_token, report.runs[0].gpu_counts.per_token, 'the counts are the same every run');
    for (const [key, field] of [['decode_tokens_per_s', 'decode_tokens_per_s'], ['prefill_tokens_per_s', 'prefill_tokens_per_s'], ['ttft_ms', 'ttft_ms'], ['encode_ms', 'encode_ms']]) {
      const want = stat(report.runs.map((r) => r[field]));
      const got = report.summary[key];
      for (const k of ['median', 'min', 'max', 'cv']) close(got[k], want[k], `summary.${key}.${k}`);
      assert.ok(got.min <= got.median && got.median <= got.max);
    }
    assert.equal(report.summary.peak_gpu_bytes, Math.max(...report.runs.map((r) => r.peak_gpu_bytes)));
    assert.ok(report.kernels.length > 0);
    for (const k of report.kernels) assert.ok(k.scheme === 'q4' && k.us_per_call > 0 && k.gbps > 0 && k.copy_gbps > 0 && k.ratio > 0, JSON.stringify(k));
    close(report.roofline.implied_gbps, (report.roofline.weight_bytes_per_token * report.summary.decode_tokens_per_s.median) / 1e9, 'roofline');
    close(report.roofline.copy_gbps, Math.max(...report.kernels.map((k) => k.copy_gbps)), 'roofline copy');
    assert.ok(report.roofline.fraction_of_copy > 0);
    assert.equal(await page.locator('#runs-table tr').count(), RUNS + 1);
    assert.equal(await page.locator('#charts svg').count(), 2);
  });

  test('the native `webvlm bench --model` writes the same schema', T, async () => {
    assert.ok(report, 'the page test ran');
    const bin = path.join(REPO, 'target/release/webvlm');
    const out = path.join(ARTIFACTS, 'bench-native.json');
    execFileSync(bin, ['bench', '--model', path.join(REPO, 'tests/fixtures/packed/smolvlm-tiny'), '--runs', '2', '--warmup', '0', '--max-new-tokens', String(TOKENS), '--image-size', '96', '--json', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    const native = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(native.runtime, 'native');
    const a = shape(report);
    const b = shape(native);
    const nullable = [];
    for (const k of new Set([...a.keys(), ...b.keys()])) {
      if (a.get(k) === 'null' || b.get(k) === 'null') {
        nullable.push(k);
        continue;
      }
      if (k.startsWith('$.runs[].long_tasks.') || k.startsWith('$.kernels[]')) {
        if (!a.has(k) || !b.has(k)) continue;
      }
      assert.equal(a.get(k), b.get(k), `${k}: browser ${a.get(k)}, native ${b.get(k)}`);
    }
    assert.deepEqual(nullable.sort(), ['$.runs[].long_tasks', '$.user_agent'], 'only what a runtime cannot observe is null');
  });

  test('exported JSON loads back into Compare and shows ratios', T, async () => {
    assert.ok(report, 'the page test ran');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
    const saved = path.join(ARTIFACTS, 'bench-export.json');
    await download.saveAs(saved);
    assert.deepEqual(JSON.parse(fs.readFileSync(saved, 'utf8')), report);
    await page.setInputFiles('#compare-file', saved);
    await page.waitForSelector('#compare-table');
    const ratios = await page.$$eval('#compare-table td[data-ratio]', (tds) => tds.map((td) => Number(td.dataset.ratio)));
    assert.ok(ratios.length >= 8);
    assert.ok(ratios.every((r) => r === 1 || Number.isNaN(r)), JSON.stringify(ratios));
    assert.equal(await page.locator('#charts svg .other').count(), 1, 'the saved median is drawn on the decode chart');
    await page.setInputFiles('#compare-file', { name: 'bad.json', mimeType: 'application/json', buffer: Buffer.from('{"hello":1}') });
    await page.waitForFunction(() => document.body.dataset.state === 'error');
    assert.match(await page.textContent('#error'), /not a webvlm benchmark report/);
  });
});
