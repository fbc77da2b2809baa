/**
 * Hooks on the WebGPU entry points, installed before the engine asks for a device:
 * - remember the adapter (for `info.adapter`) and the device (to watch `device.lost`);
 * - ask for `subgroups` when the adapter has it. wgpu's browser backend never requests it, yet
 *   burn's cubecl kernels may `enable subgroups;` (shared/BURN_WGPU_NOTES.md);
 * - let an adapter without `timestamp-query` (Safari, many phones) start the engine: CubeCL 0.11
 *   panics while creating its stream on wasm when the adapter lacks it, though it only uses
 *   timestamps to profile, which the engine never does. Such an adapter is shown to CubeCL with
 *   the feature, and the device is requested without it; `info.adapter` lists the real ones.
 */
import { WebGPUUnavailableError } from '../errors.js';
import type { AdapterInfo } from '../types.js';

/* Minimal WebGPU shapes (the DOM lib of TypeScript 5.9 has no WebGPU types). */
interface GpuAdapterLike {
  features: ReadonlySet<string>;
  limits: Record<string, number>;
  info?: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
  requestDevice(desc?: { requiredFeatures?: string[]; requiredLimits?: Record<string, number> }): Promise<GpuDeviceLike>;
}
export interface GpuDeviceLike {
  lost: Promise<{ reason: string; message: string }>;
  destroy(): void;
  pushErrorScope?(filter: string): void;
  popErrorScope?(): Promise<{ message: string } | null>;
}

export interface GpuState {
  adapter?: GpuAdapterLike;
  device?: GpuDeviceLike;
  lost?: { reason: string; message: string };
  onLost?: (info: { reason: string; message: string }) => void;
}

export const gpu: GpuState = {};
let installed = false;
/** The adapter's own features, past the `timestamp-query` shown to CubeCL. */
let realFeatures = (a: GpuAdapterLike): ReadonlySet<string> => a.features;

export function installGpuHooks(): void {
  const nav = navigator as Navigator & { gpu?: { requestAdapter: unknown } };
  if (!nav.gpu) {
    throw new WebGPUUnavailableError('this browser has no WebGPU (navigator.gpu is missing): use Chrome or Edge 113+, Safari 26+ or Firefox 141+');
  }
  if (installed) return;
  installed = true;
  const gpuProto = Object.getPrototypeOf(nav.gpu) as { requestAdapter: (o?: unknown) => Promise<GpuAdapterLike | null> };
  const requestAdapter = gpuProto.requestAdapter;
  gpuProto.requestAdapter = async function (this: unknown, options?: unknown) {
    const adapter = await requestAdapter.call(this, options);
    if (!adapter) throw new WebGPUUnavailableError('WebGPU is present but no adapter is available (blocklisted GPU or disabled in settings)');
    gpu.adapter = adapter;
    const adapterProto = Object.getPrototypeOf(adapter) as GpuAdapterLike;
    if (!(adapterProto as { __webvlm?: boolean }).__webvlm) {
      (adapterProto as { __webvlm?: boolean }).__webvlm = true;
      const featuresGetter = Object.getOwnPropertyDescriptor(adapterProto, 'features')?.get as ((this: GpuAdapterLike) => ReadonlySet<string>) | undefined;
      if (featuresGetter) {
        realFeatures = (a) => featuresGetter.call(a);
        Object.defineProperty(adapterProto, 'features', {
          configurable: true,
          get(this: GpuAdapterLike) {
            const real = featuresGetter.call(this);
            return real.has('timestamp-query') ? real : new Set([...real, 'timestamp-query']);
          },
        });
      }
      const requestDevice = adapterProto.requestDevice;
      adapterProto.requestDevice = async function (this: GpuAdapterLike, desc = {}) {
        const real = realFeatures(this);
        const features = new Set((desc.requiredFeatures ?? []).filter((f) => real.has(f)));
        if (real.has('subgroups')) features.add('subgroups');
        const device = await requestDevice.call(this, { ...desc, requiredFeatures: [...features] });
        gpu.device = device;
        device.lost.then((info) => {
          gpu.lost = { reason: info.reason, message: info.message };
          gpu.onLost?.(gpu.lost);
        });
        return device;
      };
    }
    return adapter;
  };
}

export function adapterInfo(): AdapterInfo {
  const a = gpu.adapter;
  const limits: Record<string, number> = {};
  if (a) {
    for (const k in a.limits) {
      const v = a.limits[k];
      if (typeof v === 'number') limits[k] = v;
    }
  }
  return {
    vendor: a?.info?.vendor ?? '',
    architecture: a?.info?.architecture ?? '',
    description: a?.info?.description ?? '',
    features: a ? [...realFeatures(a)].sort() : [],
    limits,
    isFallbackAdapter: !!(a?.info?.isFallbackAdapter ?? a?.isFallbackAdapter),
  };
}
