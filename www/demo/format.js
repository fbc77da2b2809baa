// Pure text helpers for the demo page: load progress (speed, ETA), answer statistics.
// Time is passed in rather than read, so tests/browser/demo-format.test.mjs runs them in Node.

const MB = 1e6;
const mb = (bytes) => (bytes / MB).toFixed(1);

/** 0:07, 1:05, 1:02:03 */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * Follows WebVLM.load's onProgress events. Speed is measured over a sliding window of network
 * bytes only, so shards read from the cache neither inflate it nor make the ETA jump.
 */
export class LoadMeter {
  constructor(windowMs = 3000) {
    this.windowMs = windowMs;
    this.samples = []; // [timeMs, networkBytes]
    this.networkBytes = 0;
    this.cacheBytes = 0;
    this.lastLoaded = 0;
    this.startMs = null;
    this.total = 0;
  }

  /** Bytes per second over the window, or null until there is enough of it to mean anything. */
  speed() {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || last[0] - first[0] < 500) return null;
    return ((last[1] - first[1]) * 1000) / (last[0] - first[0]);
  }

  /** @returns {{fraction: number|null, text: string}} fraction null = indeterminate. */
  update(p, nowMs) {
    this.startMs ??= nowMs;
    const loaded = p.loaded ?? 0;
    this.total = p.total ?? this.total;
    if (p.phase === 'download') {
      const delta = Math.max(0, loaded - this.lastLoaded);
      if (p.fromCache) this.cacheBytes += delta;
      else this.networkBytes += delta;
    }
    this.lastLoaded = loaded;
    this.samples.push([nowMs, this.networkBytes]);
    while (this.samples.length > 2 && nowMs - this.samples[1][0] >= this.windowMs) this.samples.shift();

    const fraction = this.total > 0 ? Math.min(1, loaded / this.total) : null;
    const amount = this.total > 0 ? `${mb(loaded)} / ${mb(this.total)} MB` : `${mb(loaded)} MB`;
    const file = p.file ?? 'weights';
    switch (p.phase) {
      case 'manifest':
        return { fraction: null, text: 'Reading the model manifest…' };
      case 'download': {
        if (p.fromCache) return { fraction, text: `Reading ${file} from cache — ${amount}` };
        let text = `Downloading ${file} — ${amount}`;
        const bps = this.speed();
        if (bps !== null && bps > 0) {
          text += ` · ${mb(bps)} MB/s`;
          if (this.total > loaded) text += ` · ETA ${formatDuration((this.total - loaded) / bps)}`;
        }
        return { fraction, text };
      }
      case 'verify':
        return { fraction, text: `Verifying ${file} — ${amount}` };
      case 'upload':
        return { fraction, text: 'Uploading weights to the GPU…' };
      case 'ready':
        return { fraction: 1, text: this.summary(nowMs) };
      default:
        return { fraction, text: amount };
    }
  }

  /** The line shown once the model is ready. */
  summary(nowMs) {
    if (this.networkBytes === 0) return 'Loaded from cache';
    const secs = (nowMs - (this.startMs ?? nowMs)) / 1000;
    let text = `Loaded ${mb(this.total || this.networkBytes)} MB in ${secs.toFixed(1)} s`;
    if (this.cacheBytes > 0) text += ` (${mb(this.cacheBytes)} MB from cache)`;
    return text;
  }
}

/**
 * "12 tokens · 8.4 tok/s · first token 320 ms". Prefers the engine's own timings (usage) and
 * falls back to what the page measured around the stream.
 * @param {{tokens: number, elapsedMs: number, firstTokenMs: number|null, usage?: object, finishReason?: string}} s
 */
export function formatStats({ tokens, elapsedMs, firstTokenMs, usage, finishReason }) {
  const n = usage?.completionTokens ?? tokens;
  const t = usage?.timings;
  const parts = [`${n} token${n === 1 ? '' : 's'}`];
  // Decode throughput: the first token comes out of prefill, so it is not part of decode time.
  let tps = null;
  if (t?.decodeMs > 0) tps = (n > 1 ? n - 1 : n) / (t.decodeMs / 1000);
  else if (firstTokenMs !== null && elapsedMs > firstTokenMs && n > 1) tps = (n - 1) / ((elapsedMs - firstTokenMs) / 1000);
  if (tps !== null) parts.push(`${tps.toFixed(1)} tok/s`);
  const ttft = t?.firstTokenMs ?? firstTokenMs;
  if (ttft !== null && ttft !== undefined) parts.push(`first token ${Math.round(ttft)} ms`);
  if (usage?.promptTokens) parts.push(`prompt ${usage.promptTokens} tokens`);
  const why = { abort: 'stopped', length: 'hit the token limit', context: 'context full' }[finishReason];
  if (why) parts.push(why);
  return parts.join(' · ');
}
