// Bounded memory in the browser (Chromium, SwiftShader WebGPU): the engine runs in a worker that
// sees a device with 16 MiB bindings and buffers (its `limits` say so, and any buffer or binding
// over 16 MiB throws, where a real device of that size would fail validation). A 5 120-patch
// Qwen2-VL image and a 4 000-token Qwen2 prefill must give the same greedy tokens as on the
// full-size device. Each materialised attention layer would need 420 MB / 256 MB of scores.
//
// The packed fixtures' contexts (256 and 128 positions) and Qwen2-VL's pixel budget are widened
// in a copy of their manifests: no computation changes, only what the checks allow.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServer } from '../../scripts/serve.mjs';
import { REPO, launch, openPage, run, workerPatch } from './harness.mjs';

const T = { timeout: 900_000 };
const CAP = 16 << 20;

/** A copy of a packed fixture with its config (and processor config) edited, hashes redone. */
function widened(root, name, editConfig, editProcessor) {
  const from = path.join(REPO, 'tests/fixtures/packed', name);
  const to = path.join(root, name);
  fs.cpSync(from, to, { recursive: true });
  const manifest = JSON.parse(fs.readFileSync(path.join(to, 'manifest.json'), 'utf8'));
  editConfig(manifest.config);
  const rewrite = { 'config.json': manifest.config };
  if (editProcessor) {
    const p = JSON.parse(fs.readFileSync(path.join(to, 'preprocessor_config.json'), 'utf8'));
    editProcessor(p);
    rewrite['preprocessor_config.json'] = p;
  }
  for (const [file, json] of Object.entries(rewrite)) {
    const bytes = Buffer.from(JSON.stringify(json, null, 2));
    fs.writeFileSync(path.join(to, file), bytes);
    const asset = manifest.assets.find((a) => a.file === file);
    asset.bytes = bytes.length;
    asset.sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  }
  fs.writeFileSync(path.join(to, 'manifest.json'), JSON.stringify(manifest, null, 2));
}

let browser;
let server;
let root;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'webvlm-bounded-'));
  widened(root, 'qwen2-vl-tiny', (c) => (c.text_config.max_position_embeddings = 4096), (p) => (p.size.longest_edge = 256 * 320));
  widened(root, 'qwen2-tiny', (c) => (c.max_position_embeddings = 4096));
  browser = await launch();
  server = await startServer({ port: 0, models: [root], quiet: true });
});
after(async () => {
  await browser?.close();
  await server?.close();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/**
 * Greedy tokens of `request` on the model at `url`, in the standard worker or (cap) in one whose
 * device has `cap`-byte bindings. The image, when asked for, is drawn in the page (256 × 320).
 */
async function greedy(page, url, request, cap) {
  return run(
    page,
    async (api, arg, _image, patchedWorker) => {
      const worker = arg.patch ? patchedWorker(arg.patch) : undefined;
      let image;
      if (arg.withImage) {
        const canvas = new OffscreenCanvas(256, 320);
        const g = canvas.getContext('2d');
        const grad = g.createLinearGradient(0, 0, 256, 320);
        grad.addColorStop(0, '#1a5'), grad.addColorStop(0.5, '#f3c'), grad.addColorStop(1, '#38e');
        g.fillStyle = grad;
        g.fillRect(0, 0, 256, 320);
        for (let i = 0; i < 40; i++) {
          g.fillStyle = `hsl(${i * 37} 70% 50%)`;
          g.fillRect((i * 53) % 240, (i * 71) % 300, 16, 20);
        }
        image = await canvas.convertToBlob({ type: 'image/png' });
      }
      const vlm = await api.WebVLM.load(arg.url, worker ? { worker } : {});
      const ids = [];
      let last;
      for await (const chunk of vlm.generate({ prompt: arg.prompt, image, maxTokens: 3, ignoreEos: true })) {
        if (chunk.tokenId !== undefined) ids.push(chunk.tokenId);
        last = chunk;
      }
      const limits = vlm.info.adapter?.limits ?? {};
      await vlm.dispose();
      return { ids, promptTokens: last.usage.promptTokens, binding: limits.maxStorageBufferBindingSize };
    },
    { url: new URL(url, server.url).href, prompt: request.prompt, withImage: Boolean(request.image), patch: cap ? workerPatch({ cap }) : undefined },
  );
}

describe('bounded memory in the browser', () => {
  const cases = [
    { name: 'Qwen2-VL, a 5 120-patch image', url: '/models/qwen2-vl-tiny/', request: { prompt: 'Describe this picture.', image: true }, minTokens: 1280 },
    {
      name: 'Qwen2, a 4 000-token prefill',
      url: '/models/qwen2-tiny/',
      // Digits and letters tokenise to about a token each in the fixture's vocabulary.
      request: { prompt: Array.from({ length: 4000 }, (_, i) => 'abcdefghij0123456789'[(i * 7) % 20]).join('') },
      minTokens: 4000,
    },
  ];
  for (const c of cases) {
    test(`${c.name}: the same tokens with 16 MiB bindings, none larger used`, T, async () => {
      const { page } = await openPage(browser, server);
      const full = await greedy(page, c.url, c.request);
      assert.equal(full.error, undefined, JSON.stringify(full.error));
      const small = await greedy(page, c.url, c.request, CAP);
      assert.equal(small.error, undefined, `${JSON.stringify(small.error)}\n${page.consoleLines.join('\n')}`);
      assert.equal(small.binding, CAP, 'the engine saw the capped limit');
      assert.ok(full.promptTokens >= c.minTokens && full.promptTokens <= 4096, `${full.promptTokens} prompt tokens`);
      assert.equal(small.promptTokens, full.promptTokens);
      assert.deepEqual(small.ids, full.ids, 'greedy tokens with 16 MiB bindings equal those with the full device');
      await page.context().close();
    });
  }

  // Past what splitting weights by rows can give (a 4 000-row activation alone is more than
  // 256 KiB), the engine refuses by name before any launch: OutOfMemoryError, not a trap.
  test('a 4 000-token prefill on a device of 256 KiB bindings is an OutOfMemoryError', T, async () => {
    const { page } = await openPage(browser, server);
    const c = cases[1];
    const tiny = await greedy(page, c.url, c.request, 256 << 10);
    assert.equal(tiny.error?.name, 'OutOfMemoryError', JSON.stringify(tiny));
    assert.match(tiny.error.message, /binding/);
    await page.context().close();
  });
});
