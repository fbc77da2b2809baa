// Tests for scripts/serve.mjs, the static + model server the browser tests run against.
//   node --test tests/browser/serve.test.mjs
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from '../../scripts/serve.mjs';

let server;
let base;
let tmp;
// Not a multiple of any chunk size, so the middle byte and the cut point land mid-chunk.
const SIZE = 200_003;
const content = Buffer.alloc(SIZE);
for (let i = 0; i < SIZE; i++) content[i] = (i * 31 + 7) & 0xff;
const MID = Math.floor(SIZE / 2);

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webvlm-serve-'));
  const models = path.join(tmp, 'models');
  fs.mkdirSync(path.join(models, 'tiny'), { recursive: true });
  fs.mkdirSync(path.join(models, 'org', 'name'), { recursive: true });
  fs.writeFileSync(path.join(models, 'tiny', 'weights-00000.bin'), content);
  fs.writeFileSync(path.join(models, 'tiny', 'manifest.json'), '{"files":[]}');
  fs.writeFileSync(path.join(models, 'org', 'name', 'config.json'), '{"model_type":"idefics3"}');
  // A root with a www/ page and a secret file next to it, to check traversal.
  const root = path.join(tmp, 'root');
  fs.mkdirSync(path.join(root, 'www', 'bench'), { recursive: true });
  fs.mkdirSync(path.join(root, 'web', 'dist', 'wasm'), { recursive: true });
  fs.writeFileSync(path.join(root, 'www', 'index.html'), '<!doctype html><title>demo</title>');
  fs.writeFileSync(path.join(root, 'www', 'bench', 'index.html'), '<!doctype html><title>bench</title>');
  fs.writeFileSync(path.join(root, 'web', 'dist', 'index.js'), 'export {};');
  fs.writeFileSync(path.join(root, 'web', 'dist', 'wasm', 'x_bg.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d]));
  fs.writeFileSync(path.join(root, 'package.json'), '{"secret":true}');
  fs.writeFileSync(path.join(models, 'package.json'), '{"secret":true}');
  server = await startServer({ port: 0, models: [models], root, quiet: true });
  base = server.url;
});

after(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

beforeEach(async () => {
  await fetch(new URL('/__test/reset', base), { method: 'POST' });
});

/** GET with a raw, unnormalised path (fetch would resolve '..' before sending). */
function rawGet(rawPath) {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(base);
    http
      .get({ hostname, port, path: rawPath }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      })
      .on('error', reject);
  });
}

const url = (p) => new URL(p, base);
const fault = (body) =>
  fetch(url('/__test/fault'), { method: 'POST', body: JSON.stringify(body) }).then((r) => {
    assert.equal(r.status, 200);
    return r.json();
  });
const bytes = async (res) => Buffer.from(await res.arrayBuffer());

test('full GET of a model file with headers', async () => {
  const res = await fetch(url('/models/tiny/weights-00000.bin'));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  assert.equal(res.headers.get('content-length'), String(SIZE));
  assert.equal(res.headers.get('accept-ranges'), 'bytes');
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.equal(res.headers.get('access-control-allow-origin'), '*');
  assert.match(res.headers.get('access-control-expose-headers'), /Content-Range/);
  assert.ok((await bytes(res)).equals(content));
});

test('Range requests: 206 with the right bytes, open-ended and clamped', async () => {
  let res = await fetch(url('/models/tiny/weights-00000.bin'), { headers: { Range: 'bytes=100-199' } });
  assert.equal(res.status, 206);
  assert.equal(res.headers.get('content-range'), `bytes 100-199/${SIZE}`);
  assert.equal(res.headers.get('content-length'), '100');
  assert.ok((await bytes(res)).equals(content.subarray(100, 200)));

  res = await fetch(url('/models/tiny/weights-00000.bin'), { headers: { Range: `bytes=${SIZE - 10}-` } });
  assert.equal(res.status, 206);
  assert.ok((await bytes(res)).equals(content.subarray(SIZE - 10)));

  res = await fetch(url('/models/tiny/weights-00000.bin'), { headers: { Range: `bytes=5-${SIZE + 100}` } });
  assert.equal(res.status, 206);
  assert.equal(res.headers.get('content-range'), `bytes 5-${SIZE - 1}/${SIZE}`);
  assert.ok((await bytes(res)).equals(content.subarray(5)));
});

test('unsatisfiable Range is 416 with Content-Range */size', async () => {
  const res = await fetch(url('/models/tiny/weights-00000.bin'), { headers: { Range: `bytes=${SIZE}-` } });
  assert.equal(res.status, 416);
  assert.equal(res.headers.get('content-range'), `bytes */${SIZE}`);
  await res.arrayBuffer();
});

test('HEAD sends headers without a body', async () => {
  const res = await fetch(url('/models/tiny/weights-00000.bin'), { method: 'HEAD' });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-length'), String(SIZE));
  assert.equal((await res.arrayBuffer()).byteLength, 0);
});

test('Hugging Face layout maps any revision to the model directory', async () => {
  for (const p of ['/tiny/resolve/main/manifest.json', '/tiny/resolve/abc123/manifest.json', '/org/name/resolve/main/config.json']) {
    const res = await fetch(url(p));
    assert.equal(res.status, 200, p);
    assert.match(res.headers.get('content-type'), /application\/json/);
  }
  const res = await fetch(url('/models/org/name/config.json'));
  assert.deepEqual(await res.json(), { model_type: 'idefics3' });
  assert.equal((await fetch(url('/tiny/resolve/main/missing.bin'))).status, 404);
});

test('static pages, package files and content types', async () => {
  let res = await fetch(url('/'));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.match(await res.text(), /demo/);
  res = await fetch(url('/bench/'));
  assert.match(await res.text(), /bench/);
  res = await fetch(url('/bench'), { redirect: 'manual' });
  assert.equal(res.status, 301);
  assert.equal(res.headers.get('location'), '/bench/');
  res = await fetch(url('/web/dist/index.js'));
  assert.match(res.headers.get('content-type'), /^text\/javascript/);
  await res.arrayBuffer();
  res = await fetch(url('/web/dist/wasm/x_bg.wasm'));
  assert.equal(res.headers.get('content-type'), 'application/wasm');
  await res.arrayBuffer();
  assert.equal((await fetch(url('/nope.html'))).status, 404);
});

test('path traversal is refused, raw and percent-encoded', async () => {
  for (const p of [
    '/models/../package.json',
    '/models/tiny/../../package.json',
    '/models/%2e%2e/package.json',
    '/models/tiny/%2E%2E/%2e%2e/package.json',
    '/models/tiny/..%2f..%2fpackage.json',
    '/web/../package.json',
    '/%2e%2e/package.json',
    '/tiny/resolve/main/..%2f..%2fpackage.json',
    '/models/tiny/%zz',
  ]) {
    const res = await rawGet(p);
    assert.ok(res.status >= 400, `${p} → ${res.status}`);
    assert.doesNotMatch(res.body, /secret/, p);
  }
});

test('cut fault drops the connection after N bytes, once', async () => {
  await fault({ path: 'weights-00000.bin', kind: 'cut', afterBytes: 1000, times: 1 });
  const res = await fetch(url('/models/tiny/weights-00000.bin'));
  assert.equal(res.status, 200);
  let got = null;
  try {
    got = await bytes(res);
  } catch {
    // the expected outcome: the body stream errors on the premature close
  }
  if (got) assert.ok(got.length < SIZE, `read ${got.length} bytes of a cut response`);
  const entry = server.log.find((e) => e.path.endsWith('weights-00000.bin'));
  assert.equal(entry.bytesSent, 1000);
  assert.equal(entry.fault, 'cut');
  // The fault was used up: the next request is whole.
  assert.ok((await bytes(await fetch(url('/models/tiny/weights-00000.bin')))).equals(content));
});

test('cut fault with afterBytes 0 sends headers only', async () => {
  await fault({ path: 'weights-00000.bin', kind: 'cut', afterBytes: 0 });
  const res = await fetch(url('/models/tiny/weights-00000.bin'));
  assert.equal(res.status, 200);
  await assert.rejects(res.arrayBuffer());
});

test('corrupt fault flips exactly the middle byte, once, respecting Range', async () => {
  await fault({ path: 'weights-00000.bin', kind: 'corrupt', times: 1 });
  // A range that misses the middle neither corrupts nor uses up the fault.
  let res = await fetch(url('/models/tiny/weights-00000.bin'), { headers: { Range: 'bytes=0-99' } });
  assert.ok((await bytes(res)).equals(content.subarray(0, 100)));

  res = await fetch(url('/models/tiny/weights-00000.bin'), { headers: { Range: `bytes=${MID - 5}-${MID + 5}` } });
  const got = await bytes(res);
  const expected = Buffer.from(content.subarray(MID - 5, MID + 6));
  expected[5] ^= 0xff;
  assert.ok(got.equals(expected));

  res = await fetch(url('/models/tiny/weights-00000.bin'));
  assert.ok((await bytes(res)).equals(content), 'second full GET is clean');
});

test('corrupt fault on a full GET differs in exactly one byte', async () => {
  await fault({ path: 'weights-00000.bin', kind: 'corrupt', times: 2 });
  for (let i = 0; i < 2; i++) {
    const got = await bytes(await fetch(url('/models/tiny/weights-00000.bin')));
    assert.equal(got.length, SIZE);
    const diffs = [];
    for (let j = 0; j < SIZE; j++) if (got[j] !== content[j]) diffs.push(j);
    assert.deepEqual(diffs, [MID]);
    assert.equal(got[MID], content[MID] ^ 0xff);
  }
  assert.ok((await bytes(await fetch(url('/models/tiny/weights-00000.bin')))).equals(content));
});

test('status fault, matched in order, times -1 is forever', async () => {
  await fault({ path: 'manifest.json', kind: 'status', status: 500, times: 1 });
  await fault({ path: 'manifest.json', kind: 'status', status: 503, times: -1 });
  const statuses = [];
  for (let i = 0; i < 4; i++) {
    const res = await fetch(url('/models/tiny/manifest.json'));
    statuses.push(res.status);
    await res.arrayBuffer();
  }
  assert.deepEqual(statuses, [500, 503, 503, 503]);
  // Other files are unaffected.
  assert.equal((await fetch(url('/models/tiny/weights-00000.bin'), { method: 'HEAD' })).status, 200);
});

test('bad fault bodies are rejected', async () => {
  for (const body of ['nope', '{"path":"x","kind":"melt"}', '{"kind":"cut"}', '{"path":"x","kind":"status"}']) {
    const res = await fetch(url('/__test/fault'), { method: 'POST', body });
    assert.equal(res.status, 400, body);
    await res.arrayBuffer();
  }
});

test('the request log records method, path, range, status, bytes and time; reset clears it and faults', async () => {
  const t0 = Date.now();
  await (await fetch(url('/models/tiny/weights-00000.bin'), { headers: { Range: 'bytes=0-9' } })).arrayBuffer();
  await (await fetch(url('/models/tiny/manifest.json'), { method: 'HEAD' })).arrayBuffer();
  await (await fetch(url('/models/tiny/missing.bin'))).arrayBuffer();
  const log = await (await fetch(url('/__test/log'))).json();
  assert.equal(log.length, 3, 'test endpoints are not logged');
  assert.deepEqual(
    log.map(({ method, path, range, status, bytesSent }) => ({ method, path, range, status, bytesSent })),
    [
      { method: 'GET', path: '/models/tiny/weights-00000.bin', range: 'bytes=0-9', status: 206, bytesSent: 10 },
      { method: 'HEAD', path: '/models/tiny/manifest.json', range: null, status: 200, bytesSent: 0 },
      { method: 'GET', path: '/models/tiny/missing.bin', range: null, status: 404, bytesSent: 10 },
    ],
  );
  for (const e of log) assert.ok(e.t >= t0 && e.t <= Date.now());
  assert.equal(server.log.length, 3, 'the in-process log is the same array');

  await fault({ path: 'manifest.json', kind: 'status', status: 500, times: -1 });
  await fetch(url('/__test/reset'), { method: 'POST' });
  assert.deepEqual(await (await fetch(url('/__test/log'))).json(), []);
  assert.equal(server.log.length, 0);
  assert.equal((await fetch(url('/models/tiny/manifest.json'))).status, 200, 'reset cleared the fault');
});

test('port 0 reports the real port', () => {
  const port = Number(new URL(base).port);
  assert.ok(port > 0);
  assert.equal(server.port, port);
});

test('If-Range: the same version resumes (206), another gets the whole file (200); a changed fault is a new version', async () => {
  const file = url('/models/tiny/weights-00000.bin');
  const first = await fetch(file);
  await first.arrayBuffer();
  const etag = first.headers.get('ETag');
  const lastModified = first.headers.get('Last-Modified');
  assert.match(etag ?? '', /^"[0-9a-f]+-[0-9a-f]+"$/);
  assert.ok(lastModified);
  let res = await fetch(file, { headers: { Range: 'bytes=100-', 'If-Range': etag } });
  assert.equal(res.status, 206);
  assert.ok((await bytes(res)).equals(content.subarray(100)));
  res = await fetch(file, { headers: { Range: 'bytes=100-', 'If-Range': lastModified } });
  assert.equal(res.status, 206);
  await res.arrayBuffer();
  res = await fetch(file, { headers: { Range: 'bytes=100-', 'If-Range': '"another-version"' } });
  assert.equal(res.status, 200);
  assert.ok((await bytes(res)).equals(content));

  await fault({ path: 'weights-00000.bin', kind: 'changed', times: 1 });
  res = await fetch(file, { headers: { Range: 'bytes=100-', 'If-Range': etag } });
  assert.equal(res.status, 200, 'a changed file comes whole');
  assert.notEqual(res.headers.get('ETag'), etag);
  assert.ok((await bytes(res)).equals(content), 'with the same bytes');
  res = await fetch(file, { headers: { Range: 'bytes=100-', 'If-Range': etag } });
  assert.equal(res.status, 206, 'the fault was used up');
  await res.arrayBuffer();
  const log = await (await fetch(url('/__test/log'))).json();
  assert.equal(log.at(-1).ifRange, etag);
});
