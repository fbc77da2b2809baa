// The demo page: pick a model, load it, take a photo, ask about it, watch the answer stream.
// All model work happens in the package's worker; this file only moves events into the DOM, and
// writes to the DOM at most once per animation frame so a fast token stream cannot jank a phone.
//
// document.body.dataset.state is idle | loading | ready | generating | answered | error, which the
// browser tests wait on; dataset.finishReason holds the last answer's finish reason.
import { LoadMeter, formatStats } from './format.js';
import { loadPresets, initialChoice } from './presets.js';

const $ = (id) => document.getElementById(id);
const ui = {
  model: $('model'),
  modelUrl: $('model-url'),
  modelNote: $('model-note'),
  load: $('load'),
  progress: $('progress'),
  progressText: $('progress-text'),
  modelInfo: $('model-info'),
  photo: $('photo'),
  photoPick: $('photo-pick'),
  clearPhoto: $('clear-photo'),
  photoNote: $('photo-note'),
  preview: $('preview'),
  prompt: $('prompt'),
  maxTokens: $('max-tokens'),
  temperature: $('temperature'),
  ask: $('ask'),
  answer: $('answer'),
  stats: $('stats'),
  error: $('error'),
};

const WEBGPU_HELP =
  'This demo runs the model on your GPU through WebGPU. WebGPU ships in Chrome and Edge 113+ ' +
  '(desktop, and Android 12+ on recent phones), Safari 26+ (macOS, iOS, iPadOS) and Firefox 141+ ' +
  'on Windows. On Linux, Chrome may need chrome://flags/#enable-unsafe-webgpu.';
const INSECURE_HELP =
  'This page was opened over plain http on an address other than localhost, so the browser hides ' +
  'WebGPU: open it over https (or on localhost).';

let pkg = null; // the webvlm package module
let vlm = null;
let presets = [];
let family = 'vlm'; // of the selected preset until a model is loaded, then of the model
let photoFile = null;
let previewUrl = null;
let loadCtl = null;
let askCtl = null;
let noGpu = false;

// ---- frame-batched DOM writes ----
const pending = new Map();
let frame = 0;
function onFrame(key, fn) {
  pending.set(key, fn);
  frame ||= requestAnimationFrame(flushFrame);
}
/** Runs queued writes now; also called at the end of a stream, since a hidden tab gets no frames. */
function flushFrame() {
  if (frame) cancelAnimationFrame(frame);
  frame = 0;
  const fns = [...pending.values()];
  pending.clear();
  for (const fn of fns) fn();
}

// ---- state and controls ----
function setState(state) {
  document.body.dataset.state = state;
  updateControls();
}

function updateControls() {
  const loading = loadCtl !== null;
  const asking = askCtl !== null;
  ui.load.textContent = loading ? 'Cancel' : 'Load';
  ui.load.disabled = noGpu || asking;
  ui.model.disabled = loading;
  ui.modelUrl.disabled = loading;
  ui.ask.textContent = asking ? 'Stop' : 'Ask';
  ui.ask.classList.toggle('stop', asking);
  ui.ask.disabled = !asking && (noGpu || loading || vlm === null);
  const noImages = family === 'text';
  for (const input of [ui.photo, ui.photoPick]) {
    input.disabled = noImages || asking;
    document.querySelector(`label[for="${input.id}"]`)?.classList.toggle('disabled', input.disabled);
  }
  ui.photoNote.hidden = !noImages;
  ui.clearPhoto.disabled = asking;
}

function showError(err, help) {
  ui.error.replaceChildren();
  const head = document.createElement('strong');
  head.textContent = `${err?.name ?? 'Error'}: ${err?.message ?? String(err)}`;
  ui.error.append(head);
  if (help) {
    const p = document.createElement('p');
    p.textContent = help;
    ui.error.append(p);
  }
  ui.error.hidden = false;
  document.body.dataset.error = err?.name ?? 'Error';
}

function clearError() {
  ui.error.hidden = true;
  ui.error.replaceChildren();
  delete document.body.dataset.error;
}

function isWebGPUError(err) {
  return err?.name === 'WebGPUUnavailableError' || (pkg && err instanceof pkg.WebGPUUnavailableError);
}

function reportNoWebGPU(err) {
  noGpu = true;
  showError(err, window.isSecureContext ? WEBGPU_HELP : `${INSECURE_HELP} ${WEBGPU_HELP}`);
  setState('error');
}

// ---- model ----
function selectedUrl() {
  const custom = ui.modelUrl.value.trim();
  if (!custom) return ui.model.value;
  try {
    return new URL(custom, location.href).href;
  } catch {
    return null;
  }
}

function showPreset() {
  const preset = ui.modelUrl.value.trim() ? null : presets.find((p) => p.url === ui.model.value);
  ui.modelNote.textContent = preset?.note ?? '';
  if (!vlm) setFamily(preset?.kind ?? 'vlm');
}

function setFamily(f) {
  family = f;
  if (f === 'text') clearPhoto();
  updateControls();
}

async function disposeModel() {
  const old = vlm;
  vlm = null;
  if (!old) return;
  try {
    await old.dispose();
  } catch (err) {
    console.warn('webvlm demo: dispose failed', err);
  }
}

async function load() {
  if (loadCtl) return loadCtl.abort();
  const url = selectedUrl();
  if (!url) return showError({ name: 'TypeError', message: 'The custom model URL is not a valid URL' });
  clearError();
  loadCtl = new AbortController();
  const { signal } = loadCtl;
  // Free the old model's GPU memory first: a phone may not hold two.
  await disposeModel();
  ui.modelInfo.textContent = '';
  ui.progress.hidden = false;
  ui.progress.removeAttribute('value');
  ui.progressText.textContent = 'Starting…';
  setState('loading');
  const meter = new LoadMeter();
  const onProgress = (p) => {
    const { fraction, text } = meter.update(p, performance.now());
    onFrame('progress', () => {
      if (fraction === null) ui.progress.removeAttribute('value');
      else ui.progress.value = fraction;
      ui.progressText.textContent = text;
    });
  };
  try {
    if (!pkg) throw new Error('the webvlm package is not loaded');
    vlm = await pkg.WebVLM.load(url, { onProgress, signal });
    flushFrame();
    ui.progress.value = 1;
    ui.progressText.textContent = meter.summary(performance.now());
    showModelInfo(vlm.info);
    const params = new URLSearchParams(location.search);
    params.set('model', url);
    history.replaceState(null, '', `?${params}`);
    loadCtl = null;
    setFamily(vlm.info?.family === 'text' ? 'text' : 'vlm');
    setState('ready');
  } catch (err) {
    flushFrame();
    loadCtl = null;
    ui.progress.hidden = true;
    if (err?.name === 'AbortError' && signal.aborted) {
      ui.progressText.textContent = 'Loading cancelled';
      setState('idle');
    } else if (isWebGPUError(err)) {
      ui.progressText.textContent = '';
      reportNoWebGPU(err);
    } else {
      ui.progressText.textContent = '';
      showError(err);
      setState('error');
    }
  }
}

function showModelInfo(info) {
  if (!info) return;
  const a = info.adapter ?? {};
  const gpu = [a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unknown GPU';
  let text = `${info.modelType ?? 'model'} · ${info.quant ?? '?'} · ${info.family ?? 'vlm'} · ${gpu}`;
  if (a.isFallbackAdapter) text += ' (software adapter: expect it to be slow)';
  ui.modelInfo.textContent = text;
}

// ---- photo ----
function setPhoto(file) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  photoFile = file ?? null;
  if (photoFile) {
    previewUrl = URL.createObjectURL(photoFile);
    ui.preview.src = previewUrl;
  } else {
    ui.preview.removeAttribute('src');
  }
  ui.preview.hidden = !photoFile;
  ui.clearPhoto.hidden = !photoFile;
}

function clearPhoto() {
  ui.photo.value = '';
  ui.photoPick.value = '';
  setPhoto(null);
}

// ---- asking ----
// Errors after which the loaded model cannot be used again.
const FATAL = new Set(['DeviceLostError', 'WebGPUUnavailableError']);

async function ask() {
  if (askCtl) return askCtl.abort();
  if (!vlm) return;
  clearError();
  askCtl = new AbortController();
  const prompt = ui.prompt.value.trim() || ui.prompt.placeholder;
  const options = {
    prompt,
    maxTokens: Math.max(1, Number(ui.maxTokens.value) || 256),
    temperature: Math.max(0, Number(ui.temperature.value) || 0),
    signal: askCtl.signal,
  };
  if (photoFile && family !== 'text') options.image = photoFile;

  let text = '';
  let tokens = 0;
  let usage;
  let finishReason = null;
  let failure = null;
  let firstTokenMs = null;
  const t0 = performance.now();
  const stats = () =>
    formatStats({ tokens, elapsedMs: performance.now() - t0, firstTokenMs, usage, finishReason });
  ui.answer.textContent = '';
  ui.stats.textContent = 'Reading the question…';
  delete document.body.dataset.finishReason;
  // Screen readers announce the finished answer once instead of every streamed fragment.
  ui.answer.setAttribute('aria-busy', 'true');
  setState('generating');
  try {
    for await (const chunk of vlm.generate(options)) {
      if (chunk.text) text += chunk.text;
      if (chunk.tokenId !== undefined && chunk.tokenId !== null) {
        tokens++;
        firstTokenMs ??= performance.now() - t0;
      }
      if (chunk.done) {
        finishReason = chunk.finishReason ?? 'stop';
        usage = chunk.usage;
      }
      onFrame('answer', () => {
        ui.answer.textContent = text;
        ui.stats.textContent = stats();
      });
    }
  } catch (err) {
    if (err?.name === 'AbortError') finishReason = 'abort';
    else failure = err;
  }
  flushFrame();
  askCtl = null;
  ui.answer.textContent = text;
  ui.answer.setAttribute('aria-busy', 'false');
  if (failure) {
    ui.stats.textContent = '';
    if (FATAL.has(failure.name)) await disposeModel();
    showError(failure);
    setState('error');
    return;
  }
  finishReason ??= 'stop';
  ui.stats.textContent = stats();
  document.body.dataset.finishReason = finishReason;
  setState('answered');
}

// ---- start ----
async function init() {
  presets = await loadPresets(location.href);
  for (const p of presets) ui.model.add(new Option(p.name, p.url));
  const choice = initialChoice(presets, location.search, location.href);
  if (choice.preset) ui.model.value = choice.preset.url;
  else ui.modelUrl.value = choice.url;
  showPreset();

  ui.model.addEventListener('change', () => {
    ui.modelUrl.value = '';
    showPreset();
  });
  ui.modelUrl.addEventListener('input', showPreset);
  ui.load.addEventListener('click', load);
  ui.ask.addEventListener('click', ask);
  ui.prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !ui.ask.disabled && !askCtl) ask();
  });
  for (const input of [ui.photo, ui.photoPick]) {
    input.addEventListener('change', () => input.files?.[0] && setPhoto(input.files[0]));
  }
  ui.clearPhoto.addEventListener('click', clearPhoto);

  if (!('gpu' in navigator)) {
    reportNoWebGPU({ name: 'WebGPUUnavailableError', message: 'navigator.gpu is not available in this browser' });
    return;
  }
  try {
    pkg = await import('/web/dist/index.js');
  } catch (err) {
    showError(err, 'The webvlm package did not load: build it into web/dist/ and serve the repository with node scripts/serve.mjs.');
    setState('error');
    ui.load.disabled = true;
    return;
  }
  setState('idle');
  if (choice.autoload) load();
}

init().catch((err) => {
  showError(err);
  setState('error');
});
