// The default content store: an embedded Helia node with blocks and pins on disk in one
// data folder, no daemon and no network.
//
// Several local processes (participants, aggregators) share the SAME folder rather than
// each running its own node and exchanging blocks over bitswap. Why: a participant's update
// must stay retrievable after its process exits (the aggregator reads it later, `verify`
// reads it days later); with one node per process it would vanish with the process unless
// someone else had already fetched it. Sharing is safe because
//   - blocks are content-addressed files written atomically (AtomicFsBlockstore): a reader
//     sees no file or a whole one, and identical concurrent writes are harmless;
//   - the only read-modify-write state, pin metadata, and garbage collection run under a
//     cross-process folder lock (lock.ts) with stale-lock recovery;
//   - gc spares unpinned blocks younger than a grace period, so a block another process has
//     just written and is about to pin is not collected between its put and its pin.
// Every block read is hashed against its CID and every file against its reference.
import { createHash } from "node:crypto";
import { mkdir, opendir, readFile, stat, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import * as dagPb from "@ipld/dag-pb";
import { unixfs } from "@helia/unixfs";
import { FsDatastore } from "datastore-fs";
import { createHeliaLight, type Helia } from "helia";
import type { BlockView } from "multiformats";
import * as raw from "multiformats/codecs/raw";
import type { CID } from "multiformats/cid";
import { importWithFixedSettings, resolveRef, storedContentOf, verifyContent, type ContentRef, type StoredContent } from "./cid.js";
import { ContentNotFoundError, ContentTimeoutError, ContentTooLargeError, IntegrityError, StoreError, StoreUnavailableError } from "./errors.js";
import { AtomicFsBlockstore, BLOCK_EXTENSION, TEMP_EXTENSION } from "./fs-blockstore.js";
import { withFolderLock, type LockOptions } from "./lock.js";
import { DEFAULT_MAX_BYTES, type ContentStore, type GetOptions } from "./types.js";

const DAG_PB_CODEC = 0x70;
const SHA2_256 = 0x12;
const DEFAULT_GET_TIMEOUT_MS = 30_000;
// A temp file this old belongs to a write that crashed; younger ones may be in flight.
const TEMP_FILE_GRACE_MS = 3_600_000;

export interface EmbeddedStoreOptions {
  dataDir: string;
  lock?: LockOptions;
}

export interface GcOptions {
  /** Unpinned blocks modified more recently than this survive (default 1 hour; see module comment). */
  graceMs?: number;
}

export interface GcResult {
  removedBlocks: number;
  keptBlocks: number;
}

export class EmbeddedStore implements ContentStore {
  readonly description: string;

  private constructor(
    readonly dataDir: string,
    private readonly blockstore: AtomicFsBlockstore,
    private readonly datastore: FsDatastore,
    private readonly helia: Helia,
    private readonly lockOptions: LockOptions,
  ) {
    this.description = `embedded Helia store at ${dataDir}`;
  }

  static async open(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
    const dataDir = resolve(options.dataDir);
    const lockOptions = options.lock ?? {};
    try {
      await mkdir(join(dataDir, "locks"), { recursive: true });
      const blockstore = new AtomicFsBlockstore(join(dataDir, "blocks"));
      const datastore = new FsDatastore(join(dataDir, "datastore"));
      await blockstore.open();
      await datastore.open();
      const helia = createHeliaLight({ blockstore, datastore });
      // Start writes node metadata to the datastore: do it under the lock like every other datastore write.
      await withFolderLock(join(dataDir, "locks", "pins"), () => helia.start(), lockOptions);
      return new EmbeddedStore(dataDir, blockstore, datastore, helia, lockOptions);
    } catch (cause) {
      if (cause instanceof StoreError) throw cause;
      throw new StoreUnavailableError(`expected a writable data folder at ${dataDir}, found: ${(cause as Error).message}`, {
        hint: "set ANCHORFL_IPFS_DIR to a folder this user can write, or IPFS_API to use a Kubo node",
        details: { dataDir },
        cause,
      });
    }
  }

  async put(bytes: Uint8Array): Promise<StoredContent> {
    const cid = await importWithFixedSettings(bytes, this.blockstore);
    return storedContentOf(cid, bytes);
  }

  async get(ref: ContentRef, options: GetOptions = {}): Promise<Uint8Array> {
    const resolved = resolveRef(ref);
    const timeoutMs = options.timeoutMs ?? DEFAULT_GET_TIMEOUT_MS;
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    const signal = AbortSignal.timeout(timeoutMs);
    const chunks: Uint8Array[] = [];
    let size = 0;
    const tooLarge = () =>
      new ContentTooLargeError(`expected at most ${maxBytes} bytes of ${resolved.cid}, found more in ${this.description}`, {
        details: { cid: resolved.cid.toString(), maxBytes },
      });
    try {
      if (resolved.cid.code === raw.code) {
        // A raw CID is the file itself, one block: read and hash it directly. The UnixFS
        // exporter yields the same bytes but doubles the time of a 400 KB get (10 ms vs 4.5 ms).
        const block = await this.readBlock(resolved.cid, resolved.cid, signal);
        if (block.length > maxBytes) throw tooLarge();
        chunks.push(block);
      } else {
        for await (const chunk of unixfs({ blockstore: this.verifyingBlockstore(resolved.cid) }).cat(resolved.cid, { signal })) {
          size += chunk.length;
          if (size > maxBytes) throw tooLarge();
          chunks.push(chunk);
        }
      }
    } catch (err) {
      throw this.translate(err, resolved.cid, timeoutMs);
    }
    const bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    await verifyContent(bytes, resolved, this.description);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  async has(ref: ContentRef): Promise<boolean> {
    const { cid } = resolveRef(ref);
    try {
      return (await this.missingBlock(cid, cid)) === undefined;
    } catch (err) {
      if (err instanceof ContentNotFoundError) return false; // removed while we looked
      throw err;
    }
  }

  async pin(ref: ContentRef): Promise<void> {
    const { cid } = resolveRef(ref);
    await this.locked(async () => {
      if (await this.pinnedUnlocked(cid)) return;
      const missing = await this.missingBlock(cid, cid);
      if (missing !== undefined) {
        throw new ContentNotFoundError(`expected ${cid} to be complete in ${this.description} before pinning, found block ${missing} missing`, {
          hint: "put the file into this store first",
          details: { cid: cid.toString(), missing: missing.toString(), where: this.dataDir },
        });
      }
      try {
        for await (const _ of this.helia.pins.add(cid, cid.code === raw.code ? { walker: rawBlockWalker } : {})) {
          // draining the generator performs the pin
        }
      } catch (err) {
        if ((err as Error).name !== "AlreadyPinnedError") throw err;
      }
    });
  }

  async unpin(ref: ContentRef): Promise<void> {
    const { cid } = resolveRef(ref);
    await this.locked(async () => {
      if (!(await this.pinnedUnlocked(cid))) return;
      for await (const _ of this.helia.pins.rm(cid)) {
        // draining the generator performs the unpin
      }
    });
  }

  async isPinned(ref: ContentRef): Promise<boolean> {
    return this.pinnedUnlocked(resolveRef(ref).cid);
  }

  /** Every pinned root CID. */
  async pinnedCids(): Promise<string[]> {
    const cids: string[] = [];
    for await (const pin of this.helia.pins.ls()) cids.push(pin.cid.toString());
    return cids;
  }

  /**
   * Deletes blocks no pin reaches. Liveness is recomputed by walking every pinned DAG
   * rather than trusted from Helia's per-block pin counts, which helia 7.1 can get wrong
   * when two pins share a block (its `pins.rm` filter keeps the wrong entries).
   */
  async gc(options: GcOptions = {}): Promise<GcResult> {
    const graceMs = options.graceMs ?? 3_600_000;
    return this.locked(async () => {
      const live = new Set<string>();
      for await (const pin of this.helia.pins.ls()) await this.collectBlockPaths(pin.cid, pin.cid, live);
      let removedBlocks = 0;
      let keptBlocks = 0;
      const now = Date.now();
      for await (const file of walkFiles(this.blockstore.path)) {
        const isBlock = file.endsWith(BLOCK_EXTENSION);
        if (!isBlock && !file.endsWith(TEMP_EXTENSION)) continue;
        if (isBlock && live.has(file)) {
          keptBlocks++;
          continue;
        }
        const age = now - (await stat(file).catch(() => ({ mtimeMs: now }))).mtimeMs;
        if (age < (isBlock ? graceMs : Math.max(graceMs, TEMP_FILE_GRACE_MS))) {
          if (isBlock) keptBlocks++;
          continue;
        }
        await unlink(file).catch(() => undefined); // another gc may have removed it
        if (isBlock) removedBlocks++;
      }
      return { removedBlocks, keptBlocks };
    });
  }

  async close(): Promise<void> {
    await this.helia.stop();
    await this.datastore.close();
    await this.blockstore.close();
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return withFolderLock(join(this.dataDir, "locks", "pins"), fn, this.lockOptions);
  }

  private async pinnedUnlocked(cid: CID): Promise<boolean> {
    try {
      await this.helia.pins.get(cid);
      return true;
    } catch (err) {
      if ((err as Error).name === "NotFoundError") return false;
      throw err;
    }
  }

  /** The first block of the DAG under `cid` (part of file `root`) that is not on disk, or undefined if all are. */
  private async missingBlock(cid: CID, root: CID): Promise<CID | undefined> {
    if (!(await this.blockstore.has(cid))) return cid;
    if (cid.code !== DAG_PB_CODEC) return undefined;
    for (const link of dagPb.decode(await this.readBlock(cid, root)).Links) {
      const missing = await this.missingBlock(link.Hash, root);
      if (missing !== undefined) return missing;
    }
    return undefined;
  }

  // A damaged block of a pinned DAG makes gc throw: liveness it cannot read, it does not guess.
  private async collectBlockPaths(cid: CID, root: CID, into: Set<string>): Promise<void> {
    if (!(await this.blockstore.has(cid))) return; // a pinned DAG with a lost block: keep what is left
    into.add(this.blockstore.pathOf(cid));
    if (cid.code !== DAG_PB_CODEC) return;
    for (const link of dagPb.decode(await this.readBlock(cid, root)).Links) await this.collectBlockPaths(link.Hash, root, into);
  }

  /** Reads one block and refuses it unless it hashes to its CID (sha2-256, the only hash AnchorFL uses). */
  private async readBlock(cid: CID, root: CID, signal?: AbortSignal): Promise<Uint8Array> {
    const file = this.blockstore.pathOf(cid);
    const which = cid.equals(root) ? `${root}` : `${root} (its block ${cid})`;
    let bytes: Buffer;
    try {
      bytes = await readFile(file, { signal });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      throw new ContentNotFoundError(`expected ${which} in ${this.description}, found no file ${file}`, {
        hint: "the file was never put into this folder, or was unpinned and garbage-collected",
        details: { cid: root.toString(), block: cid.toString(), file },
        cause: err,
      });
    }
    const hash = createHash("sha256").update(bytes).digest();
    if (cid.multihash.code !== SHA2_256 || !hash.equals(cid.multihash.digest)) {
      throw new IntegrityError(`block ${cid} of ${root} in ${this.description} is damaged: its bytes do not hash to its CID`, {
        hint: "the file on disk was altered; put the content again to rewrite it",
        details: { cid: root.toString(), block: cid.toString(), file },
      });
    }
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  private verifyingBlockstore(root: CID) {
    return {
      get: async function* (this: EmbeddedStore, cid: CID, options?: { signal?: AbortSignal }) {
        yield await this.readBlock(cid, root, options?.signal);
      }.bind(this),
      put: () => {
        throw new StoreError(`reading ${root} from ${this.description} must not write blocks`);
      },
      has: (cid: CID) => this.blockstore.has(cid),
    };
  }

  private translate(err: unknown, cid: CID, timeoutMs: number): Error {
    if (err instanceof StoreError) return err;
    const name = (err as Error).name;
    if (name === "TimeoutError" || name === "AbortError") {
      return new ContentTimeoutError(`expected ${cid} from ${this.description} within ${timeoutMs} ms, found it still reading`, {
        details: { cid: cid.toString(), where: this.dataDir, timeoutMs },
        cause: err,
      });
    }
    return new StoreError(`reading ${cid} from ${this.description} failed: ${(err as Error).message}`, {
      details: { cid: cid.toString(), where: this.dataDir },
      cause: err,
    });
  }
}

/**
 * The walk of a raw block's "DAG" for pins.add: the block itself, unread. Helia's default
 * walker reads all of it through a job queue (measured: pins.add of a 400 KB update 12 ms with
 * it, 2 ms without, at load 12) only to learn that a raw block has no links. pin() has just
 * checked that the block is on disk, every get hashes it against its CID, and pins.add uses
 * only the node's CID, so the pin records are the same.
 */
const rawBlockWalker: NonNullable<NonNullable<Parameters<Helia["pins"]["add"]>[1]>["walker"]> = () => ({
  async *walk<T>(cid: CID) {
    yield { block: { cid } as BlockView<T>, depth: 0, path: [cid] };
  },
});

async function* walkFiles(dir: string): AsyncGenerator<string> {
  let handle;
  try {
    handle = await opendir(dir);
  } catch {
    return; // a shard folder removed meanwhile
  }
  for await (const entry of handle) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walkFiles(path);
    else if (entry.isFile()) yield path;
  }
}
