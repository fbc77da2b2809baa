// Shared setup for the browser tests: the model server with fault injection, and Debian's
// Chromium with WebGPU on SwiftShader (flags from DEVELOPERS.md), driven by playwright-core.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from '../../scripts/serve.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURE = 'smolvlm-tiny-single';
export const GOLDENS = JSON.parse(fs.readFileSync(path.join(REPO, 'tests/fixtures', FIXTURE, 'goldens.json'), 'utf8'));
export const IMAGE_B64 = fs.readFileSync(path.join(REPO, 'tests/fixtures', FIXTURE, 'image.png')).toString('base64');
export const ARTIFACTS = path.join(REPO, 'test-results');

export const WEBGPU_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--disable-vulkan-surface',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export async function launch({ webgpu = true } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: webgpu ? WEBGPU_ARGS : WEBGPU_ARGS.filter((a) => !a.includes('webgpu') && !a.includes('vulkan') && !a.includes('Vulkan')),
  });
}

export async function serve() {
  const server = await startServer({ port: 0, models: [path.join(REPO, 'tests/fixtures/packed'), path.join(REPO, 'www/models')], quiet: true });
  const control = async (what, body) => {
    const res = await fetch(new URL(`/__test/${what}`, server.url), { method: 'POST', body: body ? JSON.stringify(body) : undefined, headers: { 'content-type': 'application/json' } });
    if (!res.ok) throw new Error(`${what}: HTTP ${res.status}`);
  };
  return {
    url: server.url,
    modelUrl: new URL('/models/smolvlm-tiny/', server.url).href,
    close: () => server.close(),
    reset: () => control('reset'),
    fault: (f) => control('fault', f),
    log: async () => (await fetch(new URL('/__test/log', server.url))).json(),
  };
}

/** A page of a fresh browser context (its own OPFS) on the server's origin, with console forwarding on failure. */
export async function openPage(browser, server, context) {
  const ctx = context ?? (await browser.newContext());
  const page = await ctx.newPage();
  const lines = [];
  page.on('console', (m) => lines.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`[pageerror] ${e.message}`));
  page.consoleLines = lines;
  await page.goto(new URL('/web/package.json', server.url).href);
  return { page, context: ctx };
}

/**
 * Runs `body` in the page with the package imported as `api` and helpers: `image()` gives the
 * fixture PNG (`b64`, by default the SmolVLM fixture's) as a Blob. Errors come back as
 * `{ error: { name, message } }`.
 */
export async function run(page, body, arg = {}, b64 = IMAGE_B64) {
  return page.evaluate(
    async ({ src, arg, b64 }) => {
      const api = await import('/web/dist/index.js');
      const image = () => new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/png' });
      const fn = new Function('api', 'arg', 'image', `return (${src})(api, arg, image);`);
      try {
        return await fn(api, arg, image);
      } catch (e) {
        return { error: { name: e?.name, message: e?.message } };
      }
    },
    { src: body.toString(), arg, b64 },
  );
}

export function weightRequests(log) {
  return log.filter((r) => /weights-\d+\.bin$/.test(r.path));
}
