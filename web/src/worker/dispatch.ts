/**
 * Requests → engine calls → events. Requests run one at a time in arrival order, except
 * `abort`, which acts at once (it flags the running generation or load). After a crash (a
 * trap in the wasm module) every request fails with it: the module's state is undefined.
 */
import { type WireError, toWire } from '../errors.js';
import type { Event, Request } from '../protocol.js';
import type { Engine } from './engine.js';

export function createDispatcher(engine: Engine, post: (e: Event) => void): (req: Request) => void {
  let chain: Promise<void> = Promise.resolve();
  const aborts = new Map<number, AbortController>();
  let crash: WireError | undefined;

  engine.onDeviceLost((message) => post({ kind: 'deviceLost', id: 0, error: { name: 'DeviceLostError', message } }));

  const run = async (req: Exclude<Request, { kind: 'abort' }>, signal: AbortSignal) => {
    switch (req.kind) {
      case 'load': {
        const info = await engine.load(req, (progress) => post({ kind: 'progress', id: req.id, progress }), signal);
        post({ kind: 'result', id: req.id, value: info });
        return;
      }
      case 'generate':
        await engine.generate(req, (chunk) => post({ kind: 'chunk', id: req.id, chunk }), () => signal.aborted);
        post({ kind: 'result', id: req.id, value: null });
        return;
      case 'bench.kernels':
        post({ kind: 'result', id: req.id, value: await engine.benchKernels(req.repeats) });
        return;
      case 'reset':
        engine.reset();
        break;
      case 'unload':
        engine.unload();
        break;
      case 'memory':
        post({ kind: 'result', id: req.id, value: engine.memory() });
        return;
      case 'debug.loseDevice':
        engine.loseDevice();
        break;
      case 'debug.trap':
        engine.trap();
        break;
    }
    post({ kind: 'result', id: req.id, value: null });
  };

  return (req: Request) => {
    if (req.kind === 'abort') {
      aborts.get(req.target)?.abort();
      post({ kind: 'result', id: req.id, value: null });
      return;
    }
    const controller = new AbortController();
    aborts.set(req.id, controller);
    chain = chain.then(async () => {
      try {
        if (crash) {
          post({ kind: 'error', id: req.id, error: crash });
          return;
        }
        await run(req, controller.signal);
      } catch (e) {
        const error = toWire(e);
        post({ kind: 'error', id: req.id, error });
        if (error.name === 'EngineCrashedError' && !crash) {
          crash = error;
          post({ kind: 'crashed', id: 0, error });
        }
      } finally {
        aborts.delete(req.id);
      }
    });
  };
}
