/** The real engine: the wasm `Session` fed from the model store. */
import init, { type Loading, Session, debugTrap, planMemory } from '../wasm/webvlm_wasm.js';
import type { FileEntry, Reader } from '../cache/store.js';
import { AbortError, DeviceLostError, IntegrityError, ModelFormatError, OutOfMemoryError, StorageError, WebGPUUnavailableError } from '../errors.js';
import { resolveSource } from '../source.js';
import type { GenerateChunk, GpuCost, GpuMemory, LoadProgress, MemoryPlan, ModelInfo, Usage } from '../types.js';
import type { KernelBenchRow } from '../bench.js';
import type { Engine, GenerateCall, LoadRequest } from './engine.js';
import { adapterInfo, gpu, installGpuHooks, type GpuDeviceLike } from './gpu.js';
import { costSince, gpuCounts, installGpuCounters, medianCost } from './gpu-counters.js';
import { decodeImage } from './image.js';
import { type FetchedModel, fetchModel } from './loader.js';
import { withModelLock } from '../cache/lock.js';

interface Started {
  promptTokens: number;
  reusedTokens: number;
  imageTokens: number;
}
interface StepOut {
  tokenId: number | null;
  text: string;
  done: boolean;
  finishReason: 'stop' | 'length' | 'context' | null;
}
interface WasmInfo {
  modelType: string;
  family: 'vlm' | 'text';
  familyName: string;
  architecture: string;
  contextLength: number;
  imageSeqLen: number;
  vocabSize: number;
  decodeWeightBytes: number;
  imageSplitting: boolean;
}

/** The shortest context worth shortening to. */
const MIN_CONTEXT = 512;
const MiB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** The budget a load is planned against: the caller's, else half the device's RAM where known. */
function memoryBudget(req: LoadRequest): { bytes?: number; source: string } {
  if (req.memoryBudget !== undefined) return { bytes: req.memoryBudget, source: 'the memoryBudget option' };
  const gb = (navigator as Navigator & { deviceMemory?: number }).deviceMemory;
  if (typeof gb === 'number' && gb > 0) return { bytes: (gb * 2 ** 30) / 2, source: `half of navigator.deviceMemory (${gb} GB)` };
  return { source: 'no limit known' };
}

/**
 * Plan the model's GPU memory from its manifest, before any download: the context to hold
 * (the caller's, else the model's, shortened to fit the budget), or an OutOfMemoryError that
 * says what is needed and what there is.
 */
function planLoad(manifest: string, req: LoadRequest): { context: number; memory: MemoryPlan } {
  const budget = memoryBudget(req);
  const p = planMemory(manifest, budget.bytes, MIN_CONTEXT) as { weights: number; kvPerPosition: number; scratch: number; context: number; fits: number | null };
  const total = (context: number) => p.weights + p.kvPerPosition * context + p.scratch;
  const explain = (context: number) =>
    `${MiB(total(context))} of GPU memory (weights ${MiB(p.weights)}, KV cache for ${context} positions ${MiB(p.kvPerPosition * context)}, activations ${MiB(p.scratch)})`;
  let context = req.contextLength !== undefined ? Math.min(Math.max(1, Math.floor(req.contextLength)), p.context) : p.fits ?? Math.min(MIN_CONTEXT, p.context);
  if (budget.bytes !== undefined && total(context) > budget.bytes) {
    throw new OutOfMemoryError(`the model needs ${explain(context)}, over the budget of ${MiB(budget.bytes)} (${budget.source}); nothing was downloaded`);
  }
  return { context, memory: { weights: p.weights, kvPerPosition: p.kvPerPosition, scratch: p.scratch, total: total(context), ...(budget.bytes !== undefined ? { budget: budget.bytes } : {}) } };
}

/** Back to the event loop (so an abort message can land) without setTimeout's clamping. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => resolve();
    ch.port2.postMessage(null);
  });
}

/**
 * Run `body` with the device's out-of-memory and validation errors captured. What the device
 * refused comes back as `{ refused }` (its message), and `body`'s own failure is then dropped:
 * a refused buffer is the cause of whatever failed after it. Without scopes (no device yet)
 * `body` just runs.
 */
async function captureGpuErrors<T>(body: () => Promise<T>): Promise<{ value: T; refused?: undefined } | { refused: string }> {
  const device = gpu.device;
  const scoped = !!device?.pushErrorScope && !!device.popErrorScope;
  if (scoped) {
    device.pushErrorScope!('out-of-memory');
    device.pushErrorScope!('validation');
  }
  let result: { value: T } | { failure: unknown };
  try {
    result = { value: await body() };
  } catch (e) {
    result = { failure: e };
  }
  if (scoped) {
    const validation = await device.popErrorScope!();
    const oom = await device.popErrorScope!();
    const refused = oom ?? validation;
    if (refused) return { refused: refused.message.replace(/\s+/g, ' ').trim() };
  }
  if ('failure' in result) throw result.failure;
  return result;
}

export class WasmEngine implements Engine {
  private session?: Session;
  private lostCallbacks: Array<(m: string) => void> = [];
  private modelUrl = '';
  private lost?: { device: GpuDeviceLike; rejection: Promise<never> };

  onDeviceLost(cb: (message: string) => void): void {
    this.lostCallbacks.push(cb);
  }

  private async ensureSession(): Promise<Session> {
    this.throwIfLost();
    if (this.session) return this.session;
    installGpuHooks();
    installGpuCounters();
    gpu.onLost = (info) => {
      const message = `the GPU device was lost (${info.reason}${info.message ? `: ${info.message}` : ''}); load the model again`;
      for (const cb of this.lostCallbacks) cb(message);
    };
    await init();
    try {
      this.session = await Session.create();
    } catch (e) {
      const msg = (e as Error)?.message ?? String(e);
      throw new WebGPUUnavailableError(msg);
    }
    return this.session;
  }

  private throwIfLost(): void {
    if (gpu.lost) throw new DeviceLostError(`the GPU device was lost (${gpu.lost.reason}); load the model again in a new WebVLM`);
  }

  /** Settle with `p`, unless the device is lost first (its readbacks would never resolve). */
  private guard<T>(p: Promise<T>): Promise<T> {
    const device = gpu.device;
    if (!device) return p;
    // One rejection per device, shared by every step (a new `then` per token would pile up
    // handlers on `device.lost` for the whole session).
    if (this.lost?.device !== device) {
      const rejection = device.lost.then((info) => {
        throw new DeviceLostError(`the GPU device was lost (${info.reason}); load the model again`);
      });
      rejection.catch(() => undefined);
      this.lost = { device, rejection };
    }
    return Promise.race([p, this.lost.rejection]);
  }

  async load(req: LoadRequest, progress: (p: LoadProgress) => void, signal: AbortSignal): Promise<ModelInfo> {
    const session = await this.ensureSession();
    const loc = resolveSource(req.url, req.revision);
    const t0 = performance.now();
    let planned: { context: number; memory: MemoryPlan } | undefined;
    const fetched = await fetchModel(loc, req.cache, progress, signal, (manifest) => {
      planned = planLoad(manifest, req);
    }, req.stallTimeout);
    if (signal.aborted) throw new AbortError('load aborted');
    const t1 = performance.now();
    const fromCache = fetched.downloaded === 0;
    const storage = fetched.storage;
    // Read under the model's shared lock: the files cannot be deleted (WebVLM.cache.delete, a
    // newer version's load in another tab) while the engine reads them.
    const info = await withModelLock(fetched.key, 'shared', () => this.upload(session, fetched, progress, signal, planned?.context));
    progress({ phase: 'ready', loaded: fetched.bytes, total: fetched.bytes, fromCache, storage });
    this.modelUrl = loc.url;
    const t2 = performance.now();
    return {
      url: this.modelUrl,
      modelType: info.modelType,
      quant: fetched.manifest.quant,
      family: info.family,
      familyName: info.familyName,
      architecture: info.architecture,
      contextLength: info.contextLength,
      imageSeqLen: info.imageSeqLen,
      vocabSize: info.vocabSize,
      decodeWeightBytes: info.decodeWeightBytes,
      imageSplitting: info.imageSplitting,
      bytes: fetched.bytes,
      adapter: adapterInfo(),
      storage,
      memory: planned?.memory ?? { weights: 0, kvPerPosition: 0, scratch: 0, total: 0 },
      timings: { fetchMs: t1 - t0, uploadMs: t2 - t1 },
    };
  }

  /** The model's files from the store to the GPU, shard by shard. */
  private async upload(session: Session, fetched: FetchedModel, progress: (p: LoadProgress) => void, signal: AbortSignal, context?: number): Promise<WasmInfo> {
    // An allocation the device refuses (out of memory, or past a limit) is an error of this
    // load — OutOfMemoryError, the model loaded before staying in use — not an uncaptured GPU
    // error that would end the engine.
    let loading: Loading | undefined;
    try {
      const { refused } = await captureGpuErrors(async () => {
        loading = await this.uploadShards(session, fetched, progress, signal);
        loading.build(context);
      });
      if (refused !== undefined) throw new OutOfMemoryError(`the GPU refused memory for the model's weights (${refused}); try a smaller model or quantisation`);
      // Only now, with every buffer allocated, does the new model replace the loaded one.
      return session.finishLoad(loading!) as WasmInfo;
    } finally {
      loading?.free();
    }
  }

  /** Feed every shard to a new load; the caller builds and installs it. */
  private async uploadShards(session: Session, fetched: FetchedModel, progress: (p: LoadProgress) => void, signal: AbortSignal): Promise<Loading> {
    const fromCache = fetched.downloaded === 0;
    const storage = fetched.storage;
    const storageError = (what: string, e: unknown) =>
      new StorageError(`${what} in the ${storage.mode} model cache failed (${e instanceof Error ? `${e.name}: ${e.message}` : String(e)})`);
    let reader: Reader;
    try {
      reader = await fetched.store.openReader(fetched.files.map((f) => f.file));
    } catch (e) {
      throw storageError('opening the files', e);
    }
    const entries = new Map(fetched.files.map((f) => [f.file, f]));
    const small = new Set(fetched.manifest.assets.map((f) => f.file));
    let uploaded = 0;
    let loading: Loading | undefined;
    let changed: FileEntry | undefined;
    let ok = false;
    try {
      for (const asset of small) await reader.prepare(asset);
      const manifestBytes = new TextEncoder().encode(fetched.manifestText);
      loading = session.beginLoad(
        (name: string) => (name === 'manifest.json' ? manifestBytes : small.has(name) ? reader.read(name) : undefined),
        ['manifest.json', ...fetched.files.map((f) => f.file)],
      );
      for (let name = loading.nextShard(); name !== undefined; name = loading.nextShard()) {
        const entry = entries.get(name);
        if (!entry) throw new ModelFormatError(`the engine asked for ${name}, which manifest.json does not list`);
        try {
          await reader.prepare(name);
        } catch (e) {
          throw storageError(`reading ${name}`, e);
        }
        const size = reader.size(name);
        if (size !== entry.bytes) {
          changed = entry;
          throw new IntegrityError(`${name} changed in storage since it was verified (${size} bytes, the manifest says ${entry.bytes}); it is downloaded again on the next load`);
        }
        // The store verified these bytes against the manifest's sha256 when they were
        // downloaded (recorded in its marker): the engine checks sizes, not hashes, on every load.
        const target = loading.shardBuffer(entry.bytes);
        try {
          reader.readInto(name, target);
        } catch (e) {
          throw storageError(`reading ${name}`, e);
        } finally {
          reader.release(name);
        }
        loading.feed(true);
        uploaded += entry.bytes;
        progress({ phase: 'upload', file: name, fileLoaded: entry.bytes, fileTotal: entry.bytes, loaded: uploaded, total: fetched.bytes, fromCache, storage });
        // Back to the event loop after every shard (the last included): an abort lands within
        // one shard, and the model loaded before stays in use (the new one replaces it only
        // when complete). An abort before the first shard was checked after the fetch.
        await yieldToEventLoop();
        if (signal.aborted) throw new AbortError('load aborted; the model loaded before stays in use');
      }
      ok = true;
      return loading;
    } finally {
      if (!ok) loading?.free();
      await reader.close();
      if (changed) await fetched.store.remove(changed.file);
    }
  }

  async generate(req: GenerateCall, emit: (c: GenerateChunk) => void, aborted: () => boolean): Promise<void> {
    const session = await this.ensureSession();
    let peakGpuBytes = 0;
    const sample = () => {
      peakGpuBytes = Math.max(peakGpuBytes, (session.gpuMemory() as GpuMemory).reserved);
    };
    sample();
    const t0 = performance.now();
    const pixels = req.image ? await decodeImage(req.image) : undefined;
    const tImage = performance.now();
    const request = { messages: req.messages, options: req.options, image_splitting: req.imageSplitting };
    let started: Started = { promptTokens: 0, reusedTokens: 0, imageTokens: 0 };
    let [tPrepared, tEncoded, tPrefilled] = [0, 0, 0];
    let encodeCost = costSince(gpuCounts(), gpuCounts());
    let prefillCost = encodeCost;
    // The first forward allocates the activations (and the KV cache) this prompt needs: a
    // refusal there is this generation's OutOfMemoryError — the conversation is dropped, the
    // model stays loaded — not an uncaptured GPU error that would end the engine.
    const first = await captureGpuErrors(async () => {
      started = session.start(request, pixels?.data, pixels?.width ?? 0, pixels?.height ?? 0) as Started;
      tPrepared = performance.now();
      // The vision tower on its own, waited for on the GPU, so its time is not the prefill's.
      const beforeEncode = gpuCounts();
      if (pixels) {
        await this.guard(session.encode());
        sample();
      }
      encodeCost = costSince(gpuCounts(), beforeEncode);
      tEncoded = performance.now();
      const beforePrefill = gpuCounts();
      await this.guard(session.prefill());
      prefillCost = costSince(gpuCounts(), beforePrefill);
      sample();
      tPrefilled = performance.now();
    });
    const starved = (refused: string) => {
      session.reset();
      const image = pixels ? ` and its ${started.imageTokens} image tokens` : '';
      return new OutOfMemoryError(
        `the GPU refused memory for this prompt's activations (${started.promptTokens} tokens${image}): ${refused}; the conversation was reset and the model stays loaded — try a shorter prompt, a smaller image or a shorter contextLength`,
      );
    };
    if (first.refused !== undefined) throw starved(first.refused);
    // Per step; the last step only hands out the token the one before chose (no decoder run).
    const stepCosts: GpuCost[] = [];
    let tokens = 0;
    let firstTokenAt = 0;
    const usage = (): Usage => {
      const now = performance.now();
      const decodeMs = tokens > 0 ? now - firstTokenAt : 0;
      return {
        promptTokens: started.promptTokens,
        completionTokens: tokens,
        reusedTokens: started.reusedTokens,
        imageTokens: started.imageTokens,
        peakGpuBytes,
        gpuCounts: { encode: encodeCost, prefill: prefillCost, perToken: medianCost(stepCosts) },
        timings: {
          imageMs: tImage - t0,
          prepareMs: tPrepared - tImage,
          encodeMs: tEncoded - tPrepared,
          prefillMs: tPrefilled - tEncoded,
          firstTokenMs: tokens > 0 ? firstTokenAt - t0 : 0,
          decodeMs,
          decodeTokensPerSecond: tokens > 1 && decodeMs > 0 ? ((tokens - 1) * 1000) / decodeMs : 0,
        },
      };
    };
    for (;;) {
      if (aborted()) {
        emit({ text: '', done: true, finishReason: 'abort', usage: usage() });
        return;
      }
      const beforeStep = gpuCounts();
      const step = () => this.guard(session.step()) as Promise<StepOut>;
      let out: StepOut;
      if (tokens === 0) {
        // The first decode step allocates the one-token activations; later steps reuse them.
        const scoped = await captureGpuErrors(step);
        if (scoped.refused !== undefined) throw starved(scoped.refused);
        out = scoped.value;
      } else {
        out = await step();
      }
      if (!out.done) stepCosts.push(costSince(gpuCounts(), beforeStep));
      if (out.done) sample();
      if (out.tokenId !== null) {
        tokens++;
        if (tokens === 1) firstTokenAt = performance.now();
      }
      const chunk: GenerateChunk = { text: out.text, done: out.done };
      if (out.tokenId !== null) chunk.tokenId = out.tokenId;
      if (out.done) {
        chunk.finishReason = out.finishReason ?? 'stop';
        chunk.usage = usage();
      }
      emit(chunk);
      if (out.done) return;
      await yieldToEventLoop();
    }
  }

  async benchKernels(repeats: number): Promise<KernelBenchRow[]> {
    const session = await this.ensureSession();
    return (await this.guard(session.benchKernels(repeats))) as KernelBenchRow[];
  }

  reset(): void {
    this.session?.reset();
  }

  unload(): void {
    this.session?.unload();
  }

  memory(): GpuMemory {
    return this.session ? (this.session.gpuMemory() as GpuMemory) : { inUse: 0, reserved: 0 };
  }

  loseDevice(): void {
    gpu.device?.destroy();
  }

  trap(): void {
    debugTrap();
  }
}
