// The benchmark page: cold and warm loads, sustained generations in the worker, main-thread
// long tasks, the kernel micro-benchmark, charts, JSON export and comparison with a saved run.
// Query parameters preset the form and `autorun=1` starts at once (links and tests):
// ?model=URL&runs=N&tokens=N&warmup=N&image=0|1&size=PX&splitting=0|1&kernels=0|1&prompt=TEXT&autorun=1
// (prompt: the question asked, instead of the page's own; scripts/bench-peers.mjs sets it).
// After a run, `window.__benchTexts` holds the text each measured run generated.
import { loadPresets } from '/demo/presets.js';
import { decodeChart, stageChart } from './charts.js';
import { aggregateLongTasks, buildReport, compareReports, formatBytes, formatLimit, formatSig, parseReport, runFromUsage, settingsFromQuery } from './report.js';

const $ = (id) => document.getElementById(id);
const PROMPT = 'Describe this image in detail.';
const TEXT_PROMPT = 'Write a short story about a robot that learns to paint.';
let pkg;
let report;

function setState(s) {
  document.body.dataset.state = s;
  $('run').disabled = s === 'running';
}

function showError(e) {
  const box = $('error');
  box.textContent = `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
  box.hidden = false;
  setState('error');
}

function progress(text) {
  $('progress').textContent = text;
}

/** A deterministic test picture: gradients, a grid and two shapes. */
async function testImage(size) {
  const canvas = new OffscreenCanvas(size, size);
  const ctx = canvas.getContext('2d');
  const g = ctx.createLinearGradient(0, 0, size, size);
  g.addColorStop(0, '#1e3a8a');
  g.addColorStop(1, '#f59e0b');
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, size, size);
  ctx.strokeStyle = 'rgba(255,255,255,.35)';
  for (let i = 0; i < size; i += 32) {
    ctx.beginPath();
    ctx.moveTo(i, 0);
    ctx.lineTo(i, size);
    ctx.moveTo(0, i);
    ctx.lineTo(size, i);
    ctx.stroke();
  }
  ctx.fillStyle = '#ef4444';
  ctx.beginPath();
  ctx.arc(size * 0.3, size * 0.6, size * 0.15, 0, Math.PI * 2);
  ctx.fill();
  ctx.fillStyle = '#10b981';
  ctx.fillRect(size * 0.55, size * 0.2, size * 0.3, size * 0.25);
  return canvas.convertToBlob({ type: 'image/png' });
}

function formSettings() {
  return {
    url: $('model-url').value.trim() || $('model').value,
    runs: Number($('runs').value),
    tokens: Number($('tokens').value),
    warmup: Number($('warmup').value),
    image: $('use-image').checked,
    imageSize: Number($('image-size').value),
    splitting: $('splitting').value === '' ? null : $('splitting').value === '1',
    kernels: $('kernels').checked,
    prompt: $('prompt').value.trim(),
  };
}

async function runBench() {
  setState('running');
  $('error').hidden = true;
  const s = formSettings();
  const url = new URL(s.url, location.href).href;
  const longTasks = [];
  let observer;
  let vlm;
  try {
    observer = new PerformanceObserver((list) => longTasks.push(...list.getEntries()));
    observer.observe({ type: 'longtask', buffered: false });
  } catch {
    observer = undefined; // No Long Tasks API (Safari, Firefox): long_tasks stays null.
  }
  try {
    progress('Cold load: network → OPFS → GPU…');
    await pkg.WebVLM.cache.delete(url).catch(() => false);
    let t = performance.now();
    vlm = await pkg.WebVLM.load(url, {
      onProgress: (p) => progress(`Cold load: ${p.phase} ${formatBytes(p.loaded)} / ${formatBytes(p.total)}`),
    });
    const coldMs = performance.now() - t;
    const cold = vlm;
    vlm = undefined;
    await cold.dispose();
    progress('Warm load: OPFS → GPU…');
    t = performance.now();
    vlm = await pkg.WebVLM.load(url);
    const warmMs = performance.now() - t;
    const info = vlm.info;
    const withImage = s.image && info.family === 'vlm';
    const image = withImage ? await testImage(s.imageSize) : undefined;
    const splitting = s.splitting ?? info.imageSplitting;
    const prompt = s.prompt || (withImage ? PROMPT : TEXT_PROMPT);
    const runs = [];
    const texts = [];
    for (let i = 0; i < s.warmup + s.runs; i++) {
      const label = i < s.warmup ? `warm-up ${i + 1}/${s.warmup}` : `run ${i - s.warmup + 1}/${s.runs}`;
      progress(`${label}: prefill…`);
      await vlm.reset();
      const start = performance.now();
      let last;
      let n = 0;
      let text = '';
      for await (const c of vlm.generate({ prompt, image, maxTokens: s.tokens, ignoreEos: true, imageSplitting: splitting })) {
        if (c.tokenId !== undefined) progress(`${label}: token ${++n}/${s.tokens}`);
        text += c.text;
        last = c;
      }
      const end = performance.now();
      // Entries not yet delivered to the callback (it runs as a later task).
      if (observer) longTasks.push(...observer.takeRecords());
      const lt = observer ? aggregateLongTasks(longTasks.filter((e) => e.startTime >= start && e.startTime < end)) : null;
      const run = runFromUsage(last.usage, lt);
      if (i >= s.warmup) {
        runs.push(run);
        texts.push(text);
      }
    }
    let kernels = [];
    if (s.kernels) {
      progress('Kernel micro-benchmark (q4 matvec vs copy)…');
      kernels = await vlm.benchKernels({ repeats: 3 });
    }
    const done = vlm;
    vlm = undefined;
    await done.dispose();
    report = buildReport(pkg, {
      info,
      settings: {
        prompt,
        image_width: withImage ? s.imageSize : 0,
        image_height: withImage ? s.imageSize : 0,
        image_splitting: withImage ? splitting : false,
        max_new_tokens: s.tokens,
        runs: s.runs,
        warmup_runs: s.warmup,
      },
      load: { cold_ms: coldMs, warm_ms: warmMs },
      runs,
      kernels,
      userAgent: navigator.userAgent,
      created: new Date().toISOString(),
      version: pkg.VERSION ?? '0.1.0',
    });
    window.__benchTexts = texts;
    render(report);
    progress('Done.');
    setState('done');
  } catch (e) {
    showError(e);
  } finally {
    observer?.disconnect();
    // A failed run must not keep its worker and GPU memory.
    if (vlm) await vlm.dispose().catch(() => {});
  }
}

function fmt(v, digits = 2) {
  return Number.isFinite(v) ? v.toFixed(digits) : '–';
}

function render(r, other) {
  window.__benchReport = r;
  $('report-json').textContent = JSON.stringify(r, null, 2);
  $('export').disabled = false;
  const d = r.device;
  const keyLimits = ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup'];
  $('device').innerHTML = '';
  const dl = document.createElement('p');
  dl.textContent = `${d.vendor || '?'} · ${d.architecture || '?'}${d.description ? ` · ${d.description}` : ''} (${d.backend})`;
  const feats = document.createElement('p');
  const has = (f) => (d.features.includes(f) ? 'yes' : 'no');
  feats.textContent = `shader-f16: ${has('shader-f16')} · subgroups: ${has('subgroups')} · ${keyLimits.filter((k) => k in d.limits).map((k) => `${k} ${formatLimit(k, d.limits[k])}`).join(' · ')}`;
  const all = document.createElement('details');
  all.innerHTML = '<summary>All features and limits</summary>';
  const pre = document.createElement('pre');
  pre.textContent = `${d.features.join('\n')}\n\n${Object.entries(d.limits).map(([k, v]) => `${k}: ${v}`).join('\n')}`;
  all.append(pre);
  $('device').append(dl, feats, all);

  const s = r.summary;
  const stat = (name, st, unit, digits = 2) => `<tr><td>${name}</td><td>${fmt(st.median, digits)}</td><td>${fmt(st.min, digits)}</td><td>${fmt(st.max, digits)}</td><td>${fmt(st.cv * 100, 1)}%</td><td>${unit}</td></tr>`;
  $('summary').innerHTML =
    `<p>${r.model.model_type} ${r.model.quant} · ${formatBytes(r.model.file_bytes)} · cold load ${fmt(r.load.cold_ms, 0)} ms · warm load ${fmt(r.load.warm_ms, 0)} ms · ` +
    `${r.runs.length} runs of ${r.settings.max_new_tokens} tokens${r.settings.image_width ? `, ${r.settings.image_width}×${r.settings.image_height} image${r.settings.image_splitting ? ' (tiled)' : ' (one tile)'}` : ''}</p>` +
    `<div class="table-wrap"><table class="results"><tr><th>metric</th><th>median</th><th>min</th><th>max</th><th>CV</th><th></th></tr>` +
    stat('decode', s.decode_tokens_per_s, 'tok/s') +
    stat('prefill', s.prefill_tokens_per_s, 'tok/s') +
    stat('first token', s.ttft_ms, 'ms', 0) +
    stat('image encode', s.encode_ms, 'ms', 0) +
    `</table></div><p>Decode drift (second half vs first): ${fmt(s.decode_drift * 100, 1)}% · peak GPU memory ${formatBytes(s.peak_gpu_bytes)}</p>` +
    `<p>Per decoded token: ${s.gpu_counts_per_token.dispatches} dispatches · ${s.gpu_counts_per_token.submissions} submissions · ` +
    `${s.gpu_counts_per_token.readback_bytes} bytes read back · ${s.gpu_counts_per_token.syncs} waits on the GPU (counted at the WebGPU API)</p>` +
    `<p>Roofline: ${formatBytes(r.roofline.weight_bytes_per_token)} of weights per token × ${fmt(s.decode_tokens_per_s.median)} tok/s = ${formatSig(r.roofline.implied_gbps)} GB/s` +
    (r.roofline.copy_gbps > 0 ? `; copy kernel ${formatSig(r.roofline.copy_gbps)} GB/s (${formatSig(r.roofline.fraction_of_copy * 100)}% of it)` : '; copy kernel not measured') + '</p>';

  const charts = $('charts');
  charts.innerHTML = '';
  charts.append(decodeChart(r, other));
  charts.append(stageChart([{ name: 'this run', report: r }, ...(other ? [{ name: 'compared', report: other }] : [])]));

  const t = $('runs-table');
  t.hidden = false;
  t.innerHTML =
    '<tr><th>run</th><th>prompt (image)</th><th>image ms</th><th>encode ms</th><th>prefill tok/s</th><th>first token ms</th><th>decode tok/s</th><th>peak GPU</th><th>long tasks</th></tr>' +
    r.runs
      .map(
        (x, i) =>
          `<tr><td>${i + 1}</td><td>${x.prompt_tokens} (${x.image_tokens})</td><td>${fmt(x.image_ms, 0)}</td><td>${fmt(x.encode_ms, 0)}</td><td>${fmt(x.prefill_tokens_per_s)}</td><td>${fmt(x.ttft_ms, 0)}</td>` +
          `<td>${fmt(x.decode_tokens_per_s)}</td><td>${formatBytes(x.peak_gpu_bytes)}</td><td>${x.long_tasks ? `${x.long_tasks.count} (max ${fmt(x.long_tasks.max_ms, 0)} ms)` : 'n/a'}</td></tr>`,
      )
      .join('');

  $('kernel-results').innerHTML = r.kernels.length
    ? '<table class="results"><tr><th>kernel shape</th><th>µs/call</th><th>GB/s</th><th>copy GB/s</th><th>ratio</th><th>GFLOP/s</th><th>of FMA peak</th></tr>' +
      r.kernels
        .map(
          (k) =>
            `<tr><td>${k.name} (${k.scheme}, ${k.n}×${k.k})</td><td>${fmt(k.us_per_call, 0)}</td><td>${fmt(k.gbps)}</td><td>${fmt(k.copy_gbps)}</td><td>${fmt(k.ratio * 100, 0)}%</td>` +
            `<td>${k.gflops ? fmt(k.gflops) : '–'}</td><td>${k.fma_gflops ? `${fmt(k.fraction_of_fma * 100, 1)}% of ${fmt(k.fma_gflops)}` : '–'}</td></tr>`,
        )
        .join('') +
      '</table>'
    : '';
}

function renderCompare(other) {
  const rows = compareReports(report, other);
  const cls = (b) => (b === null ? '' : b ? 'better' : 'worse');
  const value = (v, unit) => (unit === 'B' ? formatBytes(v) : `${formatSig(v, 4)}${unit ? ` ${unit}` : ''}`);
  $('compare').innerHTML =
    `<p>Compared with ${other.device?.description || other.device?.architecture || 'a saved run'} (${other.runtime}, ${other.model?.model_type} ${other.model?.quant}, ${other.created ?? ''})</p>` +
    '<div class="table-wrap"><table class="results" id="compare-table"><tr><th>metric</th><th>this</th><th>saved</th><th>this / saved</th></tr>' +
    rows.map((r) => `<tr><td>${r.label}</td><td>${value(r.a, r.unit)}</td><td>${value(r.b, r.unit)}</td><td class="${cls(r.better)}" data-ratio="${r.ratio}">${fmt(r.ratio)}×</td></tr>`).join('') +
    '</table></div>';
  render(report, other);
}

async function main() {
  try {
    pkg = await import('/web/dist/index.js');
  } catch (e) {
    showError(new Error(`the webvlm package is not built (npm run build): ${e.message}`));
    return;
  }
  if (!('gpu' in navigator)) showError(Object.assign(new Error('this browser has no WebGPU (navigator.gpu)'), { name: 'WebGPUUnavailableError' }));
  const q = settingsFromQuery(location.search);
  const presets = await loadPresets(new URL('/', location.href));
  for (const p of presets) $('model').append(new Option(p.name, p.url));
  // A linked model that is one of the presets selects it; any other goes into the URL field.
  const linked = q.model ? new URL(q.model, location.href).href : '';
  const preset = presets.find((p) => p.url === linked);
  if (preset) $('model').value = preset.url;
  $('model-url').value = preset ? '' : q.model;
  $('runs').value = q.runs;
  $('tokens').value = q.tokens;
  $('warmup').value = q.warmup;
  $('use-image').checked = q.image;
  $('image-size').value = q.imageSize;
  $('splitting').value = q.splitting === null ? '' : q.splitting ? '1' : '0';
  $('kernels').checked = q.kernels;
  $('prompt').value = q.prompt;
  $('run').addEventListener('click', runBench);
  $('export').addEventListener('click', () => {
    const blob = new Blob([JSON.stringify(report, null, 2)], { type: 'application/json' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `webvlm-bench-${report.model.model_type}-${report.model.quant}-${report.created.slice(0, 19).replace(/:/g, '')}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  });
  $('compare-file').addEventListener('change', async (ev) => {
    const file = ev.target.files?.[0];
    if (!file) return;
    try {
      if (!report) throw new Error('run the benchmark first');
      renderCompare(parseReport(await file.text()));
    } catch (e) {
      showError(e);
    }
  });
  if (q.autorun && document.body.dataset.state !== 'error') await runBench();
}

main();
