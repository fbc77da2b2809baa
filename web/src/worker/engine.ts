/**
 * What the worker does, behind one interface so the dispatcher can be tested with a fake:
 * the real implementation drives the wasm `Session`.
 */
import type { ModelInfo, GenerateChunk, GpuMemory, LoadProgress, CacheMode } from '../types.js';
import type { KernelBenchRow } from '../bench.js';
import type { WireImage, WireMessage, WireOptions } from '../protocol.js';

export interface LoadRequest {
  url: string;
  cache: CacheMode;
  revision: string;
  /** Positions a conversation may hold (default: the model's context, shortened to fit). */
  contextLength?: number;
  /** GPU bytes the model may take (default: from `navigator.deviceMemory`, where known). */
  memoryBudget?: number;
  /** Milliseconds without a byte before a download is retried (default 30 000). */
  stallTimeout?: number;
}

export interface GenerateCall {
  messages: WireMessage[];
  image?: WireImage;
  options: WireOptions;
  imageSplitting?: boolean;
}

export interface Engine {
  /** Replaces the loaded model only once the new one is complete: a failed or aborted load
   * leaves it in use. */
  load(req: LoadRequest, progress: (p: LoadProgress) => void, signal: AbortSignal): Promise<ModelInfo>;
  /** Emits chunks; the last has `done: true`. Checks `aborted()` between tokens. */
  generate(req: GenerateCall, emit: (c: GenerateChunk) => void, aborted: () => boolean): Promise<void>;
  /** Kernel micro-benchmark rows (the benchmark report's `kernels`). */
  benchKernels(repeats: number): Promise<KernelBenchRow[]>;
  reset(): void;
  unload(): void;
  /** The allocator's GPU memory (zeros before the device exists). */
  memory(): GpuMemory;
  loseDevice(): void;
  /** Test hook: trap the wasm module. */
  trap(): void;
  /** Called once if the GPU device is lost. */
  onDeviceLost(cb: (message: string) => void): void;
}
