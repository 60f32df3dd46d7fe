// The embedded Helia store on a real temp folder: round trips, pins, gc, restarts,
// tampered blocks on disk, missing content, and an unusable folder.
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import {
  ContentNotFoundError,
  ContentTooLargeError,
  describeContent,
  EmbeddedStore,
  IntegrityError,
  openContentStore,
  RAW_BLOCK_LIMIT,
  StoreUnavailableError,
  type StoredContent,
} from "../../lib/store/index.js";
import { AtomicFsBlockstore } from "../../lib/store/fs-blockstore.js";

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection, found success");
}

async function blockFiles(dataDir: string): Promise<string[]> {
  const entries = await readdir(join(dataDir, "blocks"), { recursive: true });
  return entries.filter((f) => f.endsWith(".data"));
}

describe("store: embedded Helia store", function () {
  this.timeout(60_000);
  let dataDir: string;
  let store: EmbeddedStore;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "anchorfl-store-"));
    store = await EmbeddedStore.open({ dataDir });
  });
  afterEach(async () => {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("round-trips a small file, by CID and by its on-chain form, with the CIDs the rules give", async () => {
    const bytes = randomBytes(5000);
    const stored = await store.put(bytes);
    expect(stored).to.deep.equal(await describeContent(bytes));
    expect(Buffer.from(await store.get(stored.cid)).equals(bytes)).to.equal(true);
    expect(Buffer.from(await store.get({ digest: stored.digest, contentRoot: stored.contentRoot })).equals(bytes)).to.equal(true);
    expect(await store.has(stored.cid)).to.equal(true);
    expect(store.description).to.include(dataDir);
  });

  it("round-trips a 20 MB UnixFS file and checks its whole-file digest", async () => {
    const bytes = randomBytes(20_000_000);
    const t0 = performance.now();
    const stored = await store.put(bytes);
    const t1 = performance.now();
    const back = await store.get({ digest: stored.digest, contentRoot: stored.contentRoot });
    const t2 = performance.now();
    console.log(`      embedded 20 MB: put ${(t1 - t0).toFixed(0)} ms, get ${(t2 - t1).toFixed(0)} ms`);
    expect(CID.parse(stored.cid).code).to.equal(0x70);
    expect(stored.size).to.equal(20_000_000);
    expect(Buffer.from(back).equals(bytes)).to.equal(true);
    expect(await blockFiles(dataDir)).to.have.length(Math.ceil(20_000_000 / RAW_BLOCK_LIMIT) + 1);
  });

  it("pins idempotently, unpins idempotently, and reports pin state", async () => {
    const stored = await store.put(randomBytes(RAW_BLOCK_LIMIT + 5));
    expect(await store.isPinned(stored.cid)).to.equal(false);
    await store.pin(stored.cid);
    await store.pin(stored.cid); // Helia would throw AlreadyPinnedError
    await store.pin({ digest: stored.digest, contentRoot: stored.contentRoot });
    expect(await store.isPinned(stored.cid)).to.equal(true);
    expect(await store.pinnedCids()).to.deep.equal([stored.cid]);
    await store.unpin(stored.cid);
    await store.unpin(stored.cid);
    expect(await store.isPinned(stored.cid)).to.equal(false);
  });

  it("gc drops unpinned blocks (after the grace period) and keeps pinned ones", async () => {
    const kept = await store.put(randomBytes(2 * RAW_BLOCK_LIMIT + 1)); // 3 leaves + root
    const dropped = await store.put(randomBytes(RAW_BLOCK_LIMIT + 1)); // 2 leaves + root
    await store.pin(kept.cid);
    await store.pin(dropped.cid);
    await store.unpin(dropped.cid);

    expect(await store.gc()).to.deep.equal({ removedBlocks: 0, keptBlocks: 7 }); // fresh blocks are spared
    expect(await store.gc({ graceMs: 0 })).to.deep.equal({ removedBlocks: 3, keptBlocks: 4 });
    expect(await store.has(dropped.cid)).to.equal(false);
    expect(await rejection(store.get(dropped.cid))).to.be.instanceOf(ContentNotFoundError);
    expect(Buffer.from(await store.get(kept.cid)).length).to.equal(kept.size);
  });

  it("keeps blocks and pins across a restart", async () => {
    const small = await store.put(randomBytes(300));
    const large = await store.put(randomBytes(3 * RAW_BLOCK_LIMIT));
    await store.pin(small.cid);
    await store.pin(large.cid);
    await store.close();
    store = await EmbeddedStore.open({ dataDir });
    expect(await store.isPinned(small.cid)).to.equal(true);
    expect(await store.isPinned(large.cid)).to.equal(true);
    for (const s of [small, large]) expect((await store.get({ digest: s.digest, contentRoot: s.contentRoot })).length).to.equal(s.size);
  });

  async function tamper(stored: StoredContent, which: "raw" | "leaf" | "root"): Promise<void> {
    const cid = CID.parse(stored.cid);
    const blocks = new AtomicFsBlockstore(join(dataDir, "blocks"));
    let target = cid;
    if (which === "leaf") {
      const { decode } = await import("@ipld/dag-pb");
      target = decode(await readFile(blocks.pathOf(cid))).Links[1].Hash;
    }
    const file = blocks.pathOf(target);
    const bytes = await readFile(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    await writeFile(file, bytes);
  }

  for (const [what, size, which] of [
    ["a one-block file", 4096, "raw"],
    ["a leaf of a UnixFS file", 2 * RAW_BLOCK_LIMIT + 9, "leaf"],
    ["the root of a UnixFS file", 2 * RAW_BLOCK_LIMIT + 9, "root"],
  ] as const) {
    it(`refuses ${what} altered on disk with IntegrityError naming the CID; a new put repairs it`, async () => {
      const bytes = randomBytes(size);
      const stored = await store.put(bytes);
      await tamper(stored, which);
      const err = await rejection(store.get(stored.cid));
      expect(err).to.be.instanceOf(IntegrityError);
      expect(err.message).to.match(/block \S+ of \S+ in embedded Helia store at .* is damaged/).and.include(stored.cid);
      await store.put(bytes);
      expect(Buffer.from(await store.get(stored.cid)).equals(bytes)).to.equal(true);
    });
  }

  it("missing content: get and pin throw ContentNotFoundError naming the CID and folder; has is false", async () => {
    const absent = await describeContent(randomBytes(100));
    const err = await rejection(store.get(absent.cid));
    expect(err).to.be.instanceOf(ContentNotFoundError);
    expect(err.message).to.include(absent.cid).and.include(dataDir);
    expect(await store.has(absent.cid)).to.equal(false);
    const pinErr = await rejection(store.pin(absent.cid));
    expect(pinErr).to.be.instanceOf(ContentNotFoundError);
    expect(pinErr.message).to.include(absent.cid);
  });

  it("a UnixFS file with a lost leaf: has is false, get and pin name the missing block", async () => {
    const stored = await store.put(randomBytes(2 * RAW_BLOCK_LIMIT + 1));
    const blocks = new AtomicFsBlockstore(join(dataDir, "blocks"));
    const { decode } = await import("@ipld/dag-pb");
    const leaf = decode(await readFile(blocks.pathOf(CID.parse(stored.cid)))).Links[2].Hash;
    await rm(blocks.pathOf(leaf));
    expect(await store.has(stored.cid)).to.equal(false);
    const getErr = await rejection(store.get(stored.cid));
    expect(getErr).to.be.instanceOf(ContentNotFoundError);
    expect(getErr.message).to.include(`${stored.cid} (its block ${leaf})`);
    expect((await rejection(store.pin(stored.cid))).message).to.include(`block ${leaf} missing`);
  });

  it("refuses content larger than maxBytes", async () => {
    const stored = await store.put(randomBytes(RAW_BLOCK_LIMIT + 100));
    const err = await rejection(store.get(stored.cid, { maxBytes: 1000 }));
    expect(err).to.be.instanceOf(ContentTooLargeError);
    expect(err.message).to.include("at most 1000 bytes").and.include(stored.cid);
  });

  it("an unusable data folder gives StoreUnavailableError naming it", async () => {
    const file = join(dataDir, "not-a-folder");
    await writeFile(file, "x");
    const err = await rejection(openContentStore({ kind: "embedded", dataDir: join(file, "ipfs") }));
    expect(err).to.be.instanceOf(StoreUnavailableError);
    expect(err.message).to.include(join(file, "ipfs"));
  });
});
