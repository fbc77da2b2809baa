// The shell's downloader against scripts/serve.mjs in Node (fetch and WebCrypto are the
// browser's APIs there too): a connection that goes silent is dropped and resumed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from '../../scripts/serve.mjs';
import { downloadFile } from '../../web/dist/worker/download.js';
import { MemoryStore } from '../../web/dist/cache/store.js';

const SIZE = 200_003;
const content = Buffer.alloc(SIZE);
for (let i = 0; i < SIZE; i++) content[i] = (i * 13 + 5) & 0xff;
const entry = { file: 'weights-00000.bin', bytes: SIZE, sha256: crypto.createHash('sha256').update(content).digest('hex') };
let server;
let tmp;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webvlm-download-'));
  fs.mkdirSync(path.join(tmp, 'm'), { recursive: true });
  fs.writeFileSync(path.join(tmp, 'm', entry.file), content);
  server = await startServer({ port: 0, models: [tmp], quiet: true });
});
after(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const control = async (what, body) => {
  const res = await fetch(new URL(`/__test/${what}`, server.url), { method: 'POST', body: body && JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  assert.ok(res.ok, what);
};
const url = () => new URL(`/models/m/${entry.file}`, server.url).href;

test('a download that receives nothing for the stall timeout is dropped and resumed where it stopped', async () => {
  await control('reset');
  await control('fault', { path: entry.file, kind: 'cut', afterBytes: 100_000, holdMs: 60_000, times: 1 });
  const store = new MemoryStore();
  const t0 = Date.now();
  await downloadFile(url(), entry, store, () => undefined, () => undefined, undefined, 500);
  assert.ok(Date.now() - t0 < 10_000, 'not waited out');
  assert.ok(store.isComplete(entry));
  const log = (await (await fetch(new URL('/__test/log', server.url))).json()).filter((r) => r.path.endsWith(entry.file));
  assert.equal(log.length, 2, JSON.stringify(log));
  assert.equal(log[1].range, 'bytes=100000-');
  assert.equal(log[1].status, 206);
});

test('a connection that stalls every time ends in a NetworkError that says so', async () => {
  await control('reset');
  await control('fault', { path: entry.file, kind: 'cut', afterBytes: 0, holdMs: 60_000, times: 10 });
  const store = new MemoryStore();
  await assert.rejects(downloadFile(url(), entry, store, () => undefined, () => undefined, undefined, 200), (e) => {
    assert.equal(e.name, 'NetworkError');
    assert.match(e.message, /nothing received for 0\.2 s \(gave up after 5 retries\)/);
    return true;
  });
  assert.equal(store.isComplete(entry), false);
});
