// Tests for the demo page's pure helpers (www/demo/format.js, www/demo/presets.js).
//   node --test tests/browser/demo-format.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadMeter, formatDuration, formatStats } from '../../www/demo/format.js';
import { loadPresets, initialChoice, fallbackPresets } from '../../www/demo/presets.js';

const BASE = 'http://127.0.0.1:8080/';

test('formatDuration', () => {
  assert.equal(formatDuration(0), '0:00');
  assert.equal(formatDuration(31), '0:31');
  assert.equal(formatDuration(65.4), '1:05');
  assert.equal(formatDuration(3723), '1:02:03');
});

test('LoadMeter: download line with speed and ETA from network bytes', () => {
  const m = new LoadMeter();
  const total = 80e6;
  assert.equal(m.update({ phase: 'manifest', loaded: 0, total: 0, fromCache: false }, 0).text, 'Reading the model manifest…');
  // 2 MB/s for 6 s.
  let out;
  for (let t = 0; t <= 6000; t += 500) {
    out = m.update({ phase: 'download', file: 'weights-00000.bin', loaded: t * 2000, total, fromCache: false }, t);
  }
  assert.equal(out.text, 'Downloading weights-00000.bin — 12.0 / 80.0 MB · 2.0 MB/s · ETA 0:34');
  assert.equal(out.fraction, 12e6 / total);
  assert.equal(m.update({ phase: 'ready', loaded: total, total, fromCache: false }, 10000).fraction, 1);
  assert.match(m.summary(10000), /^Loaded 80\.0 MB in 10\.0 s$/);
});

test('LoadMeter: no speed until half a second has passed', () => {
  const m = new LoadMeter();
  const out = m.update({ phase: 'download', file: 'a.bin', loaded: 1e6, total: 2e6, fromCache: false }, 0);
  assert.equal(out.text, 'Downloading a.bin — 1.0 / 2.0 MB');
});

test('LoadMeter: everything from cache says so', () => {
  const m = new LoadMeter();
  m.update({ phase: 'manifest', loaded: 0, total: 0, fromCache: true }, 0);
  const out = m.update({ phase: 'download', file: 'w.bin', loaded: 5e6, total: 5e6, fromCache: true }, 10);
  assert.equal(out.text, 'Reading w.bin from cache — 5.0 / 5.0 MB');
  assert.equal(m.update({ phase: 'ready', loaded: 5e6, total: 5e6, fromCache: true }, 20).text, 'Loaded from cache');
});

test('LoadMeter: cached shards do not count towards speed', () => {
  const m = new LoadMeter();
  m.update({ phase: 'download', file: 'a.bin', loaded: 50e6, total: 60e6, fromCache: true }, 0);
  m.update({ phase: 'download', file: 'b.bin', loaded: 50e6, total: 60e6, fromCache: false }, 1);
  const out = m.update({ phase: 'download', file: 'b.bin', loaded: 51e6, total: 60e6, fromCache: false }, 1001);
  assert.match(out.text, /· 1\.0 MB\/s · ETA 0:09$/);
  assert.match(m.summary(2001), /\(50\.0 MB from cache\)/);
});

test('formatStats prefers engine timings and names the finish reason', () => {
  const usage = { promptTokens: 80, completionTokens: 11, timings: { prefillMs: 300, decodeMs: 1000, firstTokenMs: 320 } };
  assert.equal(
    formatStats({ tokens: 11, elapsedMs: 1400, firstTokenMs: 330, usage, finishReason: 'stop' }),
    '11 tokens · 10.0 tok/s · first token 320 ms · prompt 80 tokens',
  );
  assert.equal(
    formatStats({ tokens: 5, elapsedMs: 1500, firstTokenMs: 500, finishReason: 'abort' }),
    '5 tokens · 4.0 tok/s · first token 500 ms · stopped',
  );
  assert.equal(formatStats({ tokens: 0, elapsedMs: 10, firstTokenMs: null }), '0 tokens');
});

const fakeFetch = (status, body) => async (url) => ({
  ok: status === 200,
  status,
  url: String(url),
  json: async () => JSON.parse(body),
});

test('loadPresets reads models.json, resolving relative URLs', async () => {
  const presets = await loadPresets(BASE, fakeFetch(200, '[{"name":"A","url":"/models/a/","kind":"text","note":"n"},{"url":"https://x.test/b/"}]'));
  assert.deepEqual(presets, [
    { name: 'A', url: 'http://127.0.0.1:8080/models/a/', kind: 'text', note: 'n' },
    { name: 'https://x.test/b/', url: 'https://x.test/b/', kind: 'vlm', note: '' },
  ]);
});

test('loadPresets falls back to the fixture when models.json is missing or useless', async () => {
  const fallback = fallbackPresets(BASE);
  assert.equal(fallback[0].url, 'http://127.0.0.1:8080/models/smolvlm-tiny/');
  assert.match(fallback[0].note, /webvlm convert --model DIR --quant q4 --out www\/models\/NAME/);
  assert.deepEqual(await loadPresets(BASE, fakeFetch(404, '')), fallback);
  assert.deepEqual(await loadPresets(BASE, fakeFetch(200, '[]')), fallback);
  assert.deepEqual(await loadPresets(BASE, fakeFetch(200, 'not json')), fallback);
  assert.deepEqual(await loadPresets(BASE, async () => { throw new TypeError('offline'); }), fallback);
});

test('initialChoice: ?model overrides the default, ?autoload=1 loads', () => {
  const presets = [
    { name: 'A', url: 'http://127.0.0.1:8080/models/a/', kind: 'vlm', note: '' },
    { name: 'B', url: 'http://127.0.0.1:8080/models/b/', kind: 'text', note: '' },
  ];
  assert.deepEqual(initialChoice(presets, '', BASE), { url: presets[0].url, preset: presets[0], autoload: false });
  assert.deepEqual(initialChoice(presets, '?model=/models/b/&autoload=1', BASE), { url: presets[1].url, preset: presets[1], autoload: true });
  const custom = initialChoice(presets, '?model=https%3A%2F%2Fhf.test%2Fo%2Fm%2Fresolve%2Fmain%2F', BASE);
  assert.deepEqual(custom, { url: 'https://hf.test/o/m/resolve/main/', preset: null, autoload: false });
});
