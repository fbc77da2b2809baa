/** The main thread's side of the worker protocol: request ids, replies, progress and chunks. */
import { AbortError, DeviceLostError, EngineCrashedError, WebVLMError, fromWire } from './errors.js';
import type { Event, Request, ResultValue, WithoutId } from './protocol.js';
import type { GenerateChunk, LoadProgress } from './types.js';

interface Pending {
  resolve(v: ResultValue): void;
  reject(e: Error): void;
  onProgress?: (p: LoadProgress) => void;
  onChunk?: (c: GenerateChunk) => void;
}

export class WorkerClient {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  /** Set once the device is lost or the worker died: every later call fails with it. */
  broken?: Error;

  constructor(private worker: Worker) {
    worker.onmessage = (e: MessageEvent<Event>) => this.onEvent(e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      const error = e.message
        ? new EngineCrashedError(`the webvlm worker failed (${e.message}); it was stopped, load the model again`)
        : new WebVLMError('the webvlm worker failed: it could not start (is the package served with its worker.js and wasm/?)');
      this.stop(error);
    };
  }

  private onEvent(ev: Event): void {
    // A lost device or a crashed engine cannot serve another call: fail everything and stop
    // the worker at once, which frees its wasm heap and GPU memory without waiting for dispose().
    if (ev.kind === 'deviceLost' || ev.kind === 'crashed') {
      this.stop(fromWire(ev.error));
      return;
    }
    const p = this.pending.get(ev.id);
    if (!p) return;
    switch (ev.kind) {
      case 'progress':
        p.onProgress?.(ev.progress);
        break;
      case 'chunk':
        p.onChunk?.(ev.chunk);
        break;
      case 'result':
        this.pending.delete(ev.id);
        p.resolve(ev.value);
        break;
      case 'error':
        this.pending.delete(ev.id);
        p.reject(fromWire(ev.error));
        break;
    }
  }

  private fail(e: Error): void {
    this.broken ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Send a request; resolves with its result. Returns the id too, for aborts. */
  send(req: WithoutId<Request>, handlers: Omit<Pending, 'resolve' | 'reject'> = {}, transfer: Transferable[] = []): { id: number; done: Promise<ResultValue> } {
    const id = this.nextId++;
    const done = new Promise<ResultValue>((resolve, reject) => {
      if (this.broken) {
        reject(this.broken);
        return;
      }
      this.pending.set(id, { resolve, reject, ...handlers });
      this.worker.postMessage({ ...req, id } as Request, transfer);
    });
    return { id, done };
  }

  abort(target: number): void {
    if (!this.broken) this.worker.postMessage({ kind: 'abort', id: this.nextId++, target } satisfies Request);
  }

  terminate(): void {
    this.stop(new WebVLMError('this WebVLM was disposed'));
  }

  /** Fail with `e` (unless already broken) and end the worker. */
  private stop(e: Error): void {
    this.fail(e);
    this.stopped = true;
    this.worker.terminate();
  }

  /** Whether the worker was ended (disposed, device lost, crashed). */
  stopped = false;

  /**
   * A streaming request as an async iterable of chunks. Aborting `signal` (or leaving the loop
   * early) tells the worker to stop; the iteration then ends with an {@link AbortError}.
   */
  async *stream(req: WithoutId<Request>, signal?: AbortSignal, transfer: Transferable[] = []): AsyncGenerator<GenerateChunk> {
    if (signal?.aborted) throw new AbortError('generation aborted before it started');
    const queue: GenerateChunk[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    let error: Error | undefined;
    const { id, done } = this.send(req, { onChunk: (c) => { queue.push(c); wake?.(); } }, transfer);
    done.then(
      () => { finished = true; wake?.(); },
      (e: Error) => { error = e; finished = true; wake?.(); },
    );
    const onAbort = () => this.abort(id);
    signal?.addEventListener('abort', onAbort, { once: true });
    let completed = false;
    try {
      for (;;) {
        while (queue.length) {
          const chunk = queue.shift()!;
          if (chunk.finishReason === 'abort') throw new AbortError('generation aborted');
          if (chunk.done) completed = true;
          yield chunk;
        }
        if (finished) {
          if (error) throw error;
          return;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!completed && !error) {
        // The consumer left early: stop the worker and wait for it, so the next request
        // starts on a quiet engine.
        this.abort(id);
        await done.catch(() => undefined);
      }
    }
  }

  get deviceLost(): boolean {
    return this.broken instanceof DeviceLostError;
  }

  get crashed(): boolean {
    return this.broken instanceof EngineCrashedError;
  }
}
