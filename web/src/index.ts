/**
 * webvlm: vision-language models in the browser on WebGPU.
 *
 * ```js
 * import { WebVLM } from 'webvlm';
 * const vlm = await WebVLM.load('https://example.com/models/smolvlm-256m-q4/');
 * for await (const chunk of vlm.generate({ image: file, prompt: 'What is in this photo?' })) out.textContent += chunk.text;
 * ```
 *
 * The engine (Rust → wasm, burn + wgpu) runs in a dedicated Web Worker this package creates;
 * weights stream shard by shard into OPFS and from there to GPU buffers.
 */
import * as cache from './cache/index.js';
import { WorkerClient } from './client.js';
import { AbortError, ImageError, InvalidRequestError } from './errors.js';
import type { WireImage, WireMessage, WireOptions } from './protocol.js';
import { createCompletions, type Completions } from './chat.js';
import type { ChatMessage, GenerateChunk, GenerateRequest, GpuMemory, ImageInput, LoadOptions, ModelInfo, SamplingOptions } from './types.js';
import type { KernelBenchRow } from './bench.js';

/** The package version (also in benchmark reports). */
export const VERSION = '0.1.0';

export * from './errors.js';
export * from './bench.js';
export type * from './types.js';
export type { CachedModel, CacheUsage } from './cache/index.js';
export type { ChatCompletionChunk, ChatCompletion, ChatCompletionRequest } from './chat.js';
export { resolveSource } from './source.js';

function wireOptions(o: SamplingOptions): WireOptions {
  const w: WireOptions = {};
  if (o.maxTokens !== undefined) w.max_new_tokens = o.maxTokens;
  if (o.temperature !== undefined) w.temperature = o.temperature;
  if (o.topK !== undefined) w.top_k = o.topK;
  if (o.topP !== undefined) w.top_p = o.topP;
  if (o.repetitionPenalty !== undefined) w.repetition_penalty = o.repetitionPenalty;
  if (o.seed !== undefined) w.seed = o.seed;
  if (o.ignoreEos !== undefined) w.ignore_eos = o.ignoreEos;
  return w;
}

/** Send a load to the worker behind `client`, with progress and abort. */
async function loadInto(client: WorkerClient, source: string | URL, options: LoadOptions): Promise<ModelInfo> {
  // Ask the browser not to evict the cache under storage pressure (a no-op where refused).
  if (options.signal?.aborted) throw new AbortError('load aborted before it started');
  const stall = options.stallTimeout;
  if (stall !== undefined && !(Number.isFinite(stall) && stall > 0)) {
    throw new InvalidRequestError(`stallTimeout must be a positive number of milliseconds, not ${String(stall)}`);
  }
  void navigator.storage?.persist?.().catch(() => false);
  const { id, done } = client.send(
    {
      kind: 'load',
      url: new URL(String(source), location.href).href,
      cache: options.cache ?? cache.defaultMode(),
      revision: options.revision ?? 'main',
      contextLength: options.contextLength,
      memoryBudget: options.memoryBudget,
      stallTimeout: options.stallTimeout,
    },
    { onProgress: options.onProgress },
  );
  const onAbort = () => client.abort(id);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return (await done) as ModelInfo;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** Turn what the caller has into something the worker can receive (decoding stays there). */
async function toWireImage(image: ImageInput): Promise<{ image: WireImage; transfer: Transferable[] }> {
  if (typeof image === 'string' || image instanceof URL) {
    return { image: { url: new URL(String(image), location.href).href }, transfer: [] };
  }
  if (image instanceof Blob || (typeof ImageData !== 'undefined' && image instanceof ImageData)) return { image, transfer: [] };
  if (typeof ImageBitmap !== 'undefined' && image instanceof ImageBitmap) return { image, transfer: [] };
  if (typeof HTMLImageElement !== 'undefined' && image instanceof HTMLImageElement) {
    if (!image.complete || image.naturalWidth === 0) throw new ImageError('the <img> has not loaded (or failed to load)');
  }
  try {
    // <img>, <canvas>, OffscreenCanvas: a bitmap copy, transferred to the worker.
    const bitmap = await createImageBitmap(image as ImageBitmapSource);
    return { image: bitmap, transfer: [bitmap] };
  } catch (e) {
    throw new ImageError(`cannot read the image: ${(e as Error).message}`);
  }
}

export class WebVLM {
  /** The OpenAI-style interface: `vlm.chat.completions.create({ messages, stream: true })`. */
  readonly chat: { completions: Completions };

  /** Cached models: `list()`, `delete(urlOrKey)`, `usage()`. */
  static readonly cache = { list: cache.list, delete: cache.remove, usage: cache.usage };

  private constructor(
    private client: WorkerClient,
    private loaded: ModelInfo,
  ) {
    this.chat = { completions: createCompletions(this) };
  }

  /** What was loaded, on which adapter. */
  get info(): ModelInfo {
    return this.loaded;
  }

  /**
   * Load a packed model (made by `webvlm convert`) from a base URL, a Hugging Face–style
   * resolve URL, or `hf:org/name`. Files are cached in OPFS and verified against the
   * manifest's sha256; a later load reads them from the cache without network requests.
   */
  static async load(source: string | URL, options: LoadOptions = {}): Promise<WebVLM> {
    const worker = options.worker ?? new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'webvlm' });
    const client = new WorkerClient(worker);
    try {
      return new WebVLM(client, await loadInto(client, source, options));
    } catch (e) {
      client.terminate();
      throw e;
    }
  }

  /**
   * Load another model in place of this one, in the same worker. The current model keeps
   * answering until the new one is complete, then its GPU memory is freed; if the load fails or
   * is aborted (`options.signal`), the current model stays loaded and `info` unchanged.
   */
  async switchModel(source: string | URL, options: Omit<LoadOptions, 'worker'> = {}): Promise<ModelInfo> {
    this.loaded = await loadInto(this.client, source, options);
    return this.loaded;
  }

  /** GPU memory of the engine's allocator (bytes of live buffers, and what it holds). */
  async gpuMemory(): Promise<GpuMemory> {
    return (await this.client.send({ kind: 'memory' }).done) as GpuMemory;
  }

  /** One question (about an image, optionally), answered as a stream of text chunks. */
  generate(request: GenerateRequest): AsyncIterable<GenerateChunk> {
    const content: WireMessage['content'] = [];
    if (request.image !== undefined) content.push({ type: 'image' });
    content.push({ type: 'text', text: request.prompt });
    return this.run([{ role: 'user', content }], request.image, request);
  }

  /** A whole conversation; earlier turns' KV cache is reused where the prompt is unchanged. */
  generateChat(messages: ChatMessage[], options: SamplingOptions = {}): AsyncIterable<GenerateChunk> {
    const wire: WireMessage[] = [];
    let image: ImageInput | undefined;
    for (const m of messages) {
      const parts = typeof m.content === 'string' ? [{ type: 'text' as const, text: m.content }] : m.content;
      const content: WireMessage['content'] = [];
      for (const p of parts) {
        if (p.type === 'text') {
          content.push({ type: 'text', text: p.text });
          continue;
        }
        const src = p.type === 'image' ? p.image : typeof p.image_url === 'string' ? p.image_url : p.image_url?.url;
        if (src === undefined) throw new InvalidRequestError('an image part has no image');
        if (image !== undefined) throw new InvalidRequestError('one image per conversation is supported for now');
        image = src;
        content.push({ type: 'image' });
      }
      wire.push({ role: m.role, content });
    }
    return this.run(wire, image, options);
  }

  private async *run(messages: WireMessage[], image: ImageInput | undefined, options: SamplingOptions): AsyncGenerator<GenerateChunk> {
    const wired = image !== undefined ? await toWireImage(image) : undefined;
    const req = { kind: 'generate' as const, messages, image: wired?.image, options: wireOptions(options), imageSplitting: options.imageSplitting };
    yield* this.client.stream(req, options.signal, wired?.transfer);
  }

  /**
   * The q4 matvec micro-benchmark: SmolVLM-256M's decode shapes against a plain copy kernel
   * on this device, in the same run (medians of `repeats` samples). Rows use the benchmark
   * report's schema (`BenchReport.kernels`).
   */
  async benchKernels(options: { repeats?: number } = {}): Promise<KernelBenchRow[]> {
    return (await this.client.send({ kind: 'bench.kernels', repeats: options.repeats ?? 5 }).done) as KernelBenchRow[];
  }

  /** Forget the conversation's KV cache. */
  async reset(): Promise<void> {
    await this.client.send({ kind: 'reset' }).done;
  }

  /** Free GPU memory and stop the worker. */
  async dispose(): Promise<void> {
    try {
      await this.client.send({ kind: 'unload' }).done;
    } catch {
      // A lost device or a dead worker has nothing left to free.
    }
    this.client.terminate();
  }

  /** Test hook: destroy the GPU device as a driver reset would. */
  async _loseDeviceForTesting(): Promise<void> {
    await this.client.send({ kind: 'debug.loseDevice' }).done;
  }

  /** Test hook: trap the engine's wasm module as a panic would. */
  async _crashForTesting(): Promise<void> {
    await this.client.send({ kind: 'debug.trap' }).done;
  }

  /** Whether this instance's worker has ended (disposed, device lost or engine crashed). */
  get _workerStopped(): boolean {
    return this.client.stopped;
  }
}
