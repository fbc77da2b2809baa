#!/usr/bin/env node
// Runs the benchmark page (www/bench) headless in Debian's Chromium on SwiftShader WebGPU (the
// flags of tests/browser/harness.mjs) and writes its JSON report: the in-browser figures of the
// README come from here. A real GPU's figures come from opening /bench/ in a browser instead.
//
//   node scripts/bench-browser.mjs --models ~/.cache/webvlm/bench --model smolvlm-256m-q4 \
//        [--runs 3] [--tokens 16] [--warmup 1] [--splitting 0|1] [--kernels 0|1] [--out report.json]
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { launch } from '../tests/browser/harness.mjs';
import { startServer } from './serve.mjs';

const { values: a } = parseArgs({
  options: {
    models: { type: 'string', multiple: true, default: [] },
    model: { type: 'string' },
    runs: { type: 'string', default: '3' },
    tokens: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '1' },
    splitting: { type: 'string' },
    kernels: { type: 'string', default: '1' },
    out: { type: 'string' },
    'timeout-min': { type: 'string', default: '120' },
  },
});
if (!a.model) {
  console.error('usage: bench-browser.mjs --models DIR --model NAME [--runs N] [--tokens N] [--splitting 0|1] [--out FILE]');
  process.exit(2);
}
const server = await startServer({ port: 0, models: a.models.map((m) => path.resolve(m)), quiet: true });
const browser = await launch();
try {
  const page = await browser.newPage();
  page.on('console', (m) => m.type() === 'error' && console.error(`[page] ${m.text()}`));
  const q = new URLSearchParams({ model: `/models/${a.model}/`, runs: a.runs, tokens: a.tokens, warmup: a.warmup, kernels: a.kernels, autorun: '1' });
  if (a.splitting !== undefined) q.set('splitting', a.splitting);
  await page.goto(new URL(`/bench/?${q}`, server.url).href);
  let last = '';
  const deadline = Date.now() + Number(a['timeout-min']) * 60_000;
  for (;;) {
    const [state, text] = await page.evaluate(() => [document.body.dataset.state, document.getElementById('progress').textContent]);
    if (text !== last) console.error(`${new Date().toISOString().slice(11, 19)} ${(last = text)}`);
    if (state === 'done') break;
    if (state === 'error') throw new Error(await page.textContent('#error'));
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 2000));
  }
  const report = await page.evaluate(() => window.__benchReport);
  const json = JSON.stringify(report, null, 2);
  if (a.out) fs.writeFileSync(a.out, `${json}\n`);
  else console.log(json);
  const s = report.summary;
  console.error(`decode ${s.decode_tokens_per_s.median.toFixed(3)} tok/s (cv ${(s.decode_tokens_per_s.cv * 100).toFixed(1)}%), prefill ${s.prefill_tokens_per_s.median.toFixed(2)} tok/s, first token ${s.ttft_ms.median.toFixed(0)} ms, encode ${s.encode_ms.median.toFixed(0)} ms`);
} finally {
  await browser.close();
  await server.close();
}
