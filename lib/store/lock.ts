// A lock shared by every process using one data folder, for the few read-modify-write
// updates a shared store has (pin metadata, garbage collection). It is a directory made
// with mkdir, which is atomic on every local file system: whoever creates it holds the lock.
// A holder that died (its pid is gone, or the lock is older than `staleMs`) is recovered
// from; breaking a stale lock is itself guarded by a second mkdir, so two waiters can't
// both break it and then delete each other's fresh lock.
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, rmdirSync, unlinkSync, writeFileSync } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { StoreLockTimeoutError } from "./errors.js";

export interface LockOptions {
  /** Give up waiting after this long (default 30 s). */
  timeoutMs?: number;
  /** A lock older than this is taken to be abandoned, even if its pid looks alive (default 10 min). */
  staleMs?: number;
}

interface Owner {
  pid: number;
  host: string;
  at: number;
  token: string;
}

const OWNER_FILE = "owner.json";
// A breaker that lives longer than this crashed between its two steps.
const BREAKER_STALE_MS = 10_000;

// The lock's own file operations (mkdir, a ~100-byte owner file, unlink, rmdir) are synchronous:
// each is microseconds of kernel work on a local folder, while its async form is a thread-pool
// round trip that, on a loaded machine, costs milliseconds (measured at load 12: 0.7 ms for the
// whole take-and-release sync, 2-8 ms async), and every pin takes the lock once.

// Calls in this process queue here first, so the file lock only arbitrates between processes.
const localQueues = new Map<string, Promise<unknown>>();

/** Runs `fn` while holding the lock at `lockPath` (a directory path that must not be used otherwise). */
export async function withFolderLock<T>(lockPath: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const previous = localQueues.get(lockPath) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(async () => {
    const token = await acquire(lockPath, options);
    try {
      return await fn();
    } finally {
      await release(lockPath, token);
    }
  });
  localQueues.set(lockPath, run);
  try {
    return await run;
  } finally {
    if (localQueues.get(lockPath) === run) localQueues.delete(lockPath);
  }
}

async function acquire(lockPath: string, options: LockOptions): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const staleMs = options.staleMs ?? 600_000;
  const deadline = Date.now() + timeoutMs;
  const token = randomUUID();
  for (let attempt = 0; ; attempt++) {
    if (await tryMkdir(lockPath)) {
      const owner: Owner = { pid: process.pid, host: hostname(), at: Date.now(), token };
      writeFileSync(join(lockPath, OWNER_FILE), JSON.stringify(owner));
      return token;
    }
    const holder = await readOwner(lockPath);
    if (await isStale(lockPath, holder, staleMs)) {
      await breakStaleLock(lockPath, holder, staleMs);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new StoreLockTimeoutError(
        `expected to take the store lock ${lockPath} within ${timeoutMs} ms, found it held by ${holder ? `pid ${holder.pid} on ${holder.host}` : "a process that has not written its owner file yet"}`,
        { hint: "another AnchorFL process is pinning or collecting garbage in this data folder; retry, or remove the lock folder if that process is gone", details: { lockPath, holder } },
      );
    }
    await sleep(Math.min(5 * 2 ** Math.min(attempt, 5), 100) + Math.random() * 10);
  }
}

async function release(lockPath: string, token: string): Promise<void> {
  // Only remove the lock if it is still ours: if it was broken as stale, it now belongs to someone else.
  const owner = await readOwner(lockPath);
  if (owner?.token !== token) return;
  // unlink + rmdir: two system calls, where rm's recursive walk costs ~3 ms per pin under load.
  // Anything else found in the folder (it is ours alone) falls back to the full removal.
  try {
    unlinkSync(join(lockPath, OWNER_FILE));
    rmdirSync(lockPath);
  } catch {
    await rm(lockPath, { recursive: true, force: true });
  }
}

async function breakStaleLock(lockPath: string, judged: Owner | undefined, staleMs: number): Promise<void> {
  const breaker = `${lockPath}.break`;
  if (!(await tryMkdir(breaker))) {
    const age = await ageMs(breaker);
    if (age !== undefined && age > BREAKER_STALE_MS) await rm(breaker, { recursive: true, force: true });
    await sleep(5 + Math.random() * 10);
    return;
  }
  try {
    // Re-check under the breaker: the lock may have changed hands since we judged it.
    const now = await readOwner(lockPath);
    if (now?.token === judged?.token && (await isStale(lockPath, now, staleMs))) {
      await rm(lockPath, { recursive: true, force: true });
    }
  } finally {
    await rm(breaker, { recursive: true, force: true });
  }
}

async function isStale(lockPath: string, owner: Owner | undefined, staleMs: number): Promise<boolean> {
  const age = owner ? Date.now() - owner.at : await ageMs(lockPath);
  if (age === undefined) return false; // the lock vanished: not stale, just retry
  if (age > staleMs) return true;
  return owner !== undefined && owner.host === hostname() && !isAlive(owner.pid);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function tryMkdir(path: string): Promise<boolean> {
  try {
    mkdirSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

async function readOwner(lockPath: string): Promise<Owner | undefined> {
  try {
    const owner = JSON.parse(readFileSync(join(lockPath, OWNER_FILE), "utf8")) as Owner;
    return typeof owner.pid === "number" && typeof owner.token === "string" ? owner : undefined;
  } catch {
    return undefined; // missing (being created or released) or half-written: treated as unknown
  }
}

async function ageMs(path: string): Promise<number | undefined> {
  try {
    return Date.now() - (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
