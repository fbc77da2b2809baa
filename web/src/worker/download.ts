/**
 * One file from the network into a store, resuming with HTTP Range requests after a cut and
 * verifying the bytes against the manifest's sha256 before the file is marked complete.
 */
import { AbortError, IntegrityError, ModelFormatError, NetworkError, QuotaExceededError } from '../errors.js';
import type { FileEntry, ModelStore, Writer } from '../cache/store.js';

const RETRIES = 5;
/** How long a download may receive nothing before its connection is dropped and retried. */
export const STALL_TIMEOUT_MS = 30_000;

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new AbortError('download aborted'));
    }, { once: true });
  });
}

function isQuota(e: unknown): boolean {
  return !!e && typeof e === 'object' && (e as { name?: string }).name === 'QuotaExceededError';
}

/**
 * What identifies the version of a file the server sent: a strong ETag, else Last-Modified
 * (a weak ETag cannot be used with If-Range).
 */
function validatorOf(res: Response): string | undefined {
  const etag = res.headers.get('ETag');
  if (etag && !etag.startsWith('W/')) return etag;
  return res.headers.get('Last-Modified') ?? undefined;
}

/**
 * Bring `writer` to `entry.bytes` bytes, starting after what it already holds. A resumed
 * request carries `If-Range` with the version the held bytes came from, so a file replaced on
 * the server meanwhile comes whole (200) instead of as a tail of the new version.
 */
async function fetchInto(url: string, entry: FileEntry, writer: Writer, store: ModelStore, onBytes: (n: number) => void, signal: AbortSignal | undefined, stallMs: number): Promise<void> {
  let offset = writer.size();
  if (offset > entry.bytes) {
    writer.truncate(0);
    offset = 0;
  }
  let failures = 0;
  while (offset < entry.bytes) {
    if (signal?.aborted) throw new AbortError('download aborted');
    // A connection that goes silent (no error, no bytes) is dropped after `stallMs` and the
    // file requested again from where it stopped, like one that was cut.
    const attempt = new AbortController();
    const onAbort = () => attempt.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let stalled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        stalled = true;
        attempt.abort();
      }, stallMs);
    };
    try {
      arm();
      const headers: Record<string, string> = {};
      if (offset > 0) {
        headers.Range = `bytes=${offset}-`;
        const held = store.validator(entry.file);
        if (held) headers['If-Range'] = held;
      }
      const res = await fetch(url, { headers, signal: attempt.signal, cache: 'no-store' });
      if (res.status === 404) throw new ModelFormatError(`${entry.file} is missing on the server (${url})`);
      if (!res.ok) throw new NetworkError(`HTTP ${res.status} for ${url}`);
      const version = validatorOf(res);
      if (version !== store.validator(entry.file)) await store.setValidator(entry.file, version);
      if (offset > 0 && res.status === 200) {
        // The server ignored the Range, or the file changed since the held bytes came (If-Range):
        // start the file over.
        onBytes(-offset);
        writer.truncate(0);
        offset = 0;
      } else if (res.status === 206) {
        const start = Number(/bytes (\d+)-/.exec(res.headers.get('Content-Range') ?? '')?.[1] ?? NaN);
        if (start !== offset) throw new NetworkError(`${url}: asked for bytes from ${offset}, got a range from ${start}`);
      }
      if (!res.body) throw new NetworkError(`${url}: empty response`);
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        if (offset + value.length > entry.bytes) throw new IntegrityError(`${entry.file}: the server sent more than the manifest's ${entry.bytes} bytes`);
        writer.write(value, offset);
        offset += value.length;
        onBytes(value.length);
        failures = 0;
      }
      writer.flush();
      if (offset < entry.bytes) throw new NetworkError(`${url}: the connection closed at byte ${offset} of ${entry.bytes}`);
    } catch (caught) {
      writer.flush();
      if (signal?.aborted) throw new AbortError('download aborted');
      const e = stalled ? new NetworkError(`${url}: nothing received for ${stallMs / 1000} s`) : caught;
      if (isQuota(e)) {
        throw new QuotaExceededError(`storage is full after ${(offset / 1e6).toFixed(1)} of ${(entry.bytes / 1e6).toFixed(1)} MB of ${entry.file}: free space or delete cached models (WebVLM.cache.delete); the download resumes from here`);
      }
      if (e instanceof ModelFormatError || e instanceof IntegrityError) throw e;
      if (++failures > RETRIES) throw new NetworkError(`${entry.file}: ${e instanceof Error ? e.message : String(e)} (gave up after ${RETRIES} retries)`);
      await sleep(Math.min(4000, 250 * 2 ** (failures - 1)), signal);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * Download `entry` (resuming a partial file), verify it, and mark it complete. A file that
 * fails verification is fetched once more from scratch; if it fails again nothing of it stays
 * in the store and the error is an {@link IntegrityError}.
 */
export async function downloadFile(
  url: string,
  entry: FileEntry,
  store: ModelStore,
  onBytes: (n: number) => void,
  onVerify: () => void,
  signal?: AbortSignal,
  stallMs = STALL_TIMEOUT_MS,
): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    let writer: Writer;
    try {
      writer = await store.openWriter(entry.file);
    } catch (e) {
      if (isQuota(e)) throw new QuotaExceededError(`no room to store ${entry.file}`);
      throw e;
    }
    let ok = false;
    try {
      if (attempt > 0) {
        onBytes(-writer.size());
        writer.truncate(0);
      }
      await fetchInto(url, entry, writer, store, onBytes, signal, stallMs);
      onVerify();
      ok = (await sha256Hex(writer.readAll())) === entry.sha256;
    } finally {
      await writer.close();
    }
    if (ok) {
      try {
        await store.markComplete(entry);
      } catch (e) {
        if (isQuota(e)) throw new QuotaExceededError(`storage is full: cannot store ${entry.file} (${(entry.bytes / 1e6).toFixed(1)} MB); delete cached models (WebVLM.cache.delete) or free space`);
        throw e;
      }
      return;
    }
  }
  onBytes(-entry.bytes);
  await store.remove(entry.file);
  throw new IntegrityError(`${entry.file} does not match the manifest's sha256 (downloaded twice); the copy on the server is corrupt`);
}
