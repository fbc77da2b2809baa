/**
 * The Web Worker entry: the engine runs here so that decode never blocks the page.
 * Created by `WebVLM.load` as `new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })`.
 */
import { crashed } from './errors.js';
import type { Event, Request } from './protocol.js';
import { createDispatcher } from './worker/dispatch.js';
import { WasmEngine } from './worker/wasm-engine.js';

const scope = self as unknown as {
  postMessage(message: Event): void;
  onmessage: ((e: MessageEvent<Request>) => void) | null;
};

const dispatch = createDispatcher(new WasmEngine(), (event) => scope.postMessage(event));
scope.onmessage = (e) => dispatch(e.data);

// A fault outside any request (a trap in a GPU callback, a rejection nobody awaited) leaves
// the wasm module in an unknown state as surely as one inside: report it, and the main thread
// stops this worker.
const fault = (cause: unknown) => scope.postMessage({ kind: 'crashed', id: 0, error: crashed(String((cause as Error)?.message ?? cause)) });
self.addEventListener('error', (e) => {
  e.preventDefault();
  fault(e.error ?? e.message);
});
self.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  fault(e.reason);
});
