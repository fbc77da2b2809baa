#!/usr/bin/env node
// webvlm against its peers on one machine, in one run: the same SmolLM2-135M-Instruct Q4_1 GGUF,
// the same chat-templated prompt (conversation 0 of tests/generator/make_llamacpp_goldens.py, "What
// is the capital of France?", 37 prompt ids), greedy, N new tokens past end-of-sequence, one
// warm-up then --repeats runs, medians. A benchmark program, not a test: nothing runs it in CI.
//
//   native         webvlm native: `target/release/webvlm run --json` on the GGUF directory (wgpu;
//                  lavapipe on a machine without a GPU). Rates from webvlm's own timings.
//   llamacpp       llama.cpp native through llama-cpp-python, CPU, --threads threads:
//                  `tests/generator/bench_peer.py --only-llamacpp` run by --python. Rates from
//                  wall time around llama_cpp's eval (bench_llamacpp.py's run_once).
//   chromium       webvlm in Chromium: the benchmark page www/bench (scripts/bench-browser.mjs's
//                  runBenchPage) on the model packed by scripts/pack-smollm2.sh, text only, with
//                  the prompt passed as ?prompt=. Rates from the package's own timings.
//   wllama-st      wllama (@wllama/wllama, llama.cpp compiled to wasm) in the same Chromium,
//                  single-thread wasm, on a page without cross-origin isolation.
//   wllama-mt      the same, multi-thread wasm (--threads threads), on a cross-origin-isolated page
//                  (COOP same-origin + COEP require-corp, served by this script's own server).
//   wllama-webgpu  the same with every layer offloaded to WebGPU; skipped (with the reason) when
//                  wllama's ggml-webgpu finds no usable device (it needs shader-f16).
//
// wllama gets the conversation through its own chat template (createChatCompletion), and the
// script checks that llama.cpp counted the same number of prompt tokens. Its prefill and decode
// rates come from llama.cpp's own timings (prompt_per_second, predicted_per_second); its first
// token is wall time in the page from the request to the first streamed text.
// Chromium is Debian's /usr/bin/chromium (never a downloaded one) with the flags of
// tests/browser/harness.mjs: WebGPU on SwiftShader on a machine without a GPU.
//
//   node scripts/bench-peers.mjs [--repeats 3] [--tokens 32] [--threads N] [--only a,b,...] \
//        [--python /root/lcpvenv/bin/python] [--gguf FILE] [--webvlm target/release/webvlm] [--json FILE]
//
// --only takes backend names from the list above (`wllama` = all three wllama backends); --threads
// defaults to the number of CPUs. Prints one table (medians; each row's speed relative to webvlm
// in Chromium and to webvlm native) and the text each backend generated; --json saves every run.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { launch, WEBGPU_ARGS } from '../tests/browser/harness.mjs';
import { runBenchPage } from './bench-browser.mjs';
import { startServer } from './serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BACKENDS = {
  native: 'webvlm native (wgpu)',
  llamacpp: 'llama.cpp native (CPU)',
  chromium: 'webvlm in Chromium (WebGPU)',
  'wllama-st': 'wllama wasm, 1 thread',
  'wllama-mt': 'wllama wasm, multi-thread',
  'wllama-webgpu': 'wllama WebGPU',
};
const PACKED_MODEL = 'smollm2-135m-instruct';

const { values: a } = parseArgs({
  options: {
    repeats: { type: 'string', default: '3' },
    tokens: { type: 'string', default: '32' },
    threads: { type: 'string', default: String(os.cpus().length) },
    only: { type: 'string' },
    python: { type: 'string' },
    gguf: { type: 'string', default: path.join(os.homedir(), '.cache/webvlm/smollm2-135m-instruct-gguf/SmolLM2-135M-Instruct.Q4_1.gguf') },
    webvlm: { type: 'string', default: path.join(REPO, 'target/release/webvlm') },
    json: { type: 'string' },
    'timeout-min': { type: 'string', default: '120' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (a.help) {
  console.log('usage: node scripts/bench-peers.mjs [--repeats 3] [--tokens 32] [--threads N] [--only ' + Object.keys(BACKENDS).join(',') + '] [--python PY] [--gguf FILE] [--webvlm EXE] [--json FILE]');
  process.exit(0);
}
const repeats = Number(a.repeats);
const tokens = Number(a.tokens);
const threads = Number(a.threads);
const timeoutMin = Number(a['timeout-min']);
if (!(repeats >= 1 && tokens >= 2 && threads >= 1)) {
  console.error('bench-peers: --repeats >= 1, --tokens >= 2 and --threads >= 1');
  process.exit(2);
}
const selected = new Set();
for (const name of (a.only ?? Object.keys(BACKENDS).join(',')).split(',').map((s) => s.trim()).filter(Boolean)) {
  if (name === 'wllama') ['wllama-st', 'wllama-mt', 'wllama-webgpu'].forEach((n) => selected.add(n));
  else if (name in BACKENDS) selected.add(name);
  else {
    console.error(`bench-peers: unknown backend ${name} (one of ${Object.keys(BACKENDS).join(', ')}, wllama)`);
    process.exit(2);
  }
}
const python = a.python ?? (fs.existsSync('/root/lcpvenv/bin/python') ? '/root/lcpvenv/bin/python' : 'python3');
const gguf = path.resolve(a.gguf);
if (!fs.existsSync(gguf)) {
  console.error(`bench-peers: no GGUF at ${gguf} (bash scripts/fetch-smollm2.sh fetches it)`);
  process.exit(2);
}

// The conversation and the ids llama.cpp made of it (the committed goldens): what every backend must see.
const golden = JSON.parse(fs.readFileSync(path.join(REPO, 'tests/fixtures/smollm2/goldens.json'), 'utf8')).prompts[0];
const messages = golden.messages;
const question = messages[0].content;
const promptIds = golden.prompt_ids;

const log = (s) => console.error(`${new Date().toISOString().slice(11, 19)} ${s}`);
const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((x, y) => x - y);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const METRICS = ['prefill_tok_s', 'ttft_ms', 'decode_tok_s'];
const medians = (runs) => Object.fromEntries(METRICS.map((m) => [m, median(runs.map((r) => r[m]))]));

// ---------------------------------------------------------------------------------------------
// Native backends

function webvlmNative() {
  if (!fs.existsSync(a.webvlm)) return { status: 'skipped', reason: `no ${a.webvlm} (cargo build --release --workspace --bins)` };
  const runOnce = () => {
    const r = spawnSync(a.webvlm, ['run', '--model', path.dirname(gguf), '--prompt', question, '--max-new-tokens', String(tokens), '--ignore-eos', '--json'], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
      timeout: timeoutMin * 60_000,
    });
    if (r.status !== 0) throw new Error(`webvlm run failed (${r.status ?? r.signal}): ${r.stderr.split('\n').filter((l) => !/XDG_RUNTIME_DIR/.test(l)).join('\n').slice(-2000)}`);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1));
    const t = out.timings;
    return {
      prefill_tok_s: t.prefill_tokens_per_s,
      // The first token is sampled from the prefill's logits: tokenising + prefill, load excluded.
      ttft_ms: t.prepare_ms + t.prefill_ms,
      decode_tok_s: t.decode_tokens_per_s,
      prompt_tokens: out.prompt_tokens,
      generated_tokens: out.token_ids.length,
      load_ms: t.load_ms,
      text: out.text,
    };
  };
  log('webvlm native: warm-up');
  runOnce();
  const runs = [];
  for (let i = 0; i < repeats; i++) {
    log(`webvlm native: run ${i + 1}/${repeats}`);
    runs.push(runOnce());
  }
  const ls = (dir) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  };
  const icds = ls('/usr/share/vulkan/icd.d');
  // Without GPU device nodes the only Vulkan device wgpu can find is Mesa's lavapipe (CPU).
  const noGpu = !ls('/dev/dri').some((f) => f.startsWith('render')) && !fs.existsSync('/dev/nvidia0');
  return {
    status: 'ok',
    runs,
    threads: null,
    device: noGpu && icds.some((f) => f.startsWith('lvp')) ? "wgpu on Mesa lavapipe (no GPU device nodes; software Vulkan on the CPU)" : `wgpu's default adapter (Vulkan ICDs: ${icds.join(', ') || 'none found'})`,
    timing_source: "webvlm's own timings (prefill_tokens_per_s, decode_tokens_per_s); TTFT = prepare_ms + prefill_ms, load excluded",
    versions: { webvlm: spawnSync(a.webvlm, ['--version'], { encoding: 'utf8' }).stdout.trim() },
  };
}

function llamacppNative() {
  const probe = spawnSync(python, ['-c', 'import llama_cpp, jinja2, numpy; print(llama_cpp.__version__)'], { encoding: 'utf8' });
  if (probe.status !== 0) return { status: 'skipped', reason: `${python} cannot import llama_cpp (pip install -r tests/generator/requirements-llamacpp.txt; or pass --python)` };
  log(`llama.cpp: ${python} tests/generator/bench_peer.py --only-llamacpp (warm-up + ${repeats} runs)`);
  const r = spawnSync(
    python,
    ['tests/generator/bench_peer.py', '--gguf-dir', path.dirname(gguf), '--only-llamacpp', '--threads', String(threads), '--repeats', String(repeats), '--tokens', String(tokens)],
    { cwd: REPO, encoding: 'utf8', maxBuffer: 64 << 20, timeout: timeoutMin * 60_000 },
  );
  if (r.status !== 0) throw new Error(`bench_peer.py failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
  const out = JSON.parse(r.stdout);
  if (JSON.stringify(out.prompt_ids) !== JSON.stringify(promptIds)) log('llama.cpp: WARNING its prompt ids differ from the goldens');
  return {
    status: 'ok',
    runs: out.runs.map((x) => ({ ...x, prompt_tokens: out.prompt_tokens })),
    threads: out.threads,
    device: `CPU (${out.llama_cpp_build?.system_info ?? ''})`,
    timing_source: 'wall time around llama_cpp eval (prefill: eval of the prompt + reading its logits = TTFT; decode: one eval per token)',
    versions: { llama_cpp_python: out.llama_cpp_python, llama_cpp_build: out.llama_cpp_build },
    loadavg: { before: out.loadavg_before, after: out.loadavg_after },
  };
}

// ---------------------------------------------------------------------------------------------
// webvlm in Chromium

async function webvlmChromium(browser) {
  if (!fs.existsSync(path.join(REPO, 'web/dist/index.js'))) return { status: 'skipped', reason: 'the web package is not built (web/dist/index.js; npm run build)' };
  const manifest = path.join(REPO, 'www/models', PACKED_MODEL, 'manifest.json');
  if (fs.existsSync(a.webvlm)) {
    // Re-packs only when the GGUF or the CLI is newer than the packed model; never builds.
    const r = spawnSync('bash', ['scripts/pack-smollm2.sh'], { cwd: REPO, stdio: ['ignore', 2, 2] });
    if (r.status !== 0) throw new Error('scripts/pack-smollm2.sh failed');
  }
  if (!fs.existsSync(manifest)) return { status: 'skipped', reason: `no packed model at www/models/${PACKED_MODEL} and no webvlm CLI to pack it` };
  const server = await startServer({ port: 0, models: [path.join(REPO, 'www/models')], quiet: true });
  try {
    const settings = { model: `/models/${PACKED_MODEL}/`, runs: repeats, tokens, warmup: 1, kernels: 0, image: 0, prompt: question };
    log(`webvlm in Chromium: /bench/?${new URLSearchParams(Object.entries(settings).map(([k, v]) => [k, String(v)]))}`);
    const { report, texts } = await runBenchPage(browser, server.url, settings, { timeoutMin, log: (s) => console.error(s.replace(/^(\d\d:\d\d:\d\d )?/, (t) => `${t}webvlm in Chromium: `)) });
    const d = report.device;
    return {
      status: 'ok',
      runs: report.runs.map((r, i) => ({
        prefill_tok_s: r.prefill_tokens_per_s,
        ttft_ms: r.ttft_ms,
        decode_tok_s: r.decode_tokens_per_s,
        prompt_tokens: r.prompt_tokens,
        generated_tokens: r.generated_tokens,
        text: texts[i],
      })),
      threads: null,
      device: `WebGPU ${d.vendor} ${d.architecture}${d.description ? ` (${d.description})` : ''}, shader-f16: ${d.features.includes('shader-f16') ? 'yes' : 'no'}`,
      timing_source: "the package's own timings (usage.timings: prefill, first token from the request, decode), as the benchmark page reports them",
      load: report.load,
      report,
    };
  } finally {
    await server.close();
  }
}

// ---------------------------------------------------------------------------------------------
// wllama in Chromium

const WLLAMA_DIR = path.join(REPO, 'node_modules/@wllama/wllama');

/**
 * The wllama pages' server: /plain/ and /isolated/ (the latter with COOP same-origin and COEP
 * require-corp, so the page is cross-origin isolated and may use wasm threads), wllama's ESM build
 * under /wllama/, and the GGUF as /model.gguf. Everything is same-origin, so COEP needs no CORP.
 */
async function startWllamaServer() {
  const esm = path.join(WLLAMA_DIR, 'esm');
  const server = http.createServer((req, res) => {
    const p = decodeURIComponent((req.url ?? '/').split('?')[0]);
    const headers = { 'Cache-Control': 'no-store' };
    if (p === '/plain/' || p === '/isolated/') {
      if (p === '/isolated/') Object.assign(headers, { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
      res.writeHead(200, { ...headers, 'Content-Type': 'text/html; charset=utf-8' });
      return res.end('<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>wllama</title>');
    }
    let file;
    if (p === '/model.gguf') file = gguf;
    else if (p.startsWith('/wllama/') && !p.split('/').includes('..')) file = path.join(esm, p.slice('/wllama/'.length));
    const st = file && fs.existsSync(file) && fs.statSync(file);
    if (!st?.isFile()) {
      res.writeHead(404, headers);
      return res.end();
    }
    const type = file.endsWith('.wasm') ? 'application/wasm' : file.endsWith('.js') ? 'text/javascript' : 'application/octet-stream';
    res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': st.size });
    fs.createReadStream(file).pipe(res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

/** Runs in the page: loads the GGUF into wllama, one warm-up and `repeats` chat completions. */
async function wllamaInPage({ nThreads, gpuLayers, tokens, repeats, messages }) {
  const { Wllama } = await import('/wllama/index.js');
  const logs = [];
  const keep = (level) => (...args) => logs.push(`${level}: ${args.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' ')}`);
  const wllama = new Wllama({ default: '/wllama/wasm/wllama.wasm' }, { logger: { debug: keep('debug'), log: keep('log'), info: keep('info'), warn: keep('warn'), error: keep('error') } });
  wllama.setCompat(null); // the compat build comes from a CDN; this Chromium has JSPI and Memory64 anyway
  let adapter = null;
  try {
    const ad = await navigator.gpu?.requestAdapter();
    if (ad) adapter = { vendor: ad.info?.vendor, architecture: ad.info?.architecture, fallback: ad.info?.isFallbackAdapter, shaderF16: ad.features.has('shader-f16') };
  } catch {}
  const info = { crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency, libllama: Wllama.getLibllamaVersion(), adapter };
  const t0 = performance.now();
  const blob = await (await fetch('/model.gguf')).blob();
  await wllama.loadModel([blob], { n_threads: nThreads, n_gpu_layers: gpuLayers, n_ctx: 1024, n_parallel: 1, seed: 0 });
  info.load_ms = performance.now() - t0;
  info.multithread = wllama.isMultithread();
  info.threads = wllama.getNumThreads();
  // Where llama.cpp put the weights: "load_tensors: <device> model buffer size = ...".
  info.buffers = logs.filter((l) => /model buffer size|offloaded \d+\/\d+ layers/.test(l)).map((l) => l.replace(/^\w+: /, '').replace(/\s+/g, ' '));
  info.on_gpu = info.buffers.some((l) => /model buffer size/.test(l) && !/\bCPU\b/.test(l.split('model buffer size')[0]));
  if (gpuLayers > 0 && !info.on_gpu) {
    await wllama.exit();
    return { info, skipped: true, logs: logs.filter((l) => /webgpu|adapter|device/i.test(l)).slice(0, 20) };
  }
  const runs = [];
  for (let i = 0; i < 1 + repeats; i++) {
    const start = performance.now();
    let first = null;
    let text = '';
    let last = null;
    let finish = null;
    const stream = await wllama.createChatCompletion({
      messages,
      max_tokens: tokens,
      temperature: 0,
      top_k: 1,
      ignore_eos: true,
      cache_prompt: false, // every run prefills the whole prompt
      stream: true,
    });
    for await (const c of stream) {
      const d = c.choices?.[0]?.delta?.content;
      if (d) {
        first ??= performance.now();
        text += d;
      }
      finish = c.choices?.[0]?.finish_reason ?? finish;
      if (c.timings) last = c.timings;
    }
    const end = performance.now();
    if (i === 0) continue; // warm-up
    const t = last ?? {};
    runs.push({
      prefill_tok_s: t.prompt_per_second,
      ttft_ms: first === null ? NaN : first - start,
      decode_tok_s: t.predicted_per_second,
      prompt_tokens: t.prompt_n,
      cached_prompt_tokens: t.cache_n,
      generated_tokens: t.predicted_n,
      finish_reason: finish,
      prompt_ms: t.prompt_ms,
      predicted_ms: t.predicted_ms,
      wall_ms: end - start,
      text,
    });
  }
  await wllama.exit();
  return { info, runs };
}

async function wllamaBackend(browser, server, name) {
  if (!fs.existsSync(path.join(WLLAMA_DIR, 'esm/index.js'))) return { status: 'skipped', reason: '@wllama/wllama is not installed (npm install)' };
  const cfg = {
    'wllama-st': { page: 'plain', nThreads: 1, gpuLayers: 0 },
    'wllama-mt': { page: 'isolated', nThreads: threads, gpuLayers: 0 },
    'wllama-webgpu': { page: 'isolated', nThreads: threads, gpuLayers: 999 },
  }[name];
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.on('pageerror', (e) => log(`${name}: [pageerror] ${e.message}`));
    await page.goto(new URL(`/${cfg.page}/`, server.url).href);
    log(`${name}: loading the GGUF (n_threads ${cfg.nThreads}, n_gpu_layers ${cfg.gpuLayers}), warm-up + ${repeats} runs`);
    const out = await page.evaluate(wllamaInPage, { nThreads: cfg.nThreads, gpuLayers: cfg.gpuLayers, tokens, repeats, messages });
    const wasm = `wasm, ${out.info.multithread ? `${out.info.threads} threads` : '1 thread'}${out.info.crossOriginIsolated ? ', cross-origin isolated' : ''}`;
    const ad = out.info.adapter;
    const adapter = ad ? `${ad.vendor} ${ad.architecture}${ad.fallback ? ' (fallback adapter)' : ''}, shader-f16: ${ad.shaderF16 ? 'yes' : 'no'}` : 'none';
    if (out.skipped) {
      return {
        status: 'skipped',
        reason: `wllama registered no WebGPU device, the weights stayed on the CPU (${out.info.buffers.join('; ')}); the page's WebGPU adapter: ${adapter}. ggml-webgpu needs shader-f16.`,
        info: out.info,
        logs: out.logs,
      };
    }
    return {
      status: 'ok',
      runs: out.runs,
      threads: out.info.threads,
      device: cfg.gpuLayers > 0 ? `WebGPU ${adapter} (${out.info.buffers.join('; ')})` : `${wasm} (${out.info.buffers.join('; ')})`,
      timing_source: "llama.cpp's own timings (prompt_per_second; predicted_per_second = (predicted_n - 1) / predicted_ms); TTFT = wall time in the page from createChatCompletion to the first streamed text",
      info: out.info,
    };
  } finally {
    await context.close();
  }
}

// ---------------------------------------------------------------------------------------------

const results = {};
const loadavgStart = os.loadavg();
const run = async (name, fn) => {
  if (!selected.has(name)) return;
  const l0 = os.loadavg();
  try {
    results[name] = await fn();
  } catch (e) {
    results[name] = { status: 'error', reason: String(e?.stack ?? e) };
  }
  const r = results[name];
  r.label = BACKENDS[name];
  if (r.status === 'ok') r.median = medians(r.runs);
  r.loadavg_1min = { before: l0[0], after: os.loadavg()[0] };
  log(`${name}: ${r.status}${r.reason ? ` — ${r.reason.split('\n')[0]}` : ''}`);
};

await run('native', webvlmNative);
await run('llamacpp', llamacppNative);
let browser;
let browserVersion = null;
const browserBackends = ['chromium', 'wllama-st', 'wllama-mt', 'wllama-webgpu'].filter((n) => selected.has(n));
if (browserBackends.length) {
  browser = await launch();
  browserVersion = browser.version();
  try {
    await run('chromium', () => webvlmChromium(browser));
    if (browserBackends.some((n) => n.startsWith('wllama'))) {
      const server = await startWllamaServer();
      try {
        for (const n of ['wllama-st', 'wllama-mt', 'wllama-webgpu']) await run(n, () => wllamaBackend(browser, server, n));
      } finally {
        await server.close();
      }
    }
  } finally {
    await browser.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const ref = { chromium: results.chromium?.median, native: results.native?.median };
/** How many times faster than the reference (tok/s: ours / theirs; TTFT: theirs / ours). */
const speedup = (m, refm) => {
  if (!m || !refm) return null;
  return { prefill: m.prefill_tok_s / refm.prefill_tok_s, ttft: refm.ttft_ms / m.ttft_ms, decode: m.decode_tok_s / refm.decode_tok_s };
};
for (const r of Object.values(results)) {
  if (r.status !== 'ok') continue;
  r.speedup_vs_webvlm_chromium = speedup(r.median, ref.chromium);
  r.speedup_vs_webvlm_native = speedup(r.median, ref.native);
}

const fmt = (v, d = 2) => (Number.isFinite(v) ? (Math.abs(v) >= 1000 ? v.toFixed(0) : Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(d)) : '–');
const fx = (s) => (s ? `${fmt(s.prefill)} / ${fmt(s.ttft)} / ${fmt(s.decode)}` : '–');
const rows = [['backend', 'threads', 'prompt', 'gen', 'prefill tok/s', 'TTFT ms', 'decode tok/s', '× webvlm Chromium (prefill / TTFT / decode)', '× webvlm native (prefill / TTFT / decode)']];
for (const [name, r] of Object.entries(results)) {
  if (r.status !== 'ok') {
    rows.push([`${r.label} [${name}]`, '', '', '', r.status, '', '', '', '']);
    continue;
  }
  const pt = [...new Set(r.runs.map((x) => x.prompt_tokens))].join(',');
  const gen = [...new Set(r.runs.map((x) => x.generated_tokens))].join(',');
  rows.push([
    `${r.label} [${name}]`,
    r.threads ?? '–',
    `${pt}${pt === String(promptIds.length) ? '' : ' (!)'}`,
    gen,
    fmt(r.median.prefill_tok_s),
    fmt(r.median.ttft_ms, 0),
    fmt(r.median.decode_tok_s),
    fx(r.speedup_vs_webvlm_chromium),
    fx(r.speedup_vs_webvlm_native),
  ]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
const out = [];
out.push(`SmolLM2-135M-Instruct Q4_1 (${path.basename(gguf)}), prompt "${question}" (${promptIds.length} ids after the chat template), greedy, ${tokens} new tokens ignoring EOS; 1 warm-up + ${repeats} runs, medians`);
out.push(`${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, load average (1 min) ${loadavgStart[0].toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end; Chromium ${browserVersion ?? '(not run)'}`);
out.push('');
out.push(line(rows[0]));
out.push(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows.slice(1)) out.push(line(r));
out.push('');
out.push('× columns: how many times faster than the reference (tok/s: row / reference; TTFT: reference / row). prompt: prompt tokens each backend counted; gen: tokens generated per run.');
// The texts side by side: each one against the first of these that ran.
const textRef = ['llamacpp', 'wllama-st', 'wllama-mt', 'native', 'chromium'].find((n) => results[n]?.status === 'ok');
const agreement = (text) => {
  const want = results[textRef].runs[0].text;
  if (text === want) return `same as [${textRef}]`;
  const [t, w] = [[...text], [...want]];
  let i = 0;
  while (i < t.length && i < w.length && t[i] === w[i]) i++;
  return `differs from [${textRef}] from character ${i}`;
};
for (const [name, r] of Object.entries(results)) {
  out.push('');
  out.push(`${r.label} [${name}]: ${r.status}`);
  if (r.reason) out.push(`  ${r.reason.split('\n').slice(0, 4).join('\n  ')}`);
  if (r.device) out.push(`  device: ${r.device}`);
  if (r.timing_source) out.push(`  timings: ${r.timing_source}`);
  if (r.runs) {
    const texts = [...new Set(r.runs.map((x) => x.text))];
    out.push(`  text${texts.length > 1 ? ` (runs differ: ${texts.length} versions)` : ''}: ${JSON.stringify(texts[0])}${name === textRef ? '' : ` (${agreement(texts[0])})`}`);
  }
}
console.log(out.join('\n'));

if (a.json) {
  const report = {
    schema: 'webvlm.bench-peers/1',
    created: new Date().toISOString(),
    settings: { tokens, repeats, warmup: 1, threads, backends: [...selected], gguf, prompt: { messages, rendered: golden.rendered, ids: promptIds, count: promptIds.length } },
    machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, platform: `${os.platform()} ${os.release()}`, node: process.version, loadavg_start: loadavgStart, loadavg_end: os.loadavg() },
    browser: browserBackends.length ? { executable: process.env.CHROMIUM ?? '/usr/bin/chromium', version: browserVersion, args: WEBGPU_ARGS } : null,
    wllama: fs.existsSync(path.join(WLLAMA_DIR, 'package.json')) ? { version: JSON.parse(fs.readFileSync(path.join(WLLAMA_DIR, 'package.json'), 'utf8')).version } : null,
    results,
    table: out.join('\n'),
  };
  fs.writeFileSync(a.json, `${JSON.stringify(report, null, 1)}\n`);
  log(`wrote ${a.json}`);
}
if (Object.values(results).some((r) => r.status === 'error')) process.exitCode = 1;
