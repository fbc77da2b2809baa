#!/usr/bin/env node
// Load time of a packed model in Debian's Chromium on SwiftShader WebGPU (the flags of
// tests/browser/harness.mjs): one cold load (download into OPFS, verify, upload), then warm
// loads from OPFS, each in a new page of the same browser context (what a returning visitor
// gets). Prints the medians as JSON: wall time of `WebVLM.load`, and its fetch (manifest +
// store checks) and upload (storage → GPU) parts.
//
//   node scripts/bench-load.mjs --models ~/.cache/webvlm/bench --model smolvlm-256m-q4 [--runs 3]
import path from 'node:path';
import { parseArgs } from 'node:util';
import { launch } from '../tests/browser/harness.mjs';
import { startServer } from './serve.mjs';

const { values: a } = parseArgs({
  options: {
    models: { type: 'string' },
    model: { type: 'string' },
    runs: { type: 'string', default: '3' },
  },
});
if (!a.models || !a.model) {
  console.error('usage: node scripts/bench-load.mjs --models DIR --model NAME [--runs 3]');
  process.exit(2);
}

const median = (v) => {
  const s = [...v].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const server = await startServer({ port: 0, models: [path.resolve(a.models)], quiet: true });
const browser = await launch();
try {
  const context = await browser.newContext();
  const url = new URL(`/models/${a.model}/`, server.url).href;
  const loadOnce = async () => {
    const page = await context.newPage();
    await page.goto(new URL('/web/package.json', server.url).href);
    const out = await page.evaluate(async (url) => {
      const api = await import('/web/dist/index.js');
      const t0 = performance.now();
      const vlm = await api.WebVLM.load(url);
      const wall = performance.now() - t0;
      const { timings, bytes } = vlm.info;
      await vlm.dispose();
      return { wall, ...timings, bytes };
    }, url);
    await page.close();
    return out;
  };
  const cold = await loadOnce();
  console.error(`cold: ${(cold.wall / 1000).toFixed(2)} s`);
  const warm = [];
  for (let i = 0; i < Number(a.runs); i++) {
    warm.push(await loadOnce());
    console.error(`warm ${i + 1}: ${(warm.at(-1).wall / 1000).toFixed(2)} s`);
  }
  console.log(JSON.stringify({
    model: a.model,
    bytes: cold.bytes,
    cold_ms: Math.round(cold.wall),
    warm_ms: Math.round(median(warm.map((w) => w.wall))),
    warm_fetch_ms: Math.round(median(warm.map((w) => w.fetchMs))),
    warm_upload_ms: Math.round(median(warm.map((w) => w.uploadMs))),
    runs: warm.length,
  }));
} finally {
  await browser.close();
  server.close();
}
