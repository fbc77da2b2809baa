/**
 * Where a model's files live between sessions. A file is usable only once it is recorded in
 * the store's "complete" marker together with its manifest sha256, so a half-written or
 * unverified file is never read as weights.
 */

/** `{file, bytes, sha256}` as in manifest.json. */
export interface FileEntry {
  file: string;
  bytes: number;
  sha256: string;
}

/** A file being downloaded. Writes are positional so a download can resume where it was cut. */
export interface Writer {
  /** Bytes already present (what a resumed download starts after). */
  size(): number;
  write(bytes: Uint8Array, at: number): void;
  truncate(size: number): void;
  flush(): void;
  /** The whole file (one shard: what verification hashes). */
  readAll(): Uint8Array;
  close(): Promise<void>;
}

/** Synchronous reads for the engine's loader (it pulls one file at a time). */
export interface Reader {
  /** Make `file` readable before the synchronous calls: a store that cannot read
   * synchronously (the Cache API) brings that one file into memory; a no-op elsewhere. */
  prepare(file: string): Promise<void>;
  /** The loader is done with `file`: a store that brought it into memory lets it go. */
  release(file: string): void;
  /** A whole (small) file, or undefined when the store lacks it. */
  read(file: string): Uint8Array | undefined;
  /** A file's size as stored, or undefined when the store lacks it. */
  size(file: string): number | undefined;
  /** Copy a whole file into `target`, which is exactly `size(file)` bytes (a shard goes from
   * storage straight into the engine's memory this way, with no copy on the JS heap). */
  readInto(file: string, target: Uint8Array): void;
  close(): Promise<void>;
}

/** Per-file versions (ETag / Last-Modified) of partial files held in memory, for stores whose
 * partial files do not outlive a load. */
export class Versions {
  private map = new Map<string, string>();
  get(file: string): string | undefined {
    return this.map.get(file);
  }
  async set(file: string, version: string | undefined): Promise<void> {
    if (version === undefined) this.map.delete(file);
    else this.map.set(file, version);
  }
}

/** A {@link Reader} over bytes already in memory. */
export function bytesReader(get: (file: string) => Uint8Array | undefined, close: () => void): Reader {
  return {
    prepare: async () => undefined,
    release: () => undefined,
    read: get,
    size: (file) => get(file)?.length,
    readInto: (file, target) => {
      const bytes = get(file);
      if (!bytes || bytes.length !== target.length) throw new Error(`${file}: ${bytes?.length ?? 'no'} bytes stored, ${target.length} expected`);
      target.set(bytes);
    },
    close: async () => close(),
  };
}

export interface ModelStore {
  readonly mode: 'opfs' | 'cache-api' | 'none';
  /** Whether `entry` is recorded complete with the same size and sha256. */
  isComplete(entry: FileEntry): boolean;
  openWriter(file: string): Promise<Writer>;
  markComplete(entry: FileEntry): Promise<void>;
  remove(file: string): Promise<void>;
  /** Delete every file but `keep` (those of the current manifest) and the store's own
   * bookkeeping; returns what was deleted. A file another load is reading stays for later. */
  prune(keep: Set<string>): Promise<string[]>;
  /** The version (ETag or Last-Modified) the partial bytes of `file` came from, if known. */
  validator(file: string): string | undefined;
  setValidator(file: string, version: string | undefined): Promise<void>;
  saveManifest(text: string): Promise<void>;
  loadManifest(): Promise<string | undefined>;
  /** Open every file for synchronous reading (`files` are complete). */
  openReader(files: string[]): Promise<Reader>;
}

/** The marker's contents. */
export interface CompleteMarker {
  url: string;
  files: Record<string, { bytes: number; sha256: string }>;
  /** Per partial file: the version its bytes came from (for If-Range when resuming). */
  partial?: Record<string, string>;
}

export function markerHas(marker: CompleteMarker, entry: FileEntry): boolean {
  const m = marker.files[entry.file];
  return !!m && m.bytes === entry.bytes && m.sha256 === entry.sha256;
}

/** A growable byte buffer for stores that keep files in memory. */
export class MemoryFile implements Writer {
  private buf = new Uint8Array(0);
  private len = 0;

  size(): number {
    return this.len;
  }
  write(bytes: Uint8Array, at: number): void {
    const end = at + bytes.length;
    if (end > this.buf.length) {
      const grown = new Uint8Array(Math.max(end, this.buf.length * 2));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    this.buf.set(bytes, at);
    this.len = Math.max(this.len, end);
  }
  truncate(size: number): void {
    this.len = Math.min(this.len, size);
  }
  flush(): void {}
  readAll(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
  async close(): Promise<void> {}
}

/** No persistence: files live in memory for this load only. */
export class MemoryStore implements ModelStore {
  readonly mode = 'none' as const;
  private files = new Map<string, MemoryFile>();
  private done = new Map<string, string>();
  private versions = new Versions();
  private manifest?: string;

  async prune(keep: Set<string>): Promise<string[]> {
    const stale = [...this.files.keys()].filter((f) => !keep.has(f));
    for (const f of stale) await this.remove(f);
    return stale;
  }
  validator(file: string): string | undefined {
    return this.versions.get(file);
  }
  setValidator(file: string, version: string | undefined): Promise<void> {
    return this.versions.set(file, version);
  }

  isComplete(entry: FileEntry): boolean {
    return this.done.get(entry.file) === entry.sha256;
  }
  async openWriter(file: string): Promise<Writer> {
    let f = this.files.get(file);
    if (!f) {
      f = new MemoryFile();
      this.files.set(file, f);
    }
    return f;
  }
  async markComplete(entry: FileEntry): Promise<void> {
    this.done.set(entry.file, entry.sha256);
  }
  async remove(file: string): Promise<void> {
    this.files.delete(file);
    this.done.delete(file);
  }
  async saveManifest(text: string): Promise<void> {
    this.manifest = text;
  }
  async loadManifest(): Promise<string | undefined> {
    return this.manifest;
  }
  async openReader(): Promise<Reader> {
    // Closed once the engine has copied everything to the GPU: the bytes go.
    return bytesReader((file) => this.files.get(file)?.readAll(), () => this.files.clear());
  }
}
