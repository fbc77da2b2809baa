/**
 * Network → store for a whole model: fetch the manifest, then every file the store does not
 * hold verified, a few at a time, under a Web Lock so that two tabs loading the same model
 * share one download (the second waits, then finds everything complete).
 */
import { modelKey, openStore } from '../cache/index.js';
import type { FileEntry, ModelStore } from '../cache/store.js';
import { AbortError, ModelFormatError, NetworkError, QuotaExceededError } from '../errors.js';
import type { ModelLocation } from '../source.js';
import type { CacheMode, LoadProgress, StorageState } from '../types.js';
import { withModelLock } from '../cache/lock.js';
import { downloadFile } from './download.js';

/** The parts of manifest.json the shell needs (the engine reads the rest). */
export interface Manifest {
  format: string;
  version: number;
  model_type: string;
  quant: string;
  assets: FileEntry[];
  shards: FileEntry[];
}

const PARALLEL = 3;

export function parseManifest(text: string, url: string): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError(`${url} is not JSON (${(e as Error).message})`);
  }
  if (!m || m.format !== 'webvlm-packed') {
    throw new ModelFormatError(`${url} is not a webvlm packed model (format ${JSON.stringify(m?.format)}); convert a checkpoint with \`webvlm convert --model DIR --quant q4 --out OUT\``);
  }
  if (!Array.isArray(m.assets) || !Array.isArray(m.shards)) throw new ModelFormatError(`${url}: assets or shards missing`);
  for (const f of [...m.assets, ...m.shards]) {
    const safe = typeof f.file === 'string' && /^[A-Za-z0-9._-]+$/.test(f.file) && !f.file.startsWith('.');
    if (!safe || !Number.isSafeInteger(f.bytes) || f.bytes < 0 || !/^[0-9a-f]{64}$/.test(f.sha256)) {
      throw new ModelFormatError(`${url}: bad file entry ${JSON.stringify(f)}`);
    }
  }
  return m;
}

export interface FetchedModel {
  manifest: Manifest;
  /** manifest.json as fetched (the engine reads the tensor table from it). */
  manifestText: string;
  store: ModelStore;
  files: FileEntry[];
  bytes: number;
  /** The model's cache key (its Web Lock's name). */
  key: string;
  storage: StorageState;
  /** Files that had to come over the network. */
  downloaded: number;
}

/**
 * `check(manifestText)` runs once the manifest is known and before anything is downloaded or
 * deleted: a throw there (the model cannot fit this device) leaves the store as it was.
 */
export async function fetchModel(
  loc: ModelLocation,
  mode: CacheMode,
  progress: (p: LoadProgress) => void,
  signal?: AbortSignal,
  check?: (manifestText: string) => void,
  stallMs?: number,
): Promise<FetchedModel> {
  progress({ phase: 'manifest', loaded: 0, total: 0, fromCache: true });
  const key = await modelKey(loc.url);
  const manifestUrl = loc.fileUrl('manifest.json');
  let text: string | undefined;
  let offline: unknown;
  try {
    const res = await fetch(manifestUrl, { cache: 'no-store', signal });
    if (res.status === 404) throw new ModelFormatError(`no manifest.json at ${manifestUrl}: is this a webvlm packed model?`);
    if (!res.ok) throw new NetworkError(`HTTP ${res.status} for ${manifestUrl}`);
    text = await res.text();
  } catch (e) {
    if (signal?.aborted) throw new AbortError('load aborted');
    if (e instanceof ModelFormatError) throw e;
    offline = e;
  }
  return withModelLock(key, 'exclusive', async () => {
    // Opened inside the lock: another tab may have completed files while we waited.
    let store: ModelStore;
    let fallback: string | undefined;
    try {
      store = await openStore(mode, key, loc.url);
    } catch (e) {
      // OPFS can be unavailable (private browsing): fall back to memory for this load, and say
      // so (progress and info), since the next page load downloads everything again.
      fallback = `the ${mode} store could not be opened (${e instanceof Error ? e.message : String(e)}): files are kept in memory for this load only`;
      store = await openStore('none', key, loc.url);
    }
    const persisted = store.mode !== 'none' && !!(await navigator.storage?.persisted?.().catch(() => false));
    const storage: StorageState = { mode: store.mode === 'none' ? 'memory' : store.mode, persisted, ...(fallback ? { fallback } : {}) };
    if (text === undefined) {
      // Offline: a model cached earlier still loads.
      text = await store.loadManifest();
      if (text === undefined) throw new NetworkError(`cannot fetch ${manifestUrl}: ${offline instanceof Error ? offline.message : String(offline)}`);
    }
    const manifest = parseManifest(text, manifestUrl);
    check?.(text);
    const files = [...manifest.assets, ...manifest.shards];
    // Files of an older version of the model go before anything is downloaded (their space
    // counts for the new one).
    await store.prune(new Set(files.map((f) => f.file)));
    const total = files.reduce((s, f) => s + f.bytes, 0);
    const missing = files.filter((f) => !store.isComplete(f));
    const needed = missing.reduce((s, f) => s + f.bytes, 0);
    if (needed > 0 && store.mode !== 'none' && navigator.storage?.estimate) {
      const { usage = 0, quota = Infinity } = await navigator.storage.estimate();
      if (quota - usage < needed) {
        throw new QuotaExceededError(
          `the model needs ${(needed / 1e6).toFixed(1)} MB but only ${((quota - usage) / 1e6).toFixed(1)} MB of storage is free; delete cached models (WebVLM.cache.delete) or free space`,
        );
      }
    }
    await store.saveManifest(text);

    let loaded = total - needed;
    let last = 0;
    let trailing: ReturnType<typeof setTimeout> | undefined;
    const perFile = new Map<string, number>();
    // Files whose state changed since the last events went out, each with its latest phase.
    const dirty = new Map<string, { file: FileEntry; phase: LoadProgress['phase'] }>();
    const flush = () => {
      last = performance.now();
      for (const { file, phase } of dirty.values()) {
        progress({ phase, file: file.file, fileLoaded: perFile.get(file.file) ?? 0, fileTotal: file.bytes, loaded, total, fromCache: missing.length === 0, storage });
      }
      dirty.clear();
    };
    // At most one round of events per 50 ms, but the latest state of every file always goes out
    // (a stalled download must still show the bytes it got, under its own name).
    const report = (file: FileEntry, phase: LoadProgress['phase'], force: boolean) => {
      dirty.set(file.file, { file, phase });
      const now = performance.now();
      if (!force && now - last < 50) {
        trailing ??= setTimeout(() => {
          trailing = undefined;
          flush();
        }, 50 - (now - last));
        return;
      }
      flush();
    };
    for (const f of files) if (store.isComplete(f)) {
      perFile.set(f.file, f.bytes);
    }
    progress({ phase: missing.length ? 'download' : 'ready', loaded, total, fromCache: missing.length === 0, storage });

    const queue = [...missing];
    const worker = async () => {
      for (let f = queue.shift(); f; f = queue.shift()) {
        const entry = f;
        await downloadFile(
          loc.fileUrl(entry.file),
          entry,
          store,
          (n) => {
            loaded += n;
            perFile.set(entry.file, (perFile.get(entry.file) ?? 0) + n);
            report(entry, 'download', false);
          },
          () => report(entry, 'verify', true),
          signal,
          stallMs,
        );
        report(entry, 'download', true);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(PARALLEL, missing.length) }, worker));
    } finally {
      clearTimeout(trailing);
    }
    return { manifest, manifestText: text, store, files, bytes: total, downloaded: missing.length, key, storage };
  });
}
