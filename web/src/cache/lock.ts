/**
 * Web Locks on a cached model, one name per model key: downloading takes it exclusively (two
 * tabs share one download: the second waits, then finds the files complete), reading the files
 * into the engine takes it shared, and deleting asks for it exclusively without waiting, so a
 * model being read is reported in use instead of being deleted under the reader.
 */

type Locks = LockManager | undefined;

function locks(): Locks {
  return typeof navigator !== 'undefined' ? (navigator as Navigator & { locks?: LockManager }).locks : undefined;
}

export function lockName(key: string): string {
  return `webvlm:${key}`;
}

/** Run `fn` holding the model's lock in `mode` (without Web Locks: just run it). */
export async function withModelLock<T>(key: string, mode: 'exclusive' | 'shared', fn: () => Promise<T>): Promise<T> {
  const l = locks();
  if (!l) return fn();
  return l.request(lockName(key), { mode }, fn) as Promise<T>;
}

/** Run `fn` holding the model's lock exclusively if nobody holds it; `undefined` otherwise. */
export async function ifModelUnlocked<T>(key: string, fn: () => Promise<T>): Promise<{ value: T } | undefined> {
  const l = locks();
  if (!l) return { value: await fn() };
  const held = (await l.request(lockName(key), { mode: 'exclusive', ifAvailable: true }, async (lock) => (lock ? { value: await fn() } : undefined))) as unknown;
  return held as { value: T } | undefined;
}
