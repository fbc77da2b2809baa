/**
 * Typed errors. Errors cross the worker boundary as `{ name, message }` and are rebuilt here
 * into these classes, so `err instanceof IntegrityError` works on the main thread.
 */

export class WebVLMError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The browser has no WebGPU, or no adapter/device could be created. */
export class WebGPUUnavailableError extends WebVLMError {}
/** The model's files are missing, malformed or of an unsupported architecture. */
export class ModelFormatError extends WebVLMError {}
/** A file's bytes do not match the manifest's sha256 (even after a re-download). */
export class IntegrityError extends WebVLMError {}
/** A download failed for good (after retries). */
export class NetworkError extends WebVLMError {}
/** Not enough storage for the model. */
export class QuotaExceededError extends WebVLMError {}
/** The model cache (OPFS or the Cache API) failed: a file could not be opened, read or deleted. */
export class StorageError extends WebVLMError {}
/** A cached model cannot be deleted now: a load (in this tab or another) is reading it. */
export class ModelInUseError extends StorageError {}
/** The GPU device was lost; load the model again. */
export class DeviceLostError extends WebVLMError {}
/** Another GPU failure (a kernel, a readback). */
export class DeviceError extends WebVLMError {}
/**
 * The work needs more GPU memory than the device gives: a buffer or binding past its limits
 * (`maxStorageBufferBindingSize`, `maxBufferSize`) or an allocation that failed.
 */
export class OutOfMemoryError extends WebVLMError {}
/** The model's kernels need a WebGPU feature this adapter does not offer. */
export class MissingFeatureError extends WebVLMError {}
/**
 * The model's logits came out NaN or infinite: a numerical fault (an f16 overflow on this
 * device, a corrupt weight). The generation stopped; no token was made up from them.
 */
export class NumericalError extends WebVLMError {}
/** The operation was aborted through its `AbortSignal`. */
export class AbortError extends WebVLMError {}
/** The prompt does not fit the model's context window. */
export class ContextOverflowError extends WebVLMError {}
/** The image could not be decoded or is unusable. */
export class ImageError extends WebVLMError {}
/** A request or option is invalid (e.g. top_p outside (0, 1]). */
export class InvalidRequestError extends WebVLMError {}
/** A request arrived while another one needs the engine. */
export class BusyError extends WebVLMError {}
/**
 * The engine hit a fault it cannot go on from (a trap or panic in the wasm module, an error
 * nothing caught in its worker). Its worker was stopped, which frees its memory; every call on
 * this `WebVLM` fails with this error, and `WebVLM.load` starts a fresh engine.
 */
export class EngineCrashedError extends WebVLMError {}

const classes = {
  WebVLMError,
  WebGPUUnavailableError,
  ModelFormatError,
  IntegrityError,
  NetworkError,
  QuotaExceededError,
  StorageError,
  ModelInUseError,
  DeviceLostError,
  DeviceError,
  OutOfMemoryError,
  MissingFeatureError,
  NumericalError,
  AbortError,
  ContextOverflowError,
  ImageError,
  InvalidRequestError,
  BusyError,
  EngineCrashedError,
} as const;

export type ErrorName = keyof typeof classes;

/** The form errors take in messages. */
export interface WireError {
  name: string;
  message: string;
}

export function toWire(e: unknown): WireError {
  if (e instanceof WebVLMError) return { name: e.name, message: e.message };
  if (e && typeof e === 'object') {
    const o = e as { name?: unknown; message?: unknown; errorName?: unknown };
    const name = typeof o.errorName === 'string' ? o.errorName : typeof o.name === 'string' ? o.name : 'WebVLMError';
    const message = typeof o.message === 'string' ? o.message : String(e);
    if (name === 'QuotaExceededError') return { name, message: `storage is full: ${message}` };
    // A trap in the wasm module (a Rust panic) leaves the engine unusable.
    if (name === 'RuntimeError') return crashed(message);
    return { name: name in classes ? name : 'WebVLMError', message };
  }
  return { name: 'WebVLMError', message: String(e) };
}

/** The wire form of a fault the engine cannot go on from. */
export function crashed(cause: string): WireError {
  return { name: 'EngineCrashedError', message: `the engine crashed (${cause}); its worker was stopped, load the model again` };
}

export function fromWire(w: WireError): WebVLMError {
  const cls = (classes as Record<string, typeof WebVLMError>)[w.name] ?? WebVLMError;
  return new cls(w.message);
}
