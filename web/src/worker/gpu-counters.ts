/**
 * Counts what the engine asks of WebGPU, at the API itself: compute dispatches
 * (`GPUComputePassEncoder.dispatchWorkgroups[Indirect]`), queue submissions (`GPUQueue.submit`),
 * bytes mapped for reading (`GPUBuffer.mapAsync` with `GPUMapMode.READ`) and host waits on the
 * device (each such map and each `onSubmittedWorkDone`). Independent of the Rust side's own
 * counters; the benchmark reports these in the browser. The wrappers cost one increment per call.
 */
import type { GpuCost } from '../types.js';

const counts: GpuCost = { dispatches: 0, submissions: 0, readbackBytes: 0, syncs: 0 };
let installed = false;

/** GPUMapMode.READ (a constant of the WebGPU spec). */
const MAP_READ = 1;

type Proto = Record<string, unknown>;

function wrap(proto: Proto | undefined, name: string, count: (self: unknown, args: unknown[]) => void): void {
  const original = proto?.[name];
  if (!proto || typeof original !== 'function') return;
  proto[name] = function (this: unknown, ...args: unknown[]) {
    count(this, args);
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  };
}

/** Install the wrappers (idempotent; a no-op where the WebGPU classes are missing). */
export function installGpuCounters(): void {
  if (installed) return;
  installed = true;
  const g = globalThis as unknown as Record<string, { prototype: Proto } | undefined>;
  const pass = g.GPUComputePassEncoder?.prototype;
  wrap(pass, 'dispatchWorkgroups', () => counts.dispatches++);
  wrap(pass, 'dispatchWorkgroupsIndirect', () => counts.dispatches++);
  wrap(g.GPUQueue?.prototype, 'submit', () => counts.submissions++);
  wrap(g.GPUQueue?.prototype, 'onSubmittedWorkDone', () => counts.syncs++);
  wrap(g.GPUBuffer?.prototype, 'mapAsync', (self, args) => {
    const mode = Number(args[0]);
    if ((mode & MAP_READ) === 0) return;
    const buffer = self as { size: number };
    const size = args[2] !== undefined ? Number(args[2]) : buffer.size - Number(args[1] ?? 0);
    counts.readbackBytes += size;
    counts.syncs++;
  });
}

/** The counts so far (they only grow). */
export function gpuCounts(): GpuCost {
  return { ...counts };
}

/** What happened between two snapshots. */
export function costSince(later: GpuCost, earlier: GpuCost): GpuCost {
  return {
    dispatches: later.dispatches - earlier.dispatches,
    submissions: later.submissions - earlier.submissions,
    readbackBytes: later.readbackBytes - earlier.readbackBytes,
    syncs: later.syncs - earlier.syncs,
  };
}

/** Field-wise median (0 for none). */
export function medianCost(costs: GpuCost[]): GpuCost {
  const med = (f: (c: GpuCost) => number) => {
    const v = costs.map(f).sort((a, b) => a - b);
    if (v.length === 0) return 0;
    const m = v.length >> 1;
    return Math.round(v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2);
  };
  return {
    dispatches: med((c) => c.dispatches),
    submissions: med((c) => c.submissions),
    readbackBytes: med((c) => c.readbackBytes),
    syncs: med((c) => c.syncs),
  };
}
