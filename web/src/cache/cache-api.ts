/**
 * The fallback store for engines without OPFS: each verified file is one Response in the
 * `webvlm-v1` cache. The Cache API cannot append, so downloads are held in memory until
 * verified and a cut download starts the file over; loading brings one file at a time into
 * memory (a body cannot be read synchronously). OPFS has neither limitation.
 */
import { type CompleteMarker, type FileEntry, MemoryFile, type ModelStore, type Reader, type Writer, Versions, bytesReader, markerHas } from './store.js';

export const CACHE_NAME = 'webvlm-v1';
const ORIGIN = 'https://webvlm.cache/';

export function cacheApiAvailable(): boolean {
  return typeof caches !== 'undefined';
}

export function cacheKeyUrl(key: string, file: string): string {
  return `${ORIGIN}${key}/${encodeURIComponent(file)}`;
}

export class CacheApiStore implements ModelStore {
  readonly mode = 'cache-api' as const;
  private pending = new Map<string, MemoryFile>();
  // Partial files live in memory for one load only, and so do their versions.
  private versions = new Versions();

  private constructor(
    private cache: Cache,
    private key: string,
    private marker: CompleteMarker,
  ) {}

  static async open(key: string, url: string): Promise<CacheApiStore> {
    const cache = await caches.open(CACHE_NAME);
    let marker: CompleteMarker = { url, files: {} };
    const res = await cache.match(cacheKeyUrl(key, '.complete.json'));
    if (res) {
      try {
        marker = { url, files: (JSON.parse(await res.text()) as CompleteMarker).files ?? {} };
      } catch {
        // Unreadable marker: nothing counts as verified.
      }
    }
    return new CacheApiStore(cache, key, marker);
  }

  async prune(keep: Set<string>): Promise<string[]> {
    const prefix = cacheKeyUrl(this.key, '');
    const own = new Set(['.complete.json', 'manifest.json']);
    const stale: string[] = [];
    for (const req of await this.cache.keys()) {
      if (!req.url.startsWith(prefix)) continue;
      const file = decodeURIComponent(req.url.slice(prefix.length));
      if (keep.has(file) || own.has(file)) continue;
      await this.cache.delete(req);
      delete this.marker.files[file];
      stale.push(file);
    }
    if (stale.length) await this.cache.put(cacheKeyUrl(this.key, '.complete.json'), new Response(JSON.stringify(this.marker)));
    return stale;
  }

  validator(file: string): string | undefined {
    return this.versions.get(file);
  }
  setValidator(file: string, version: string | undefined): Promise<void> {
    return this.versions.set(file, version);
  }

  isComplete(entry: FileEntry): boolean {
    return markerHas(this.marker, entry);
  }

  async openWriter(file: string): Promise<Writer> {
    const f = new MemoryFile();
    this.pending.set(file, f);
    return f;
  }

  async markComplete(entry: FileEntry): Promise<void> {
    const f = this.pending.get(entry.file);
    if (f) {
      const bytes = f.readAll().slice();
      // The size goes in a header too, so listings never read the body.
      await this.cache.put(cacheKeyUrl(this.key, entry.file), new Response(bytes, { headers: { 'Content-Length': String(bytes.length) } }));
      this.pending.delete(entry.file);
    }
    this.marker.files[entry.file] = { bytes: entry.bytes, sha256: entry.sha256 };
    await this.cache.put(cacheKeyUrl(this.key, '.complete.json'), new Response(JSON.stringify(this.marker)));
  }

  async remove(file: string): Promise<void> {
    this.pending.delete(file);
    delete this.marker.files[file];
    await this.cache.delete(cacheKeyUrl(this.key, file));
    await this.cache.put(cacheKeyUrl(this.key, '.complete.json'), new Response(JSON.stringify(this.marker)));
  }

  async saveManifest(text: string): Promise<void> {
    await this.cache.put(cacheKeyUrl(this.key, 'manifest.json'), new Response(text));
  }

  async loadManifest(): Promise<string | undefined> {
    const res = await this.cache.match(cacheKeyUrl(this.key, 'manifest.json'));
    return res ? res.text() : undefined;
  }

  async openReader(files: string[]): Promise<Reader> {
    // A Response body can only be read asynchronously: each file is brought into memory when
    // the loader is about to read it and let go when it is done, so a load holds one shard
    // (and the small files) at a time, never the whole model.
    const known = new Set(files);
    const held = new Map<string, Uint8Array>();
    return {
      ...bytesReader((file) => held.get(file), () => held.clear()),
      prepare: async (file) => {
        if (held.has(file) || !known.has(file)) return;
        const res = await this.cache.match(cacheKeyUrl(this.key, file));
        if (res) held.set(file, new Uint8Array(await res.arrayBuffer()));
      },
      release: (file) => {
        held.delete(file);
      },
    };
  }
}
