// The Kubo RPC backend against a REAL RPC daemon (ANCHORFL_TEST_IPFS_API; CI starts the js-ipfs
// daemon with tools/ipfs-daemon/start.mjs). A test-only variable, so that the rest of the suite
// keeps the embedded store. Without it those tests are skipped with the
// reason printed; the dead-endpoint tests need no daemon and always run.
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ContentNotFoundError,
  ContentTimeoutError,
  describeContent,
  EmbeddedStore,
  IntegrityError,
  KuboStore,
  openContentStore,
  RAW_BLOCK_LIMIT,
  StoreConfigError,
  StoreUnavailableError,
  storeFromEnv,
} from "../../lib/store/index.js";

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection, found success");
}

/** A loopback port with nothing listening on it. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("store: Kubo RPC backend, dead or bad endpoint", () => {
  it("a dead endpoint gives StoreUnavailableError quickly, naming the URL", async () => {
    const url = `http://127.0.0.1:${await deadPort()}`;
    const store = await openContentStore({ kind: "kubo", url, timeoutMs: 10_000 });
    for (const op of [() => store.put(randomBytes(10)), () => store.get("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"), () => store.pin("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")]) {
      const t0 = Date.now();
      const err = await rejection(op());
      expect(err).to.be.instanceOf(StoreUnavailableError);
      expect(err.message).to.include(url).and.include("ECONNREFUSED");
      expect(Date.now() - t0).to.be.below(2_000);
    }
  });

  it("a URL that is not http(s) is refused up front", () => {
    expect(() => new KuboStore({ url: "ftp://127.0.0.1:5001" })).to.throw(StoreConfigError, /ftp:\/\/127\.0\.0\.1:5001/);
    expect(() => new KuboStore({ url: "localhost 5001" })).to.throw(StoreConfigError, /URL like http/);
  });
});

describe("store: Kubo RPC backend against a real daemon", function () {
  this.timeout(120_000);
  const api = process.env.ANCHORFL_TEST_IPFS_API;
  let store: KuboStore;

  before(function () {
    if (!api) {
      console.log("      skipped: ANCHORFL_TEST_IPFS_API is not set (see .ci/run: tools/ipfs-daemon/start.mjs starts a daemon)");
      this.skip();
    }
    store = new KuboStore({ url: api! });
  });

  it("storeFromEnv picks the Kubo backend when IPFS_API is set", async () => {
    const fromEnv = await storeFromEnv({ IPFS_API: api });
    expect(fromEnv).to.be.instanceOf(KuboStore);
    expect(fromEnv.description).to.equal(`Kubo RPC at ${new URL(api!).origin}`);
  });

  for (const size of [4_000, RAW_BLOCK_LIMIT, 20_000_000]) {
    it(`round-trips ${size} bytes with the CID the rules give, by CID and by on-chain form`, async () => {
      const bytes = randomBytes(size);
      const t0 = performance.now();
      const stored = await store.put(bytes);
      const t1 = performance.now();
      const back = await store.get({ digest: stored.digest, contentRoot: stored.contentRoot });
      const t2 = performance.now();
      console.log(`      kubo ${size} B: put ${(t1 - t0).toFixed(0)} ms, get ${(t2 - t1).toFixed(0)} ms`);
      expect(stored).to.deep.equal(await describeContent(bytes));
      expect(Buffer.from(back).equals(bytes)).to.equal(true);
      expect(Buffer.from(await store.get(stored.cid)).equals(bytes)).to.equal(true);
    });
  }

  it("gives the same CIDs as the embedded Helia backend for the same bytes (raw and UnixFS)", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "anchorfl-kubo-vs-helia-"));
    const embedded = await EmbeddedStore.open({ dataDir });
    try {
      for (const size of [0, 777, RAW_BLOCK_LIMIT, RAW_BLOCK_LIMIT + 1, 5 * RAW_BLOCK_LIMIT + 99]) {
        const bytes = randomBytes(size);
        const viaKubo = await store.put(bytes);
        const viaHelia = await embedded.put(bytes);
        expect(viaKubo, `size ${size}`).to.deep.equal(viaHelia);
      }
    } finally {
      await embedded.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("pins idempotently, unpins idempotently; has tells present from absent", async () => {
    const stored = await store.put(randomBytes(2 * RAW_BLOCK_LIMIT + 5));
    expect(await store.has(stored.cid)).to.equal(true);
    await store.pin(stored.cid);
    await store.pin({ digest: stored.digest, contentRoot: stored.contentRoot });
    expect(await store.isPinned(stored.cid)).to.equal(true);
    await store.unpin(stored.cid);
    await store.unpin(stored.cid);
    expect(await store.isPinned(stored.cid)).to.equal(false);
    const absent = await describeContent(randomBytes(50));
    expect(await store.has(absent.cid)).to.equal(false);
  });

  it("a CID nobody has times out with ContentTimeoutError naming the CID and endpoint", async () => {
    const absent = await describeContent(randomBytes(50));
    const t0 = Date.now();
    const err = await rejection(store.get(absent.cid, { timeoutMs: 1_000 }));
    expect(Date.now() - t0).to.be.below(5_000);
    // A daemon that knows it is offline may answer "not found" at once instead of waiting.
    expect(err).to.satisfy((e: Error) => e instanceof ContentTimeoutError || e instanceof ContentNotFoundError);
    expect(err.message).to.include(absent.cid).and.include(new URL(api!).origin);
  });

  it("refuses a UnixFS file whose committed digest does not match what the node returns", async () => {
    const stored = await store.put(randomBytes(RAW_BLOCK_LIMIT + 3));
    const other = await describeContent(randomBytes(10));
    const err = await rejection(store.get({ digest: other.digest, contentRoot: stored.contentRoot }));
    expect(err).to.be.instanceOf(IntegrityError);
    expect(err.message).to.include(stored.cid).and.include(new URL(api!).origin);
  });
});
