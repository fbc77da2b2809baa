// The package as a developer consumes it: `import { WebVLM } from 'webvlm'` in an app bundled by
// Vite (worker and wasm as emitted assets), served from the build output, run in Chromium.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { build } from 'vite';
import { startServer } from '../../scripts/serve.mjs';
import { FIXTURE, GOLDENS, REPO, launch } from './harness.mjs';

test('a Vite-built app loads the package, its worker and wasm, and generates the golden tokens', { timeout: 600_000 }, async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'webvlm-vite-'));
  const app = path.join(REPO, 'tests/browser/vite-app');
  await build({ root: app, configFile: path.join(app, 'vite.config.mjs'), build: { outDir: path.join(root, 'www') } });
  const assets = fs.readdirSync(path.join(root, 'www/assets'));
  assert.ok(assets.some((f) => /^worker-.*\.js$/.test(f)), `the worker is emitted: ${assets}`);
  assert.ok(assets.some((f) => f.endsWith('.wasm')), `the wasm is emitted: ${assets}`);

  const server = await startServer({ port: 0, root, models: [path.join(REPO, 'tests/fixtures/packed')], quiet: true });
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready');
    const png = [...fs.readFileSync(path.join(REPO, 'tests/fixtures', FIXTURE, 'image.png'))];
    const ids = await page.evaluate(
      ({ url, png, prompt }) => window.ask(url, new Uint8Array(png), prompt, 3),
      { url: new URL('/models/smolvlm-tiny/', server.url).href, png, prompt: GOLDENS.prompt },
    );
    assert.deepEqual(ids, GOLDENS.greedy_tokens.slice(0, 3));
  } finally {
    await browser.close();
    await server.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
