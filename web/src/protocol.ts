/**
 * The worker protocol: one discriminated union for requests (main thread → worker) and one for
 * events (worker → main thread), both keyed on `kind`, each carrying the request `id` it
 * belongs to. Chunks carry text deltas only; errors travel as `{ name, message }`.
 */
import type { WireError } from './errors.js';
import type { KernelBenchRow } from './bench.js';
import type { AdapterInfo, CacheMode, GenerateChunk, GpuMemory, LoadProgress, ModelInfo } from './types.js';

/** A message as the engine takes it: parts are text or the conversation's one image. */
export interface WireMessage {
  role: string;
  content: Array<{ type: 'text'; text: string } | { type: 'image' }>;
}

/** Pixels or something the worker decodes (`createImageBitmap` + `OffscreenCanvas`). */
export type WireImage = Blob | ImageBitmap | ImageData | { url: string };

/** Generation options in the engine's own (snake_case) form. */
export interface WireOptions {
  max_new_tokens?: number;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  repetition_penalty?: number;
  seed?: number;
  ignore_eos?: boolean;
}

/** What `start` takes besides the messages. */
export interface WireGenerate {
  options: WireOptions;
  /** Overrides the model's `do_image_splitting`. */
  image_splitting?: boolean;
}

export type Request =
  | { kind: 'load'; id: number; url: string; cache: CacheMode; revision: string; contextLength?: number; memoryBudget?: number; stallTimeout?: number }
  | { kind: 'generate'; id: number; messages: WireMessage[]; image?: WireImage; options: WireOptions; imageSplitting?: boolean }
  /** The q4 matvec vs copy kernel micro-benchmark on the worker's device. */
  | { kind: 'bench.kernels'; id: number; repeats: number }
  | { kind: 'abort'; id: number; target: number }
  | { kind: 'reset'; id: number }
  | { kind: 'unload'; id: number }
  /** The engine allocator's GPU memory. */
  | { kind: 'memory'; id: number }
  /** Test hook: destroy the GPU device as a driver reset would. */
  | { kind: 'debug.loseDevice'; id: number }
  /** Test hook: trap the wasm module as a panic would. */
  | { kind: 'debug.trap'; id: number };

export type Event =
  | { kind: 'progress'; id: number; progress: LoadProgress }
  | { kind: 'chunk'; id: number; chunk: GenerateChunk }
  | { kind: 'result'; id: number; value: ResultValue }
  | { kind: 'error'; id: number; error: WireError }
  | { kind: 'deviceLost'; id: 0; error: WireError }
  /** The engine cannot go on (a trap, an uncaught error): the main thread stops the worker. */
  | { kind: 'crashed'; id: 0; error: WireError };

export type ResultValue = ModelInfo | AdapterInfo | KernelBenchRow[] | GpuMemory | null;

export type RequestKind = Request['kind'];

/** Distributes `Omit` over a union, so each request keeps its own fields. */
export type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
