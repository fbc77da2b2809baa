/**
 * The Web Worker entry: the engine runs here so that decode never blocks the page.
 * Created by `WebVLM.load` as `new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })`.
 */
import type { Event, Request } from './protocol.js';
import { createDispatcher } from './worker/dispatch.js';
import { WasmEngine } from './worker/wasm-engine.js';

const scope = self as unknown as {
  postMessage(message: Event): void;
  onmessage: ((e: MessageEvent<Request>) => void) | null;
};

const dispatch = createDispatcher(new WasmEngine(), (event) => scope.postMessage(event));
scope.onmessage = (e) => dispatch(e.data);
