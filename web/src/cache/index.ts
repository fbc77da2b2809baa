/**
 * The model cache as users see it: which models are stored, how much space they take, and
 * deleting them. Works on the main thread (async OPFS API) and in the worker.
 */
import { CACHE_NAME, CacheApiStore, cacheApiAvailable, cacheKeyUrl } from './cache-api.js';
import { MARKER, OpfsStore, modelsRoot, opfsAvailable } from './opfs.js';
import { type ModelStore, MemoryStore } from './store.js';
import type { CacheMode } from '../types.js';
import { ModelInUseError, StorageError } from '../errors.js';
import { ifModelUnlocked } from './lock.js';

export interface CachedModel {
  /** Directory / cache key. */
  key: string;
  /** The URL the model was loaded from. */
  url: string;
  /** Bytes stored (complete and partial files). */
  bytes: number;
  /** Files verified against the manifest. */
  files: number;
  store: 'opfs' | 'cache-api';
}

/** A stable, filesystem-safe key for a model URL: a readable tail plus a SHA-256 prefix. */
export async function modelKey(url: string): Promise<string> {
  const normalized = url.replace(/\/+$/, '');
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(normalized)));
  const hex = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
  const tail = normalized.split('/').filter(Boolean).slice(-2).join('-').replace(/[^A-Za-z0-9._-]/g, '_').slice(-48);
  return `${tail}-${hex}`;
}

export function defaultMode(): CacheMode {
  if (opfsAvailable()) return 'opfs';
  if (cacheApiAvailable()) return 'cache-api';
  return 'none';
}

export async function openStore(mode: CacheMode, key: string, url: string): Promise<ModelStore> {
  if (mode === 'opfs' && opfsAvailable()) return OpfsStore.open(key, url);
  if (mode !== 'none' && cacheApiAvailable()) return CacheApiStore.open(key, url);
  return new MemoryStore();
}

async function listOpfs(): Promise<CachedModel[]> {
  if (!opfsAvailable()) return [];
  const root = await modelsRoot(false);
  if (!root) return [];
  const out: CachedModel[] = [];
  for await (const [key, handle] of root.entries()) {
    if (handle.kind !== 'directory') continue;
    const dir = handle as FileSystemDirectoryHandle;
    let bytes = 0;
    let url = '';
    let files = 0;
    for await (const [name, entry] of dir.entries()) {
      if (entry.kind !== 'file') continue;
      const file = await (entry as FileSystemFileHandle).getFile();
      bytes += file.size;
      if (name === MARKER) {
        try {
          const marker = JSON.parse(await file.text());
          url = marker.url ?? '';
          files = Object.keys(marker.files ?? {}).length;
        } catch {
          // Torn marker: listed with no verified files.
        }
      }
    }
    out.push({ key, url, bytes, files, store: 'opfs' });
  }
  return out;
}

async function listCacheApi(): Promise<CachedModel[]> {
  if (!cacheApiAvailable() || !(await caches.has(CACHE_NAME))) return [];
  const cache = await caches.open(CACHE_NAME);
  const byKey = new Map<string, CachedModel>();
  for (const req of await cache.keys()) {
    const path = new URL(req.url).pathname.slice(1);
    const key = path.split('/')[0];
    const m = byKey.get(key) ?? { key, url: '', bytes: 0, files: 0, store: 'cache-api' as const };
    const res = await cache.match(req);
    if (path.endsWith('/.complete.json')) {
      // The marker is small; it names the model and its verified files.
      const body = res ? await res.text() : '';
      m.bytes += body.length;
      try {
        const marker = JSON.parse(body);
        m.url = marker.url ?? '';
        m.files = Object.keys(marker.files ?? {}).length;
      } catch {
        // Unreadable marker.
      }
    } else {
      // Sizes from the stored headers: a listing never reads the weights themselves.
      m.bytes += Number(res?.headers.get('Content-Length') ?? 0);
    }
    byKey.set(key, m);
  }
  return [...byKey.values()];
}

/** Cached models in OPFS and the Cache API. */
export async function list(): Promise<CachedModel[]> {
  return [...(await listOpfs()), ...(await listCacheApi())];
}

/**
 * Delete a cached model, by the URL it was loaded from or by its key. True when found. A model
 * whose files a load is reading or downloading (in this tab or another) is not deleted: that
 * is a {@link ModelInUseError}; try again once the load has finished.
 */
export async function remove(urlOrKey: string): Promise<boolean> {
  const models = await list();
  const key = models.some((m) => m.key === urlOrKey) ? urlOrKey : await modelKey(urlOrKey);
  const done = await ifModelUnlocked(key, () => removeUnlocked(key));
  if (!done) throw new ModelInUseError(`the cached model ${urlOrKey} is being loaded (in this tab or another); delete it once the load has finished`);
  return done.value;
}

async function removeUnlocked(key: string): Promise<boolean> {
  let found = false;
  if (opfsAvailable()) {
    const root = await modelsRoot(false);
    if (root) {
      try {
        await root.removeEntry(key, { recursive: true });
        found = true;
      } catch (e) {
        if ((e as { name?: string })?.name !== 'NotFoundError') {
          throw new StorageError(`could not delete the cached model ${key} from OPFS (${(e as Error)?.name}: ${(e as Error)?.message})`);
        }
      }
    }
  }
  if (cacheApiAvailable() && (await caches.has(CACHE_NAME))) {
    const cache = await caches.open(CACHE_NAME);
    for (const req of await cache.keys()) {
      if (req.url.startsWith(cacheKeyUrl(key, ''))) {
        await cache.delete(req);
        found = true;
      }
    }
  }
  return found;
}

export interface CacheUsage {
  /** Bytes webvlm stores. */
  models: number;
  /** The origin's usage and quota from `navigator.storage.estimate()`. */
  usage: number;
  quota: number;
  persisted: boolean;
}

export async function usage(): Promise<CacheUsage> {
  const models = (await list()).reduce((sum, m) => sum + m.bytes, 0);
  const est = navigator.storage?.estimate ? await navigator.storage.estimate() : {};
  const persisted = navigator.storage?.persisted ? await navigator.storage.persisted() : false;
  return { models, usage: est.usage ?? 0, quota: est.quota ?? 0, persisted };
}
