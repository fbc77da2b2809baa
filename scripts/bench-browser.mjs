#!/usr/bin/env node
// Runs the benchmark page (www/bench) headless in Debian's Chromium on SwiftShader WebGPU (the
// flags of tests/browser/harness.mjs) and writes its JSON report: the in-browser figures of the
// README come from here. A real GPU's figures come from opening /bench/ in a browser instead.
// scripts/bench-peers.mjs drives the page through `runBenchPage`.
//
//   node scripts/bench-browser.mjs --models ~/.cache/webvlm/bench --model smolvlm-256m-q4 \
//        [--runs 3] [--tokens 16] [--warmup 1] [--splitting 0|1] [--kernels 0|1] [--image 0|1] \
//        [--prompt TEXT] [--out report.json]
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { launch } from '../tests/browser/harness.mjs';
import { startServer } from './serve.mjs';

/**
 * Opens /bench/ of the server at `serverUrl` in a fresh context of `browser` with autorun, waits
 * for the page to finish (progress lines go to `log`) and returns `{ report, texts }`: the page's
 * report (`webvlm.bench/1`) and the text each measured run generated. `settings` are the page's
 * query parameters: `model` (a URL path), and optionally runs, tokens, warmup, kernels,
 * splitting, image, size, prompt (strings or numbers; absent ones keep the page's defaults).
 */
export async function runBenchPage(browser, serverUrl, settings, { timeoutMin = 120, log = (s) => console.error(s) } = {}) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && log(`[page] ${m.text()}`));
    const q = new URLSearchParams({ autorun: '1' });
    for (const [k, v] of Object.entries(settings)) if (v !== undefined && v !== null) q.set(k, String(v));
    await page.goto(new URL(`/bench/?${q}`, serverUrl).href);
    let last = '';
    const deadline = Date.now() + timeoutMin * 60_000;
    for (;;) {
      const [state, text] = await page.evaluate(() => [document.body.dataset.state, document.getElementById('progress').textContent]);
      if (text !== last) log(`${new Date().toISOString().slice(11, 19)} ${(last = text)}`);
      if (state === 'done') break;
      if (state === 'error') throw new Error(await page.textContent('#error'));
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 2000));
    }
    return await page.evaluate(() => ({ report: window.__benchReport, texts: window.__benchTexts ?? [] }));
  } finally {
    await context.close();
  }
}

async function main() {
  const { values: a } = parseArgs({
    options: {
      models: { type: 'string', multiple: true, default: [] },
      model: { type: 'string' },
      runs: { type: 'string', default: '3' },
      tokens: { type: 'string', default: '16' },
      warmup: { type: 'string', default: '1' },
      splitting: { type: 'string' },
      kernels: { type: 'string', default: '1' },
      image: { type: 'string' },
      prompt: { type: 'string' },
      out: { type: 'string' },
      'timeout-min': { type: 'string', default: '120' },
    },
  });
  if (!a.model) {
    console.error('usage: bench-browser.mjs --models DIR --model NAME [--runs N] [--tokens N] [--splitting 0|1] [--image 0|1] [--prompt TEXT] [--out FILE]');
    process.exit(2);
  }
  const server = await startServer({ port: 0, models: a.models.map((m) => path.resolve(m)), quiet: true });
  const browser = await launch();
  try {
    const { report } = await runBenchPage(
      browser,
      server.url,
      { model: `/models/${a.model}/`, runs: a.runs, tokens: a.tokens, warmup: a.warmup, kernels: a.kernels, splitting: a.splitting, image: a.image, prompt: a.prompt },
      { timeoutMin: Number(a['timeout-min']) },
    );
    const json = JSON.stringify(report, null, 2);
    if (a.out) fs.writeFileSync(a.out, `${json}\n`);
    else console.log(json);
    const s = report.summary;
    console.error(`decode ${s.decode_tokens_per_s.median.toFixed(3)} tok/s (cv ${(s.decode_tokens_per_s.cv * 100).toFixed(1)}%), prefill ${s.prefill_tokens_per_s.median.toFixed(2)} tok/s, first token ${s.ttft_ms.median.toFixed(0)} ms, encode ${s.encode_ms.median.toFixed(0)} ms`);
  } finally {
    await browser.close();
    await server.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) await main();
