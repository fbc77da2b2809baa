// The browser runtime end to end, in Debian's Chromium on SwiftShader WebGPU: golden tokens,
// the OPFS cache, resumed and corrupted downloads, abort, main-thread responsiveness, typed
// errors, and the demo page.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, DEFAULT_LIMITS, GOLDENS, REPO, FIXTURE, launch, openPage, run, serve, weightRequests, workerPatch } from './harness.mjs';

const T = { timeout: 600_000 };
let browser;
let server;

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launch();
  server = await serve();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

/**
 * The shard's first request is cut after `bytes`, and every later one fails with 503 until the
 * test resets the server: a load is then stuck retrying mid-shard (for seconds, with backoff)
 * until it is aborted. What it stored is whatever the browser handed over before the cut: at
 * least the first 64 KiB chunk, not always the bytes queued when the connection dropped.
 */
async function stallAfter(server, bytes) {
  await server.fault({ path: 'weights-00000.bin', kind: 'cut', afterBytes: bytes, times: 1 });
  await server.fault({ path: 'weights-00000.bin', kind: 'status', status: 503, times: -1 });
}

/** Load the fixture and generate greedily with the golden prompt and image. */
async function loadAndGenerate(page, url, maxTokens = GOLDENS.max_new_tokens) {
  return run(page, async (api, arg, image) => {
    const events = [];
    const vlm = await api.WebVLM.load(arg.url, { onProgress: (p) => events.push(p) });
    const ids = [];
    let last;
    for await (const c of vlm.generate({ image: image(), prompt: arg.prompt, maxTokens: arg.maxTokens, ignoreEos: true })) {
      if (c.tokenId !== undefined) ids.push(c.tokenId);
      last = c;
    }
    await vlm.dispose();
    return { ids, last, events, info: vlm.info };
  }, { url, prompt: GOLDENS.prompt, maxTokens });
}

describe('browser runtime', () => {
  test('generates the transformers golden tokens, then loads again from OPFS with no shard requests', T, async () => {
    await server.reset();
    const { page, context } = await openPage(browser, server);
    const cold = await loadAndGenerate(page, server.modelUrl);
    assert.equal(cold.error, undefined, JSON.stringify(cold.error));
    assert.deepEqual(cold.ids, GOLDENS.greedy_tokens, 'greedy tokens equal the transformers goldens');
    assert.equal(cold.last.usage.promptTokens, GOLDENS.input_ids.length);
    assert.equal(cold.last.finishReason, 'length');
    assert.ok(cold.events.some((e) => e.phase === 'download' && !e.fromCache), 'a cold load downloads');
    const lastEvent = cold.events.at(-1);
    assert.equal(lastEvent.phase, 'ready');
    assert.equal(lastEvent.loaded, lastEvent.total);
    assert.equal(cold.info.modelType, 'idefics3');
    assert.equal(cold.info.adapter.isFallbackAdapter || cold.info.adapter.description.length >= 0, true);
    assert.equal(weightRequests(await server.log()).length, 1);

    await server.reset();
    const second = await context.newPage();
    await second.goto(page.url());
    const warm = await loadAndGenerate(second, server.modelUrl, 3);
    assert.equal(warm.error, undefined, JSON.stringify(warm.error));
    assert.deepEqual(warm.ids, GOLDENS.greedy_tokens.slice(0, 3));
    const log = await server.log();
    assert.deepEqual(log.filter((r) => !r.path.endsWith('manifest.json') && r.path.includes('/models/')), [], 'no file but the manifest is requested');
    assert.ok(warm.events.every((e) => e.fromCache), 'every progress event says fromCache');
    await context.close();
  });

  // What many phones give: WebGPU's default limits (128 MiB bindings, 256 MiB buffers, 16 KiB of
  // workgroup memory, 256 invocations) and no optional feature (no shader-f16, no subgroups).
  test('the golden tokens on a device at WebGPU default limits with no optional features', T, async () => {
    const { page, context } = await openPage(browser, server);
    const out = await run(page, async (api, arg, image, patchedWorker) => {
      const vlm = await api.WebVLM.load(arg.url, { worker: patchedWorker(arg.patch) });
      const ids = [];
      for await (const c of vlm.generate({ image: image(), prompt: arg.prompt, maxTokens: arg.maxTokens, ignoreEos: true })) {
        if (c.tokenId !== undefined) ids.push(c.tokenId);
      }
      const adapter = vlm.info.adapter;
      await vlm.dispose();
      return { ids, limits: adapter?.limits, features: adapter?.features };
    }, { url: server.modelUrl, prompt: GOLDENS.prompt, maxTokens: GOLDENS.max_new_tokens, patch: workerPatch({ defaults: true }) });
    assert.equal(out.error, undefined, `${JSON.stringify(out.error)}\n${page.consoleLines.join('\n')}`);
    assert.equal(out.limits.maxStorageBufferBindingSize, DEFAULT_LIMITS.maxStorageBufferBindingSize, JSON.stringify(out.limits));
    assert.deepEqual(out.features, [], 'no optional feature');
    assert.deepEqual(out.ids, GOLDENS.greedy_tokens, 'greedy tokens equal the transformers goldens');
    await context.close();
  });

  test('sampling runs on the device: seeded, reproducible, the same ids as natively', T, async () => {
    const { page, context } = await openPage(browser, server);
    const out = await run(page, async (api, arg, image) => {
      const vlm = await api.WebVLM.load(arg.url);
      const draw = async (seed) => {
        const ids = [];
        let usage;
        const opts = { image: image(), prompt: arg.prompt, maxTokens: 6, ignoreEos: true, temperature: 1.5, topK: 20, topP: 0.95, repetitionPenalty: 1.2, seed };
        for await (const c of vlm.generate(opts)) {
          if (c.tokenId !== undefined) ids.push(c.tokenId);
          if (c.usage) usage = c.usage;
        }
        return { ids, usage };
      };
      const result = { a: await draw(5), b: await draw(5), c: await draw(6) };
      await vlm.dispose();
      return result;
    }, { url: server.modelUrl, prompt: GOLDENS.prompt });
    assert.equal(out.error, undefined, `${JSON.stringify(out.error)}\n${page.consoleLines.join('\n')}`);
    // `webvlm run --model tests/fixtures/packed/smolvlm-tiny --image …/image.png --temperature 1.5
    // --top-k 20 --top-p 0.95 --repetition-penalty 1.2 --seed 5|6 --max-new-tokens 6 --ignore-eos`
    // on lavapipe: the same Philox draws and the same kernel give the same picks.
    assert.deepEqual(out.a.ids, [293, 148, 406, 219, 226, 148]);
    assert.deepEqual(out.b.ids, out.a.ids, 'the same seed draws the same tokens');
    assert.deepEqual(out.c.ids, [140, 36, 18, 232, 320, 201]);
    // Only the picked id comes back per token, not the logits row.
    assert.equal(out.a.usage.gpuCounts.perToken.readbackBytes, 4, JSON.stringify(out.a.usage.gpuCounts));
    await context.close();
  });

  test('the same model over a Hugging Face–style URL, and the chat API with KV reuse across turns', T, async () => {
    const { page, context } = await openPage(browser, server);
    const out = await run(page, async (api, arg, image) => {
      const vlm = await api.WebVLM.load(arg.url);
      const img = URL.createObjectURL(image());
      const first = await vlm.chat.completions.create({
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: img } }, { type: 'text', text: arg.prompt }] }],
        max_tokens: 4,
      });
      const chunks = [];
      const stream = await vlm.chat.completions.create({
        stream: true,
        max_tokens: 4,
        messages: [
          { role: 'user', content: [{ type: 'image_url', image_url: { url: img } }, { type: 'text', text: arg.prompt }] },
          { role: 'assistant', content: first.choices[0].message.content },
          { role: 'user', content: 'And the shapes?' },
        ],
      });
      for await (const c of stream) chunks.push(c);
      let reused = 0;
      for await (const c of vlm.generateChat([{ role: 'user', content: [{ type: 'image_url', image_url: img }, { type: 'text', text: arg.prompt }] }], { maxTokens: 2 })) {
        if (c.done) reused = c.usage.reusedTokens;
      }
      return { first, chunks, reused, url: vlm.info.url };
    }, { url: new URL('/smolvlm-tiny/resolve/main/', server.url).href, prompt: GOLDENS.prompt });
    assert.equal(out.error, undefined, JSON.stringify(out.error));
    assert.equal(out.first.object, 'chat.completion');
    assert.equal(out.first.usage.prompt_tokens, GOLDENS.input_ids.length);
    assert.equal(out.chunks[0].choices[0].delta.role, 'assistant');
    assert.ok(out.chunks.at(-1).choices[0].finish_reason);
    assert.ok(out.reused >= GOLDENS.input_ids.length - 1, `the repeated first turn reuses the cached prompt (reused ${out.reused})`);
    assert.ok(out.url.includes('/resolve/main/'));
    await context.close();
  });

  test('two tabs loading the same model share one download', T, async () => {
    await server.reset();
    const { page, context } = await openPage(browser, server);
    const other = await context.newPage();
    await other.goto(page.url());
    const load = (p) => run(p, async (api, arg) => {
      const vlm = await api.WebVLM.load(arg.url);
      await vlm.dispose();
      return 'ok';
    }, { url: server.modelUrl });
    const [a, b] = await Promise.all([load(page), load(other)]);
    assert.equal(a, 'ok', JSON.stringify(a));
    assert.equal(b, 'ok', JSON.stringify(b));
    assert.equal(weightRequests(await server.log()).length, 1, 'the shard is fetched once');
    await context.close();
  });

  test('a download cut mid-shard resumes with a Range request', T, async () => {
    await server.reset();
    await server.fault({ path: 'weights-00000.bin', kind: 'cut', afterBytes: 100_000, times: 1 });
    const { page, context } = await openPage(browser, server);
    const out = await loadAndGenerate(page, server.modelUrl, 3);
    assert.equal(out.error, undefined, JSON.stringify(out.error));
    assert.deepEqual(out.ids, GOLDENS.greedy_tokens.slice(0, 3));
    const shard = weightRequests(await server.log());
    assert.equal(shard.length, 2, JSON.stringify(shard));
    assert.equal(shard[0].range, null);
    assert.match(shard[1].range ?? '', /^bytes=\d+-$/);
    const from = Number(/bytes=(\d+)-/.exec(shard[1].range)[1]);
    assert.ok(from >= 65_536 && from <= 100_000, `resumed from the cut (byte ${from})`);
    assert.equal(shard[1].status, 206);
    assert.match(shard[1].ifRange ?? '', /^"[0-9a-f]+-[0-9a-f]+"$/, 'the resumed request names the version it continues (If-Range)');
    await context.close();
  });

  test('a download that goes silent is dropped after stallTimeout and requested again', T, async () => {
    await server.reset();
    // The shard's response sends 100 000 bytes, then nothing for two minutes.
    await server.fault({ path: 'weights-00000.bin', kind: 'cut', afterBytes: 100_000, holdMs: 120_000, times: 1 });
    const { page, context } = await openPage(browser, server);
    const out = await run(page, async (api, arg, image) => {
      let invalid;
      try {
        await api.WebVLM.load(arg.url, { stallTimeout: 0 });
      } catch (e) {
        invalid = e.name;
      }
      const t0 = performance.now();
      const vlm = await api.WebVLM.load(arg.url, { stallTimeout: 2000 });
      const loadMs = performance.now() - t0;
      const ids = [];
      for await (const c of vlm.generate({ image: image(), prompt: arg.prompt, maxTokens: 3, ignoreEos: true })) if (c.tokenId !== undefined) ids.push(c.tokenId);
      await vlm.dispose();
      return { invalid, loadMs, ids };
    }, { url: server.modelUrl, prompt: GOLDENS.prompt });
    const info = JSON.stringify(out);
    assert.equal(out.invalid, 'InvalidRequestError', info);
    assert.deepEqual(out.ids, GOLDENS.greedy_tokens.slice(0, 3), info);
    assert.ok(out.loadMs < 60_000, `the stalled connection was dropped, not waited out: ${info}`);
    const shard = weightRequests(await server.log());
    assert.equal(shard.length, 2, JSON.stringify(shard));
    // Chromium may hold back the bytes of a response that stalled: the retry starts after
    // whatever reached the store (a Range request), or from the start.
    const from = Number(/bytes=(\d+)-/.exec(shard[1].range ?? 'bytes=0-')[1]);
    assert.ok(from <= 100_000, JSON.stringify(shard));
    await context.close();
  });

  test('an aborted load keeps its partial shard, and the next load resumes it with a Range request', T, async () => {
    await server.reset();
    await stallAfter(server, 150_000);
    const { page, context } = await openPage(browser, server);
    const out = await run(page, async (api, arg) => {
      const ctl = new AbortController();
      let error;
      try {
        await api.WebVLM.load(arg.url, {
          signal: ctl.signal,
          onProgress: (p) => { if (p.file === 'weights-00000.bin' && p.fileLoaded >= 65_536) ctl.abort(); },
        });
      } catch (e) {
        error = e.name;
      }
      await fetch('/__test/reset', { method: 'POST' });
      const vlm = await api.WebVLM.load(arg.url);
      await vlm.dispose();
      return { error };
    }, { url: server.modelUrl });
    assert.equal(out.error, 'AbortError', JSON.stringify(out));
    const shard = weightRequests(await server.log());
    assert.equal(shard.length, 1, JSON.stringify(shard));
    const from = Number(/^bytes=(\d+)-$/.exec(shard[0].range ?? '')?.[1]);
    assert.ok(from >= 65_536 && from <= 150_000, `resumed where the aborted load stopped: ${JSON.stringify(shard)}`);
    assert.equal(shard[0].status, 206);
    await context.close();
  });

  test('a shard corrupted once is fetched again; one that stays corrupt is an IntegrityError and leaves nothing cached', T, async () => {
    await server.reset();
    await server.fault({ path: 'weights-00000.bin', kind: 'corrupt', times: 1 });
    let { page, context } = await openPage(browser, server);
    const once = await loadAndGenerate(page, server.modelUrl, 3);
    assert.equal(once.error, undefined, JSON.stringify(once.error));
    assert.deepEqual(once.ids, GOLDENS.greedy_tokens.slice(0, 3));
    assert.equal(weightRequests(await server.log()).length, 2);
    await context.close();

    await server.reset();
    await server.fault({ path: 'weights-00000.bin', kind: 'corrupt', times: -1 });
    ({ page, context } = await openPage(browser, server));
    const bad = await run(page, async (api, arg) => {
      let error;
      try {
        await api.WebVLM.load(arg.url);
      } catch (e) {
        error = { name: e.name, message: e.message, isClass: e instanceof api.IntegrityError };
      }
      const root = await navigator.storage.getDirectory();
      const files = [];
      const walk = async (dir, prefix) => {
        for await (const [name, h] of dir.entries()) {
          if (h.kind === 'directory') await walk(h, `${prefix}${name}/`);
          else files.push(`${prefix}${name}`);
        }
      };
      await walk(root, '');
      return { error, files, cached: await api.WebVLM.cache.list() };
    }, { url: server.modelUrl });
    assert.equal(bad.error?.name, 'IntegrityError', JSON.stringify(bad));
    assert.ok(bad.error.isClass);
    assert.ok(!bad.files.some((f) => f.endsWith('weights-00000.bin')), `no shard left in OPFS: ${bad.files}`);
    assert.ok(bad.cached.every((m) => m.files < 6), 'the corrupt shard is not marked complete');
    await server.reset();
    await context.close();
  });

  test('the Cache API store works where OPFS is not used, and WebVLM.cache lists, measures and deletes', T, async () => {
    await server.reset();
    const { page, context } = await openPage(browser, server);
    const out = await run(page, async (api, arg, image) => {
      const gen = async (vlm) => {
        const ids = [];
        for await (const c of vlm.generate({ image: image(), prompt: arg.prompt, maxTokens: 2, ignoreEos: true })) if (c.tokenId !== undefined) ids.push(c.tokenId);
        return ids;
      };
      const first = await api.WebVLM.load(arg.url, { cache: 'cache-api' });
      const ids = await gen(first);
      await first.dispose();
      const shardsAfterFirst = (await (await fetch('/__test/log')).json()).filter((r) => r.path.endsWith('.bin')).length;
      const again = await api.WebVLM.load(arg.url, { cache: 'cache-api' });
      const ids2 = await gen(again);
      await again.dispose();
      const shardsAfterSecond = (await (await fetch('/__test/log')).json()).filter((r) => r.path.endsWith('.bin')).length;
      await (await api.WebVLM.load(arg.url)).dispose(); // and into OPFS
      const listed = await api.WebVLM.cache.list();
      const usage = await api.WebVLM.cache.usage();
      const deleted = await api.WebVLM.cache.delete(arg.url);
      const afterDelete = await api.WebVLM.cache.list();
      return { ids, ids2, shardsAfterFirst, shardsAfterSecond, listed, usage, deleted, afterDelete };
    }, { url: server.modelUrl, prompt: GOLDENS.prompt });
    assert.equal(out.error, undefined, JSON.stringify(out.error));
    assert.deepEqual(out.ids, GOLDENS.greedy_tokens.slice(0, 2));
    assert.deepEqual(out.ids2, out.ids);
    assert.equal(out.shardsAfterFirst, 1);
    assert.equal(out.shardsAfterSecond, 1, 'the second Cache API load reads the cache');
    const stores = out.listed.map((m) => m.store).sort();
    assert.deepEqual(stores, ['cache-api', 'opfs']);
    for (const m of out.listed) {
      assert.equal(m.url, server.modelUrl);
      assert.equal(m.files, 6, 'five assets and one shard verified');
      assert.ok(m.bytes > 337_408, `${m.store} holds the shard (${m.bytes} bytes)`);
    }
    assert.ok(out.usage.models >= 2 * 337_408 && out.usage.quota > 0, JSON.stringify(out.usage));
    assert.equal(out.deleted, true);
    assert.deepEqual(out.afterDelete, []);
    await context.close();
  });

  test('OPFS hygiene: a file changed on the server mid-download starts over, stale files go, a model being loaded is not deleted', T, async () => {
    await server.reset();
    await stallAfter(server, 150_000);
    const { page, context } = await openPage(browser, server);
    const out = await run(page, async (api, arg) => {
      const errorOf = (p) => p.then(() => undefined, (e) => e.name);
      // A partial shard: the load is aborted mid-download.
      const ctl = new AbortController();
      const aborted = await errorOf(api.WebVLM.load(arg.url, {
        signal: ctl.signal,
        onProgress: (p) => { if (p.file === 'weights-00000.bin' && p.fileLoaded >= 65_536) ctl.abort(); },
      }));
      await fetch('/__test/reset', { method: 'POST' });
      // A file an older manifest listed, left in the model's directory.
      const [{ key }] = await api.WebVLM.cache.list();
      const dir = await (await (await navigator.storage.getDirectory()).getDirectoryHandle('webvlm')).getDirectoryHandle(key);
      const stale = await (await dir.getFileHandle('weights-old.bin', { create: true })).createWritable();
      await stale.write(new Uint8Array(4096));
      await stale.close();
      await fetch('/__test/fault', { method: 'POST', body: JSON.stringify({ path: 'weights-00000.bin', kind: 'changed', times: -1 }) });
      // While the next load holds the model (stalled mid-download), deleting it is refused.
      await fetch('/__test/fault', { method: 'POST', body: JSON.stringify({ path: 'weights-00000.bin', kind: 'cut', afterBytes: 1000, holdMs: 1500, times: 1 }) });
      let inUse;
      const vlm = await api.WebVLM.load(arg.url, {
        onProgress: (p) => { if (p.phase === 'download' && p.file === 'weights-00000.bin' && inUse === undefined) inUse = errorOf(api.WebVLM.cache.delete(arg.url)); },
      });
      const names = [];
      for await (const [name] of dir.entries()) names.push(name);
      const storage = vlm.info.storage;
      await vlm.dispose();
      const deleted = await api.WebVLM.cache.delete(arg.url);
      return { aborted, inUse: await inUse, names: names.sort(), storage, deleted };
    }, { url: server.modelUrl });
    const info = JSON.stringify(out) + JSON.stringify(weightRequests(await server.log()));
    assert.equal(out.aborted, 'AbortError', info);
    assert.equal(out.inUse, 'ModelInUseError', info);
    assert.equal(out.deleted, true, info);
    assert.ok(!out.names.includes('weights-old.bin'), `the stale file is deleted: ${info}`);
    assert.ok(out.names.includes('weights-00000.bin') && out.names.includes('.complete.json'), info);
    assert.equal(out.storage.mode, 'opfs', info);
    const shard = weightRequests(await server.log());
    // After the aborted load: the resume, whose If-Range names the old version → the whole new
    // file (cut at 1 000 bytes), then a resume of the new version.
    const from = Number(/^bytes=(\d+)-$/.exec(shard[0].range ?? '')?.[1]);
    assert.ok(from >= 65_536 && from <= 150_000, JSON.stringify(shard));
    assert.match(shard[0].ifRange ?? '', /^"[0-9a-f]+-[0-9a-f]+"$/, JSON.stringify(shard));
    assert.equal(shard[0].status, 200, 'a changed file is sent whole');
    assert.equal(shard[1].range, 'bytes=1000-', JSON.stringify(shard));
    assert.match(shard[1].ifRange ?? '', /-v2"$/, JSON.stringify(shard));
    assert.equal(shard[1].status, 206, JSON.stringify(shard));
    await context.close();
  });

  test('where OPFS cannot be opened the files stay in memory, and the load says so', T, async () => {
    await server.reset();
    const { page, context } = await openPage(browser, server);
    const out = await run(page, async (api, arg, image, patchedWorker) => {
      const worker = patchedWorker(`navigator.storage.getDirectory = () => Promise.reject(new DOMException('denied here', 'SecurityError'));`);
      const events = [];
      const vlm = await api.WebVLM.load(arg.url, { worker, cache: 'opfs', onProgress: (p) => events.push(p) });
      const storage = vlm.info.storage;
      await vlm.dispose();
      return { storage, told: events.filter((e) => e.storage?.mode === 'memory').length, events: events.length };
    }, { url: server.modelUrl });
    assert.equal(out.storage?.mode, 'memory', JSON.stringify(out));
    assert.match(out.storage.fallback ?? '', /opfs store could not be opened \(denied here\)/);
    assert.ok(out.told > 0 && out.told >= out.events - 1, `progress events carry the fallback: ${JSON.stringify(out)}`);
    await context.close();
  });

  test('storage running out mid-download is a QuotaExceededError', T, async () => {
    await server.reset();
    const { page, context } = await openPage(browser, server);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(server.url).origin, quotaSize: 100_000 });
    const out = await run(page, async (api, arg) => {
      try {
        await api.WebVLM.load(arg.url);
        return 'loaded';
      } catch (e) {
        return { name: e.name, message: e.message };
      }
    }, { url: server.modelUrl });
    assert.equal(out.name, 'QuotaExceededError', JSON.stringify(out));
    assert.match(out.message, /storage is full after [\d.]+ of 0\.3 MB of weights-00000\.bin/);
    await context.close();
  });

  test('abort mid-generation, then generate again', T, async () => {
    const { page, context } = await openPage(browser, server);
    const out = await run(page, async (api, arg, image) => {
      const vlm = await api.WebVLM.load(arg.url);
      const ctl = new AbortController();
      let seen = 0;
      let error;
      try {
        for await (const c of vlm.generate({ image: image(), prompt: arg.prompt, maxTokens: 200, ignoreEos: true, signal: ctl.signal })) {
          if (++seen === 3) ctl.abort();
        }
      } catch (e) {
        error = e.name;
      }
      const ids = [];
      for await (const c of vlm.generate({ image: image(), prompt: arg.prompt, maxTokens: arg.n, ignoreEos: true })) {
        if (c.tokenId !== undefined) ids.push(c.tokenId);
      }
      // Leaving a loop early also stops the worker.
      for await (const c of vlm.generate({ prompt: 'hello', maxTokens: 50, ignoreEos: true })) break;
      const again = [];
      for await (const c of vlm.generate({ image: image(), prompt: arg.prompt, maxTokens: 2, ignoreEos: true })) {
        if (c.tokenId !== undefined) again.push(c.tokenId);
      }
      return { seen, error, ids, again };
    }, { url: server.modelUrl, prompt: GOLDENS.prompt, n: GOLDENS.max_new_tokens });
    assert.equal(out.error, 'AbortError', JSON.stringify(out));
    assert.ok(out.seen >= 3 && out.seen < 10, `stopped soon after the abort (${out.seen} chunks)`);
    assert.deepEqual(out.ids, GOLDENS.greedy_tokens);
    assert.deepEqual(out.again, GOLDENS.greedy_tokens.slice(0, 2));
    await context.close();
  });

  test('switching models: an abort mid-upload and a failed load leave the loaded model answering; GPU memory stays flat', T, async () => {
    await server.reset();
    const { page, context } = await openPage(browser, server);
    const out = await run(page, async (api, arg, image) => {
      const greedy = async (vlm, n) => {
        const ids = [];
        for await (const c of vlm.generate({ image: image(), prompt: arg.prompt, maxTokens: n, ignoreEos: true })) if (c.tokenId !== undefined) ids.push(c.tokenId);
        return ids;
      };
      const failure = async (p) => p.then(() => 'resolved', (e) => e.name);
      const vlm = await api.WebVLM.load(arg.url);
      const firstIds = await greedy(vlm, 3);
      const first = await vlm.gpuMemory();
      // SmolLM2 comes in two shards: abort once the first is on the GPU.
      const ctl = new AbortController();
      const phases = [];
      const aborted = await failure(vlm.switchModel(arg.twoShards, {
        signal: ctl.signal,
        onProgress: (p) => { phases.push(p.phase); if (p.phase === 'upload') ctl.abort(); },
      }));
      const afterAbort = { memory: await vlm.gpuMemory(), ids: await greedy(vlm, 3), type: vlm.info.modelType };
      const missing = await failure(vlm.switchModel(arg.missing));
      const afterMissing = { ids: await greedy(vlm, 3), type: vlm.info.modelType };
      // Ten switches between two models, each freeing the one before.
      const reserved = [];
      for (let i = 0; i < 5; i++) {
        await vlm.switchModel(arg.other);
        await vlm.switchModel(arg.url);
        reserved.push((await vlm.gpuMemory()).reserved);
      }
      const last = await greedy(vlm, 3);
      await vlm.dispose();
      return { firstIds, first, aborted, phases, afterAbort, missing, afterMissing, reserved, last };
    }, {
      url: server.modelUrl,
      prompt: GOLDENS.prompt,
      twoShards: new URL('/models/smollm2-135m-instruct/', server.url).href,
      other: new URL('/models/qwen2-tiny/', server.url).href,
      missing: new URL('/models/no-such-model/', server.url).href,
    });
    const info = JSON.stringify(out);
    assert.equal(out.error, undefined, info);
    assert.deepEqual(out.firstIds, GOLDENS.greedy_tokens.slice(0, 3));
    assert.equal(out.aborted, 'AbortError', info);
    assert.ok(out.phases.includes('upload'), info);
    assert.deepEqual(out.afterAbort.ids, GOLDENS.greedy_tokens.slice(0, 3), 'the loaded model still answers after an aborted switch');
    assert.equal(out.afterAbort.type, 'idefics3');
    assert.ok(out.afterAbort.memory.reserved <= out.first.reserved * 1.05 + 65536, `the aborted load's buffers are given back: ${info}`);
    assert.equal(out.missing, 'ModelFormatError', info);
    assert.deepEqual(out.afterMissing.ids, GOLDENS.greedy_tokens.slice(0, 3), 'the loaded model still answers after a failed switch');
    assert.equal(out.afterMissing.type, 'idefics3');
    const [low, high] = [Math.min(...out.reserved), Math.max(...out.reserved)];
    assert.ok(high <= low * 1.05 + 65536, `GPU memory stays flat over ten switches: ${out.reserved}`);
    assert.deepEqual(out.last, GOLDENS.greedy_tokens.slice(0, 3));
    await context.close();
  });

  test('GPU memory is planned before download: over budget is an OutOfMemoryError, a tight budget shortens the context, a refused allocation (load or first forward) keeps the loaded model', T, async () => {
    await server.reset();
    const { page, context } = await openPage(browser, server);
    const out = await run(page, async (api, arg, image, patchedWorker) => {
      const errorOf = (p) => p.then(() => undefined, (e) => ({ name: e.name, message: e.message }));
      const overBudget = await errorOf(api.WebVLM.load(arg.url, { memoryBudget: 100_000 }));
      const requestsAfterRefusal = (await (await fetch('/__test/log')).json()).filter((r) => /weights-\d+\.bin$/.test(r.path)).length;
      // An explicit context: a prompt past it is refused by name.
      const short = await api.WebVLM.load(arg.url, { contextLength: 30 });
      const shortInfo = { context: short.info.contextLength, memory: short.info.memory };
      let overflow;
      try {
        for await (const c of short.generate({ image: image(), prompt: arg.prompt, maxTokens: 2 })) void c;
      } catch (e) {
        overflow = e.name;
      }
      await short.dispose();
      // A budget that holds SmolLM2's weights but not the KV cache of its 8 192 positions, from
      // the numbers a refusal names.
      const named = (await errorOf(api.WebVLM.load(arg.big, { memoryBudget: 1 }))).message;
      const [w, n, kv, s] = /weights ([\d.]+) MiB, KV cache for (\d+) positions ([\d.]+) MiB, activations ([\d.]+) MiB/.exec(named).slice(1).map(Number);
      const tight = await api.WebVLM.load(arg.big, { memoryBudget: (w + s + (kv / n) * 1000) * 2 ** 20 });
      const tightInfo = { context: tight.info.contextLength, memory: tight.info.memory };
      await tight.dispose();
      // A device that refuses buffers of 8 MiB or more (as one out of memory would): SmolLM2's
      // 28 MB embedding cannot be allocated; the tiny model loaded before keeps answering.
      // While a generation whose prompt holds the marker runs, it refuses every tensor buffer of
      // 4 KiB or more: the first forward's activations and KV cache, as a device out of memory
      // would (CubeCL's small per-stream staging and uniform pages are spared: those it never
      // gives back, and a refusal there ends the engine instead — EngineCrashedError).
      const worker = patchedWorker(`
        let starving = false;
        self.addEventListener('message', (e) => {
          if (e.data?.kind === 'generate') starving = JSON.stringify(e.data.messages).includes('STARVE');
        });
        const createBuffer = GPUDevice.prototype.createBuffer;
        const tensor = (usage) => (usage & (GPUBufferUsage.MAP_READ | GPUBufferUsage.UNIFORM)) === 0;
        GPUDevice.prototype.createBuffer = function (desc) {
          const refuse = desc.size >= 8 << 20 || (starving && tensor(desc.usage) && desc.size >= 4096);
          return createBuffer.call(this, refuse ? { ...desc, size: this.limits.maxBufferSize + 4 } : desc);
        };`);
      const vlm = await api.WebVLM.load(arg.url, { worker });
      const refused = await errorOf(vlm.switchModel(arg.big));
      const starved = await errorOf((async () => {
        for await (const c of vlm.generate({ image: image(), prompt: `${arg.prompt} STARVE`, maxTokens: 3 })) void c;
      })());
      const ids = [];
      for await (const c of vlm.generate({ image: image(), prompt: arg.prompt, maxTokens: 3, ignoreEos: true })) if (c.tokenId !== undefined) ids.push(c.tokenId);
      const type = vlm.info.modelType;
      await vlm.dispose();
      return { overBudget, requestsAfterRefusal, shortInfo, overflow, tightInfo, refused, starved, ids, type };
    }, { url: server.modelUrl, big: new URL('/models/smollm2-135m-instruct/', server.url).href, prompt: GOLDENS.prompt });
    const info = JSON.stringify(out);
    assert.equal(out.overBudget?.name, 'OutOfMemoryError', info);
    assert.match(out.overBudget.message, /needs [\d.]+ MiB of GPU memory \(weights [\d.]+ MiB, KV cache for 128 positions [\d.]+ MiB, activations [\d.]+ MiB\), over the budget of 0\.1 MiB \(the memoryBudget option\); nothing was downloaded/, info);
    assert.equal(out.requestsAfterRefusal, 0, 'no weights were requested');
    assert.equal(out.shortInfo.context, 30, info);
    assert.equal(out.overflow, 'ContextOverflowError', info);
    assert.equal(out.tightInfo.context, 768, `a budget for 1 000 positions gives 768: ${info}`);
    assert.ok(out.tightInfo.memory.total <= out.tightInfo.memory.budget, info);
    assert.equal(out.refused?.name, 'OutOfMemoryError', info);
    assert.match(out.refused.message, /GPU refused memory/, info);
    assert.equal(out.starved?.name, 'OutOfMemoryError', info);
    assert.match(out.starved.message, /GPU refused memory for this prompt's activations \(\d+ tokens and its \d+ image tokens\).*the model stays loaded/, info);
    assert.deepEqual(out.ids, GOLDENS.greedy_tokens.slice(0, 3), 'the loaded model still answers, after both refusals');
    assert.equal(out.type, 'idefics3');
    await context.close();
  });

  test('the main thread has no long task over 50 ms while generating', T, async () => {
    const { page, context } = await openPage(browser, server);
    const out = await run(page, async (api, arg, image) => {
      const vlm = await api.WebVLM.load(arg.url);
      const longTasks = [];
      const obs = new PerformanceObserver((list) => longTasks.push(...list.getEntries().map((e) => e.duration)));
      obs.observe({ type: 'longtask' });
      let frames = 0;
      let running = true;
      const tick = () => {
        frames++;
        if (running) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
      const t0 = performance.now();
      let tokens = 0;
      for await (const c of vlm.generate({ image: image(), prompt: arg.prompt, maxTokens: 40, ignoreEos: true })) if (c.tokenId !== undefined) tokens++;
      const ms = performance.now() - t0;
      running = false;
      await new Promise((r) => setTimeout(r, 100));
      obs.disconnect();
      return { longTasks, tokens, ms, frames };
    }, { url: server.modelUrl, prompt: GOLDENS.prompt });
    assert.equal(out.error, undefined, JSON.stringify(out.error));
    assert.equal(out.tokens, 40);
    assert.deepEqual(out.longTasks.filter((d) => d > 50), [], `long tasks: ${out.longTasks}`);
    console.log(`  generation: ${out.tokens} tokens in ${out.ms.toFixed(0)} ms, ${out.frames} animation frames, long tasks ${JSON.stringify(out.longTasks)}`);
    await context.close();
  });

  test('bad input ends in typed errors, and the engine keeps working', T, async () => {
    const { page, context } = await openPage(browser, server);
    const out = await run(page, async (api, arg, image) => {
      const name = async (f) => {
        try {
          await f();
          return 'no error';
        } catch (e) {
          return e.name;
        }
      };
      const drain = async (it) => {
        for await (const _ of it);
      };
      const missing = await name(() => api.WebVLM.load(new URL('/models/no-such-model/', location).href));
      await fetch('/__test/fault', { method: 'POST', body: JSON.stringify({ path: 'smolvlm-tiny/manifest.json', kind: 'corrupt', times: 1 }) });
      const notPacked = await name(() => api.WebVLM.load(arg.url));
      await fetch('/__test/fault', { method: 'POST', body: JSON.stringify({ path: 'smolvlm-tiny/manifest.json', kind: 'status', status: 500, times: -1 }) });
      const serverDown = await name(() => api.WebVLM.load(arg.url, { cache: 'none' }));
      await fetch('/__test/reset', { method: 'POST' });
      const vlm = await api.WebVLM.load(arg.url);
      return {
        missing,
        notPacked,
        serverDown,
        badImage: await name(() => drain(vlm.generate({ image: new Blob([new Uint8Array([1, 2, 3])], { type: 'image/png' }), prompt: 'x' }))),
        emptyImage: await name(() => drain(vlm.generate({ image: new Blob([]), prompt: 'x' }))),
        tooLong: await name(() => drain(vlm.generate({ prompt: 'colour '.repeat(5000) }))),
        badOption: await name(() => drain(vlm.generate({ prompt: 'x', topP: 1.5 }))),
        twoImages: await name(() => drain(vlm.generateChat([{ role: 'user', content: [{ type: 'image', image: image() }, { type: 'image', image: image() }, { type: 'text', text: 'x' }] }]))),
        stillWorks: await name(() => drain(vlm.generate({ image: image(), prompt: arg.prompt, maxTokens: 2 }))),
      };
    }, { url: server.modelUrl, prompt: GOLDENS.prompt });
    assert.deepEqual(out, {
      missing: 'ModelFormatError',
      notPacked: 'ModelFormatError',
      serverDown: 'NetworkError',
      badImage: 'ImageError',
      emptyImage: 'ImageError',
      tooLong: 'ContextOverflowError',
      badOption: 'InvalidRequestError',
      twoImages: 'InvalidRequestError',
      stillWorks: 'no error',
    });
    await context.close();
  });

  // A lost device or a trap (a panic in the wasm module) fails the pending call and every later
  // one with its own error, the worker is ended at once, and a new load in the same page
  // generates the golden tokens again.
  for (const [fault, errorName] of [['device loss', 'DeviceLostError'], ['trap', 'EngineCrashedError']]) {
    test(`after a ${fault} (${errorName}) the worker is ended and loading again works`, T, async () => {
      const { page, context } = await openPage(browser, server);
      const out = await run(page, async (api, arg, image) => {
        const vlm = await api.WebVLM.load(arg.url);
        const failure = async (f) => {
          try {
            await f();
            return 'no error';
          } catch (e) {
            return { name: e.name, message: e.message };
          }
        };
        let during;
        if (arg.fault === 'trap') {
          during = await failure(() => vlm._crashForTesting());
        } else {
          await vlm._loseDeviceForTesting();
          await new Promise((r) => setTimeout(r, 200));
          during = await failure(async () => { for await (const _ of vlm.generate({ prompt: 'hello', maxTokens: 3 })); });
        }
        const later = await failure(async () => { for await (const _ of vlm.generate({ prompt: 'hello', maxTokens: 3 })); });
        const stopped = vlm._workerStopped;
        await vlm.dispose();
        const again = await api.WebVLM.load(arg.url);
        const ids = [];
        for await (const c of again.generate({ image: image(), prompt: arg.prompt, maxTokens: 3, ignoreEos: true })) {
          if (c.tokenId !== undefined) ids.push(c.tokenId);
        }
        await again.dispose();
        return { during, later, stopped, ids };
      }, { url: server.modelUrl, fault, prompt: GOLDENS.prompt });
      assert.equal(out.during.name, errorName, JSON.stringify(out));
      assert.equal(out.later.name, errorName, JSON.stringify(out));
      assert.ok(out.stopped, 'the worker was ended');
      assert.deepEqual(out.ids, GOLDENS.greedy_tokens.slice(0, 3), 'a new load generates the golden tokens');
      await context.close();
    });
  }

  test('the demo page answers a question about a photo (screenshot saved)', T, async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
    const page = await context.newPage();
    await page.goto(new URL('/?model=/models/smolvlm-tiny/&autoload=1', server.url).href);
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, { timeout: 300_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready', await page.textContent('#error'));
    await page.setInputFiles('#photo-pick', path.join(REPO, 'tests/fixtures', FIXTURE, 'image.png'));
    await page.fill('#prompt', GOLDENS.prompt);
    await page.evaluate(() => { document.getElementById('max-tokens').value = '12'; });
    await page.click('#ask');
    await page.waitForFunction(() => ['answered', 'error'].includes(document.body.dataset.state), null, { timeout: 300_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'answered', await page.textContent('#error'));
    assert.ok((await page.textContent('#answer')).length > 0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-answer.png'), fullPage: true });
    await context.close();
  });
});

describe('the default model', () => {
  test('SmolLM2-135M-Instruct answers in the demo page out of the box (screenshot saved)', T, async () => {
    const manifest = path.join(REPO, 'www/models/smollm2-135m-instruct/manifest.json');
    assert.ok(fs.existsSync(manifest), 'scripts/pack-smollm2.sh makes the default model (the test command runs it)');
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
    const page = await context.newPage();
    await page.goto(new URL('/?autoload=1', server.url).href);
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, { timeout: 300_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready', await page.textContent('#error'));
    assert.ok(await page.isDisabled('#photo-pick') || await page.isHidden('#photo-pick'), 'a text model takes no photo');
    await page.fill('#prompt', 'What is the capital of France?');
    await page.evaluate(() => { document.getElementById('max-tokens').value = '12'; });
    await page.click('#ask');
    await page.waitForFunction(() => ['answered', 'error'].includes(document.body.dataset.state), null, { timeout: 400_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'answered', await page.textContent('#error'));
    const answer = await page.textContent('#answer');
    assert.match(answer, /Paris/, `a real answer: ${answer}`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-smollm2.png'), fullPage: true });
    await context.close();
  });
});

describe('without WebGPU', () => {
  test('load fails with WebGPUUnavailableError', T, async () => {
    const plain = await launch({ webgpu: false });
    try {
      const { page } = await openPage(plain, server);
      const out = await run(page, async (api, arg) => {
        try {
          await api.WebVLM.load(arg.url);
          return 'loaded';
        } catch (e) {
          return e.name;
        }
      }, { url: server.modelUrl });
      assert.equal(out, 'WebGPUUnavailableError');
    } finally {
      await plain.close();
    }
  });
});
