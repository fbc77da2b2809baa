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

describe('benchmark page', () => {
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
    }
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
