/** Public types of the package. */

/** Where weights are cached: OPFS (default), the Cache API (where OPFS is missing) or nowhere. */
export type CacheMode = 'opfs' | 'cache-api' | 'none';

export interface LoadProgress {
  phase: 'manifest' | 'download' | 'verify' | 'upload' | 'ready';
  /** The file this event is about, when there is one. */
  file?: string;
  fileLoaded?: number;
  fileTotal?: number;
  /** Bytes available so far (cached or downloaded), over all files. */
  loaded: number;
  total: number;
  /** Everything so far came from the cache. */
  fromCache: boolean;
  /** Where the files are kept (on every event after the manifest): watch `fallback`. */
  storage?: StorageState;
}

/** GPU memory of a model as planned from its manifest, in bytes. */
export interface MemoryPlan {
  weights: number;
  /** KV cache per context position (all layers, keys and values). */
  kvPerPosition: number;
  /** Activations of the largest forward. */
  scratch: number;
  /** weights + kvPerPosition × contextLength + scratch. */
  total: number;
  /** The budget it was checked against, when there was one. */
  budget?: number;
}

/** Where a model's files are kept between page loads. */
export interface StorageState {
  /** 'memory': nothing persists; the next page load downloads the model again. */
  mode: 'opfs' | 'cache-api' | 'memory';
  /** Whether the browser granted persistent storage (else it may evict under pressure). */
  persisted: boolean;
  /** Why the requested store could not be used, when the files went elsewhere. */
  fallback?: string;
}

export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
  /** Default: 'opfs' where available, else 'cache-api'. */
  cache?: CacheMode;
  /** Revision for Hugging Face–style URLs (default `main`). */
  revision?: string;
  /** A worker to run the engine in (bundlers that need a custom worker URL). */
  worker?: Worker;
  /**
   * Positions one conversation may hold (prompt, image tokens and reply). Default: the model's
   * context, shortened (in steps of 256, not below 512) when the whole of it would not fit the
   * memory budget. A longer prompt is then a ContextOverflowError.
   */
  contextLength?: number;
  /**
   * GPU bytes the model may take: weights, the KV cache at the chosen context and activations,
   * as planned from the manifest before anything is downloaded. A model that cannot fit is an
   * OutOfMemoryError at once. Default: half of `navigator.deviceMemory` where the browser
   * reports it (phones share that memory with everything else), else no limit.
   */
  memoryBudget?: number;
  /**
   * Milliseconds a download may go without receiving a byte before its connection is dropped
   * and the file is requested again from where it stopped (a Range request); after five such
   * retries in a row the load fails with a NetworkError. Mobile connections stall silently;
   * without this a load would wait forever. Default 30 000.
   */
  stallTimeout?: number;
}

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  description: string;
  features: string[];
  limits: Record<string, number>;
  isFallbackAdapter: boolean;
}

export interface ModelInfo {
  url: string;
  modelType: string;
  quant: string;
  family: 'vlm' | 'text';
  /** The model family by name: 'SmolVLM / Idefics3', 'LLaVA', 'Llama', 'Qwen2' or 'Phi'. */
  familyName: string;
  /** The transformers class the checkpoint was saved from, e.g. 'LlavaForConditionalGeneration'. */
  architecture: string;
  contextLength: number;
  /** Image tokens per tile; 0 for text-only models and for Qwen-VL, whose count follows each image's size. */
  imageSeqLen: number;
  vocabSize: number;
  /** Bytes of weights one decoded token reads (decoder layers, final norm, lm_head, one embedding row). */
  decodeWeightBytes: number;
  /** Whether the model cuts images into tiles by default (`imageSplitting` overrides it per request). */
  imageSplitting: boolean;
  /** Bytes of weights and assets. */
  bytes: number;
  adapter: AdapterInfo;
  /** Where the files are kept. */
  storage: StorageState;
  /** The GPU memory planned for the model (bytes), and the budget it was planned against. */
  memory: MemoryPlan;
  /** Milliseconds: storage/network phase and GPU upload. */
  timings: { fetchMs: number; uploadMs: number };
}

/** Anything the worker can turn into pixels. */
export type ImageInput = Blob | ImageBitmap | ImageData | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | string | URL;

export interface SamplingOptions {
  /** Upper bound on generated tokens (default 256). */
  maxTokens?: number;
  /** 0 (default) is greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  /** Seeds the draws (Philox, counted per token): the same seed gives the same tokens. */
  seed?: number;
  /** Keep going past end-of-sequence tokens. */
  ignoreEos?: boolean;
  /** Override the model's image tiling: `false` sends one tile (faster, less detail). */
  imageSplitting?: boolean;
  signal?: AbortSignal;
}

export interface GenerateRequest extends SamplingOptions {
  prompt: string;
  image?: ImageInput;
}

export type FinishReason = 'stop' | 'length' | 'context' | 'abort';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt positions reused from the previous turn's KV cache. */
  reusedTokens: number;
  /** `<image>` tokens in the prompt. */
  imageTokens: number;
  /** Highest GPU memory the runtime held during the request (sampled before it and after encode, prefill and the last token). */
  peakGpuBytes: number;
  /** WebGPU commands the image encode (zero without an image), the prefill and one decoded token (median of the steps) cost, counted at the API. */
  gpuCounts: { encode: GpuCost; prefill: GpuCost; perToken: GpuCost };
  timings: {
    /** Image decode in the worker. */
    imageMs: number;
    /** Prompt preparation (template, image preprocessing, tokenizer). */
    prepareMs: number;
    /** Vision tower + connector (0 without an image or when the cache was reused). */
    encodeMs: number;
    /** The decoder over the (new part of the) prompt, to the first token's logits. */
    prefillMs: number;
    /** From the request reaching the worker to the first token. */
    firstTokenMs: number;
    /** After the first token. */
    decodeMs: number;
    decodeTokensPerSecond: number;
  };
}

/** GPU memory of the engine's allocator, in bytes. */
export interface GpuMemory {
  /** Live buffers. */
  inUse: number;
  /** What the allocator holds from the device (live buffers, padding and free pages). */
  reserved: number;
}

/** Host-side cost of GPU work. */
export interface GpuCost {
  /** Compute dispatches. */
  dispatches: number;
  /** Queue submissions. */
  submissions: number;
  /** Bytes copied into host-readable buffers (read back to the host). */
  readbackBytes: number;
  /** Host waits on the device (read maps, `onSubmittedWorkDone`). */
  syncs: number;
}

export interface GenerateChunk {
  /** New text since the previous chunk. */
  text: string;
  tokenId?: number;
  done: boolean;
  finishReason?: FinishReason;
  usage?: Usage;
}

/** Chat messages in the OpenAI shape. */
export type ChatContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string } | string }
  | { type: 'image'; image: ImageInput };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ChatContentPart[];
}
