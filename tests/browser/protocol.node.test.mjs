// The worker protocol without a browser: the package's WorkerClient (main thread side) talks
// to its dispatcher (worker side) through an in-process fake worker, with a fake engine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WorkerClient } from '../../web/dist/client.js';
import { createDispatcher } from '../../web/dist/worker/dispatch.js';
import * as errors from '../../web/dist/errors.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

class FakeEngine {
  calls = [];
  lost = [];
  async load(req, progress) {
    this.calls.push(['load', req.url]);
    if (req.url.includes('bad')) throw new errors.ModelFormatError('no manifest.json');
    progress({ phase: 'download', loaded: 1, total: 2, fromCache: false });
    progress({ phase: 'ready', loaded: 2, total: 2, fromCache: false });
    return { url: req.url, modelType: 'fake' };
  }
  async benchKernels(repeats) {
    this.calls.push(['benchKernels', repeats]);
    return [{ name: 'q4 gate/up', scheme: 'q4', m: 1, n: 8, k: 32, kernel: 'k', us_per_call: 1, gbps: 2, copy_gbps: 4, ratio: 0.5 }];
  }
  async generate(req, emit, aborted) {
    this.calls.push(['generate', req.options.max_new_tokens, req.imageSplitting]);
    if (req.messages[0].content[0].text === 'explode') throw Object.assign(new Error('bad pixels'), { errorName: 'ImageError' });
    const n = req.options.max_new_tokens;
    for (let i = 0; i < n; i++) {
      await tick();
      if (aborted()) {
        this.calls.push(['aborted', i]);
        emit({ text: '', done: true, finishReason: 'abort' });
        return;
      }
      emit({ text: `t${i} `, tokenId: i, done: i === n - 1, finishReason: i === n - 1 ? 'length' : undefined });
    }
  }
  reset() { this.calls.push(['reset']); }
  unload() { this.calls.push(['unload']); }
  memory() { return { inUse: 7, reserved: 9 }; }
  loseDevice() { for (const cb of this.lost) cb('the GPU device was lost (destroyed)'); }
  onDeviceLost(cb) { this.lost.push(cb); }
}

function pair() {
  const engine = new FakeEngine();
  const worker = { onmessage: null, onerror: null, terminated: false, terminate() { this.terminated = true; }, postMessage(msg) { setTimeout(() => dispatch(structuredClone(msg))); } };
  const dispatch = createDispatcher(engine, (ev) => setTimeout(() => worker.onmessage?.({ data: structuredClone(ev) })));
  return { engine, client: new WorkerClient(worker), worker };
}

const gen = (n, text = 'hi') => ({ kind: 'generate', messages: [{ role: 'user', content: [{ type: 'text', text }] }], options: { max_new_tokens: n } });

test('load reports progress in order and resolves with the info', async () => {
  const { client } = pair();
  const seen = [];
  const info = await client.send({ kind: 'load', url: 'u', cache: 'none', revision: 'main' }, { onProgress: (p) => seen.push(p.phase) }).done;
  assert.deepEqual(seen, ['download', 'ready']);
  assert.equal(info.modelType, 'fake');
});

test('errors are rebuilt as the package error classes', async () => {
  const { client } = pair();
  await assert.rejects(client.send({ kind: 'load', url: 'bad', cache: 'none', revision: 'main' }).done, (e) => e instanceof errors.ModelFormatError && e.name === 'ModelFormatError');
  await assert.rejects(async () => { for await (const _ of client.stream(gen(3, 'explode'))); }, (e) => e instanceof errors.ImageError && /bad pixels/.test(e.message));
});

test('a stream yields every chunk with deltas and ends on done', async () => {
  const { client } = pair();
  const chunks = [];
  for await (const c of client.stream(gen(4))) chunks.push(c);
  assert.deepEqual(chunks.map((c) => c.tokenId), [0, 1, 2, 3]);
  assert.equal(chunks.map((c) => c.text).join(''), 't0 t1 t2 t3 ');
  assert.equal(chunks.at(-1).finishReason, 'length');
});

test('aborting a signal stops the engine and throws AbortError; the next request runs', async () => {
  const { client, engine } = pair();
  const ctl = new AbortController();
  let n = 0;
  await assert.rejects(async () => {
    for await (const _ of client.stream(gen(1000), ctl.signal)) if (++n === 2) ctl.abort();
  }, (e) => e instanceof errors.AbortError);
  assert.ok(engine.calls.some((c) => c[0] === 'aborted' && c[1] < 10), JSON.stringify(engine.calls));
  const after = [];
  for await (const c of client.stream(gen(2))) after.push(c.tokenId);
  assert.deepEqual(after, [0, 1]);
});

test('leaving a loop early aborts the request in the worker', async () => {
  const { client, engine } = pair();
  for await (const _ of client.stream(gen(1000))) break;
  assert.ok(engine.calls.some((c) => c[0] === 'aborted'), JSON.stringify(engine.calls));
});

test('requests run one at a time in order', async () => {
  const { client, engine } = pair();
  const a = (async () => { for await (const _ of client.stream(gen(3))); })();
  const r = client.send({ kind: 'reset' }).done;
  await Promise.all([a, r]);
  assert.deepEqual(engine.calls.map((c) => c[0]), ['generate', 'reset']);
});

test('a lost device fails what is pending and every later call with DeviceLostError', async () => {
  const { client, engine } = pair();
  const pending = (async () => { for await (const _ of client.stream(gen(1000))); })();
  await tick();
  engine.loseDevice();
  await assert.rejects(pending, (e) => e instanceof errors.DeviceLostError);
  await assert.rejects(client.send({ kind: 'reset' }).done, (e) => e instanceof errors.DeviceLostError);
});

test('the kernel bench request resolves with the engine rows; generate carries imageSplitting', async () => {
  const { client, engine } = pair();
  const rows = await client.send({ kind: 'bench.kernels', repeats: 3 }).done;
  assert.equal(rows.length, 1);
  assert.equal(rows[0].ratio, 0.5);
  for await (const _ of client.stream({ ...gen(1), imageSplitting: false }));
  assert.deepEqual(engine.calls, [['benchKernels', 3], ['generate', 1, false]]);
});

test('a lost device also ends the worker at once', async () => {
  const { client, engine, worker } = pair();
  await client.send({ kind: 'reset' }).done;
  engine.loseDevice();
  await tick(); await tick();
  assert.ok(worker.terminated && client.stopped, 'worker ended');
});

test('a trap fails the call, every later call with EngineCrashedError, and ends the worker', async () => {
  const { client, engine, worker } = pair();
  engine.trap = () => { throw new WebAssembly.RuntimeError('unreachable'); };
  const pending = client.send({ kind: 'debug.trap' }).done;
  const queued = client.send({ kind: 'reset' }).done;
  await assert.rejects(pending, (e) => e instanceof errors.EngineCrashedError && /unreachable/.test(e.message));
  await assert.rejects(queued, (e) => e instanceof errors.EngineCrashedError);
  await assert.rejects(client.send({ kind: 'reset' }).done, (e) => e instanceof errors.EngineCrashedError);
  assert.ok(worker.terminated && client.crashed, 'worker ended');
  assert.deepEqual(engine.calls, [], 'nothing ran after the trap');
});

test('an error escaping the worker is a crash too', async () => {
  const { client, worker } = pair();
  worker.onerror({ message: 'Uncaught RuntimeError: unreachable', preventDefault() {} });
  await assert.rejects(client.send({ kind: 'reset' }).done, (e) => e instanceof errors.EngineCrashedError);
  assert.ok(worker.terminated);
});

test('engine errors keep their class across the worker: numerical faults, storage, a model in use; memory answers', async () => {
  const { client } = pair();
  assert.deepEqual(await client.send({ kind: 'memory' }).done, { inUse: 7, reserved: 9 });
  for (const [name, cls] of [['NumericalError', errors.NumericalError], ['StorageError', errors.StorageError], ['ModelInUseError', errors.ModelInUseError]]) {
    const e = errors.fromWire(errors.toWire(Object.assign(new Error('m'), { errorName: name })));
    assert.ok(e instanceof cls && e.name === name, name);
  }
  assert.ok(errors.fromWire({ name: 'ModelInUseError', message: 'x' }) instanceof errors.StorageError, 'in use is a storage error');
});
