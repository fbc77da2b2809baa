/**
 * Counts what the engine asks of WebGPU, at the API itself: compute dispatches
 * (`GPUComputePassEncoder.dispatchWorkgroups[Indirect]`), queue submissions (`GPUQueue.submit`),
 * bytes read back (`GPUCommandEncoder.copyBufferToBuffer` into a `MAP_READ` buffer) and host
 * waits on the device (`GPUBuffer.mapAsync` for reading, `GPUQueue.onSubmittedWorkDone`). Independent of the Rust side's own
 * counters; the benchmark reports these in the browser. The wrappers cost one increment per call.
 */
import type { GpuCost } from '../types.js';

const counts: GpuCost = { dispatches: 0, submissions: 0, readbackBytes: 0, syncs: 0 };
let installed = false;

/** GPUMapMode.READ and GPUBufferUsage.MAP_READ (both 1 in the WebGPU spec). */
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
  // Bytes read back: what is copied into host-mappable (MAP_READ) buffers. The map itself may
  // cover more (CubeCL maps its whole 16 KiB staging buffer to read a 4-byte id).
  wrap(g.GPUCommandEncoder?.prototype, 'copyBufferToBuffer', (_self, args) => {
    const long = typeof args[1] === 'number';
    const dst = (long ? args[2] : args[1]) as { usage: number } | undefined;
    if (!dst || (dst.usage & MAP_READ) === 0) return;
    const src = args[0] as { size: number };
    const size = long ? args[4] : args[2];
    counts.readbackBytes += size !== undefined ? Number(size) : src.size - (long ? Number(args[1]) : 0);
  });
  wrap(g.GPUBuffer?.prototype, 'mapAsync', (_self, args) => {
    if ((Number(args[0]) & MAP_READ) !== 0) counts.syncs++;
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
