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

/** WebGPU's default limits: what a device gets when it asks for none, and what many phones offer. */
export const DEFAULT_LIMITS = {
  maxStorageBufferBindingSize: 134217728,
  maxBufferSize: 268435456,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupSizeZ: 64,
  maxComputeWorkgroupsPerDimension: 65535,
  maxStorageBuffersPerShaderStage: 8,
  maxUniformBufferBindingSize: 65536,
  maxBindGroups: 4,
};

/**
 * Source of a module to import before the engine's worker (a blob worker: `import patch;
 * import worker.js`), making its WebGPU device smaller than SwiftShader's:
 * - `{ cap }`: bindings and buffers of at most `cap` bytes: the adapter and device report it, and
 *   any larger buffer or binding throws, where a real device of that size would fail validation;
 * - `{ defaults: true }`: a phone-like device: the adapter reports WebGPU's default limits and no
 *   optional feature, and the device is requested with none (so it has exactly the defaults).
 */
export function workerPatch({ cap, defaults }) {
  if (defaults) {
    return `
      const defaults = ${JSON.stringify(DEFAULT_LIMITS)};
      const get = Object.getOwnPropertyDescriptor(GPUAdapter.prototype, 'limits').get;
      Object.defineProperty(GPUAdapter.prototype, 'limits', {
        get() {
          const real = get.call(this);
          const out = {};
          for (const k in real) out[k] = k in defaults ? Math.min(defaults[k], real[k]) : real[k];
          return out;
        },
      });
      Object.defineProperty(GPUAdapter.prototype, 'features', { get() { return new Set(); } });
      const requestDevice = GPUAdapter.prototype.requestDevice;
      GPUAdapter.prototype.requestDevice = function (desc = {}) {
        return requestDevice.call(this, { ...desc, requiredFeatures: [], requiredLimits: {} });
      };`;
  }
  return `
    const cap = ${cap};
    const capped = (real) => {
      const out = {};
      for (const k in real) out[k] = real[k];
      out.maxStorageBufferBindingSize = Math.min(cap, real.maxStorageBufferBindingSize);
      out.maxBufferSize = Math.min(cap, real.maxBufferSize);
      return out;
    };
    for (const proto of [GPUAdapter.prototype, GPUDevice.prototype]) {
      const get = Object.getOwnPropertyDescriptor(proto, 'limits').get;
      Object.defineProperty(proto, 'limits', { get() { return capped(get.call(this)); } });
    }
    const requestDevice = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = function (desc = {}) {
      // The real device keeps its defaults; only what the engine is told is smaller.
      const limits = { ...(desc.requiredLimits ?? {}) };
      delete limits.maxStorageBufferBindingSize;
      delete limits.maxBufferSize;
      return requestDevice.call(this, { ...desc, requiredLimits: limits });
    };
    const createBuffer = GPUDevice.prototype.createBuffer;
    GPUDevice.prototype.createBuffer = function (desc) {
      if (desc.size > cap) throw new RangeError('buffer of ' + desc.size + ' bytes past the ' + cap + '-byte cap');
      return createBuffer.call(this, desc);
    };
    const createBindGroup = GPUDevice.prototype.createBindGroup;
    GPUDevice.prototype.createBindGroup = function (desc) {
      for (const e of desc.entries) {
        const r = e.resource;
        const buffer = r && (r.buffer ?? (r instanceof GPUBuffer ? r : undefined));
        if (!buffer) continue;
        const size = r.size ?? buffer.size - (r.offset ?? 0);
        if (size > cap) throw new RangeError('binding of ' + size + ' bytes past the ' + cap + '-byte cap');
      }
      return createBindGroup.call(this, desc);
    };`;
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
 * Runs `body` in the page with the package imported as `api` and helpers (`patchedWorker(patch)`
 * makes the engine's worker with a `workerPatch` module run first): `image()` gives the
 * fixture PNG (`b64`, by default the SmolVLM fixture's) as a Blob. Errors come back as
 * `{ error: { name, message } }`.
 */
export async function run(page, body, arg = {}, b64 = IMAGE_B64) {
  return page.evaluate(
    async ({ src, arg, b64 }) => {
      const api = await import('/web/dist/index.js');
      const image = () => new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/png' });
      // The engine's worker with a module run before it (a `workerPatch` source).
      const patchedWorker = (patch) => {
        const patchUrl = URL.createObjectURL(new Blob([patch], { type: 'text/javascript' }));
        const workerJs = new URL('/web/dist/worker.js', location.href).href;
        const main = `import '${patchUrl}';\nimport '${workerJs}';`;
        return new Worker(URL.createObjectURL(new Blob([main], { type: 'text/javascript' })), { type: 'module' });
      };
      const fn = new Function('api', 'arg', 'image', 'patchedWorker', `return (${src})(api, arg, image, patchedWorker);`);
      try {
        return await fn(api, arg, image, patchedWorker);
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
