// The Cache API store without a browser: a CacheStorage stand-in (what the store uses of it)
// shows what the loader's reader holds in memory.
import assert from 'node:assert/strict';
import { test } from 'node:test';

class FakeCache {
  entries = new Map();
  bodiesRead = [];
  async match(url) {
    const r = this.entries.get(String(url));
    if (!r) return undefined;
    const bodiesRead = this.bodiesRead;
    const clone = r.clone();
    return { headers: clone.headers, text: () => clone.text(), arrayBuffer: () => (bodiesRead.push(String(url)), clone.arrayBuffer()) };
  }
  async put(url, res) {
    this.entries.set(String(url), new Response(await res.arrayBuffer(), { headers: res.headers }));
  }
  async delete(url) {
    return this.entries.delete(String(url?.url ?? url));
  }
  async keys() {
    return [...this.entries.keys()].map((url) => ({ url }));
  }
}
const cache = new FakeCache();
globalThis.caches = { open: async () => cache, has: async () => true };
const { CacheApiStore } = await import('../../web/dist/cache/cache-api.js');

async function put(store, file, bytes) {
  const w = await store.openWriter(file);
  w.write(bytes, 0);
  await store.markComplete({ file, bytes: bytes.length, sha256: 'x' });
}

test('the Cache API reader holds one file at a time: brought in by prepare, let go by release', async () => {
  const store = await CacheApiStore.open('model', 'https://example.test/model/');
  const a = new Uint8Array(1000).fill(1);
  const b = new Uint8Array(2000).fill(2);
  await put(store, 'weights-00000.bin', a);
  await put(store, 'weights-00001.bin', b);
  const reader = await store.openReader(['weights-00000.bin', 'weights-00001.bin']);
  assert.deepEqual(cache.bodiesRead, [], 'opening reads no body');
  assert.equal(reader.size('weights-00000.bin'), undefined);
  await reader.prepare('weights-00000.bin');
  assert.equal(reader.size('weights-00000.bin'), 1000);
  const target = new Uint8Array(1000);
  reader.readInto('weights-00000.bin', target);
  assert.deepEqual(target, a);
  reader.release('weights-00000.bin');
  assert.equal(reader.size('weights-00000.bin'), undefined, 'released');
  await reader.prepare('weights-00001.bin');
  assert.deepEqual(reader.read('weights-00001.bin'), b);
  assert.equal(reader.size('weights-00000.bin'), undefined, 'only the prepared file is held');
  await reader.prepare('not-listed.bin');
  assert.equal(reader.size('not-listed.bin'), undefined);
  assert.equal(cache.bodiesRead.filter((u) => u.endsWith('.bin')).length, 2, 'each body read once');
  await reader.close();
  assert.equal(reader.size('weights-00001.bin'), undefined);
});
