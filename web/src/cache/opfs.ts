/**
 * The OPFS store (the default): `webvlm/<model key>/` holds the model's files, its manifest and
 * `.complete.json`, the marker that lists verified files. Downloads write in place through a
 * sync access handle, flushing as they go, so after a cut the file's size is exactly where a
 * Range request resumes. Only a dedicated worker can open sync access handles; the listing and
 * deletion helpers in `./index.ts` use the async API and work on the main thread too.
 */
import { type CompleteMarker, type FileEntry, type ModelStore, type Reader, type Writer, markerHas } from './store.js';

/** The parts of FileSystemSyncAccessHandle used here (only in the WebWorker lib). */
interface SyncHandle {
  read(buffer: Uint8Array, options?: { at?: number }): number;
  write(buffer: Uint8Array, options?: { at?: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}

type SyncCapable = FileSystemFileHandle & {
  createSyncAccessHandle(options?: { mode?: 'readwrite' | 'read-only' | 'readwrite-unsafe' }): Promise<SyncHandle>;
};

export const ROOT = 'webvlm';
export const MARKER = '.complete.json';
export const MANIFEST = 'manifest.json';
/** Where a new marker is written before it replaces the old one. */
const MARKER_NEXT = '.complete.json.next';

export function opfsAvailable(): boolean {
  return typeof navigator !== 'undefined' && !!navigator.storage && typeof navigator.storage.getDirectory === 'function';
}

export async function modelsRoot(create: boolean): Promise<FileSystemDirectoryHandle | undefined> {
  const root = await navigator.storage.getDirectory();
  try {
    return await root.getDirectoryHandle(ROOT, { create });
  } catch {
    return undefined;
  }
}

async function syncHandle(dir: FileSystemDirectoryHandle, file: string, mode: 'readwrite' | 'read-only'): Promise<SyncHandle> {
  const handle = (await dir.getFileHandle(file, { create: mode === 'readwrite' })) as SyncCapable;
  if (mode === 'read-only') {
    try {
      // Shared read access: two tabs may load the same cached model at once.
      return await handle.createSyncAccessHandle({ mode: 'read-only' });
    } catch {
      // Engines without access modes: fall through to an exclusive handle.
    }
  }
  return handle.createSyncAccessHandle();
}

async function readText(dir: FileSystemDirectoryHandle, file: string): Promise<string | undefined> {
  try {
    const f = await (await dir.getFileHandle(file)).getFile();
    return await f.text();
  } catch {
    return undefined;
  }
}

async function writeText(dir: FileSystemDirectoryHandle, file: string, text: string): Promise<void> {
  const h = await syncHandle(dir, file, 'readwrite');
  try {
    const bytes = new TextEncoder().encode(text);
    h.truncate(0);
    h.write(bytes, { at: 0 });
    h.flush();
  } finally {
    h.close();
  }
}

/**
 * Replace `file` with `text` atomically where the engine can (`FileSystemHandle.move` over an
 * existing name): a crash mid-write leaves the old marker, never a torn one. Elsewhere the
 * file is written in place (a torn marker then only costs a re-verification).
 */
async function writeAtomically(dir: FileSystemDirectoryHandle, file: string, text: string): Promise<void> {
  await writeText(dir, MARKER_NEXT, text);
  const next = (await dir.getFileHandle(MARKER_NEXT)) as FileSystemFileHandle & { move?: (d: FileSystemDirectoryHandle, name: string) => Promise<void> };
  if (typeof next.move === 'function') {
    try {
      await next.move(dir, file);
      return;
    } catch {
      // An engine whose move does not replace an existing file.
    }
  }
  await writeText(dir, file, text);
  await dir.removeEntry(MARKER_NEXT).catch(() => undefined);
}

class OpfsWriter implements Writer {
  constructor(private h: SyncHandle) {}
  size(): number {
    return this.h.getSize();
  }
  write(bytes: Uint8Array, at: number): void {
    let done = 0;
    while (done < bytes.length) {
      const n = this.h.write(bytes.subarray(done), { at: at + done });
      // Over quota, Chromium writes a prefix and returns a bogus count (a negative number as
      // unsigned) instead of throwing: check the count and the file size.
      if (!(n > 0 && n <= bytes.length - done)) break;
      done += n;
    }
    if (done < bytes.length || this.h.getSize() < at + bytes.length) {
      throw new DOMException(`only ${done} of ${bytes.length} bytes could be written`, 'QuotaExceededError');
    }
  }
  truncate(size: number): void {
    this.h.truncate(size);
  }
  flush(): void {
    this.h.flush();
  }
  readAll(): Uint8Array {
    const buf = new Uint8Array(this.h.getSize());
    this.h.read(buf, { at: 0 });
    return buf;
  }
  async close(): Promise<void> {
    this.h.close();
  }
}

export class OpfsStore implements ModelStore {
  readonly mode = 'opfs' as const;
  private markerWrites: Promise<void> = Promise.resolve();

  private constructor(
    private dir: FileSystemDirectoryHandle,
    private marker: CompleteMarker,
  ) {}

  static async open(key: string, url: string): Promise<OpfsStore> {
    const root = await modelsRoot(true);
    if (!root) throw new Error('cannot create the OPFS model directory');
    const dir = await root.getDirectoryHandle(key, { create: true });
    let marker: CompleteMarker = { url, files: {} };
    const text = await readText(dir, MARKER);
    if (text) {
      try {
        const parsed = JSON.parse(text) as CompleteMarker;
        if (parsed && typeof parsed.files === 'object') marker = { url, files: parsed.files, partial: parsed.partial ?? {} };
      } catch {
        // A torn marker: every file counts as unverified and is checked again.
      }
    }
    return new OpfsStore(dir, marker);
  }

  validator(file: string): string | undefined {
    return this.marker.partial?.[file];
  }

  async setValidator(file: string, version: string | undefined): Promise<void> {
    const partial = (this.marker.partial ??= {});
    if (version === undefined) delete partial[file];
    else partial[file] = version;
    await this.saveMarker();
  }

  isComplete(entry: FileEntry): boolean {
    return markerHas(this.marker, entry);
  }

  async openWriter(file: string): Promise<Writer> {
    // Whatever the marker said, a file being (re)written is not complete any more.
    if (this.marker.files[file]) {
      delete this.marker.files[file];
      await this.saveMarker();
    }
    return new OpfsWriter(await syncHandle(this.dir, file, 'readwrite'));
  }

  async markComplete(entry: FileEntry): Promise<void> {
    this.marker.files[entry.file] = { bytes: entry.bytes, sha256: entry.sha256 };
    if (this.marker.partial) delete this.marker.partial[entry.file];
    await this.saveMarker();
  }

  async prune(keep: Set<string>): Promise<string[]> {
    const own = new Set([MARKER, MANIFEST, MARKER_NEXT]);
    const stale: string[] = [];
    for await (const [name, entry] of this.dir.entries()) {
      if (keep.has(name) || own.has(name)) continue;
      try {
        await this.dir.removeEntry(name, { recursive: entry.kind === 'directory' });
        stale.push(name);
      } catch {
        // Open in another tab (a load reading an older version): removed on a later load.
      }
    }
    for (const name of stale) {
      delete this.marker.files[name];
      if (this.marker.partial) delete this.marker.partial[name];
    }
    if (stale.length) await this.saveMarker();
    return stale;
  }

  async remove(file: string): Promise<void> {
    if (this.marker.files[file] || this.marker.partial?.[file]) {
      delete this.marker.files[file];
      if (this.marker.partial) delete this.marker.partial[file];
      await this.saveMarker();
    }
    try {
      await this.dir.removeEntry(file);
    } catch {
      // Already gone.
    }
  }

  async saveManifest(text: string): Promise<void> {
    await writeText(this.dir, MANIFEST, text);
  }

  async loadManifest(): Promise<string | undefined> {
    return readText(this.dir, MANIFEST);
  }

  async openReader(files: string[]): Promise<Reader> {
    const handles = new Map<string, SyncHandle>();
    try {
      for (const f of files) handles.set(f, await syncHandle(this.dir, f, 'read-only'));
    } catch (e) {
      for (const h of handles.values()) h.close();
      throw e;
    }
    const readInto = (h: SyncHandle, target: Uint8Array) => {
      for (let at = 0; at < target.length; ) {
        const n = h.read(target.subarray(at), { at });
        if (n <= 0) throw new Error(`short read at byte ${at} of ${target.length}`);
        at += n;
      }
    };
    return {
      prepare: async () => undefined,
      release: () => undefined,
      read: (file) => {
        const h = handles.get(file);
        if (!h) return undefined;
        const buf = new Uint8Array(h.getSize());
        readInto(h, buf);
        return buf;
      },
      size: (file) => handles.get(file)?.getSize(),
      readInto: (file, target) => {
        const h = handles.get(file);
        if (!h || h.getSize() !== target.length) throw new Error(`${file}: ${h?.getSize() ?? 'no'} bytes stored, ${target.length} expected`);
        readInto(h, target);
      },
      close: async () => {
        for (const h of handles.values()) h.close();
        handles.clear();
      },
    };
  }

  private async saveMarker(): Promise<void> {
    // Parallel downloads finish together, and a file takes one sync handle at a time:
    // marker writes queue up, each writing the marker as it is when its turn comes.
    const write = this.markerWrites.then(() => writeAtomically(this.dir, MARKER, JSON.stringify(this.marker)));
    this.markerWrites = write.catch(() => undefined);
    await write;
  }
}
