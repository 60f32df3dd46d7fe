// Several real processes share one embedded store folder at the same time (the design
// choice in lib/store/embedded.ts): afterwards every block and pin must be intact, even
// with a garbage collector running without a grace period alongside (the folder lock is
// what keeps it from deleting blocks of a pin being made).
import { expect } from "chai";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { EmbeddedStore, type StoredContent } from "../../lib/store/index.js";

const WORKER = fileURLToPath(new URL("./fixtures/store-worker.ts", import.meta.url));

interface WorkerResult extends StoredContent {
  kind: "private" | "shared";
  keepPinned: boolean;
}

function runWorker<T>(dataDir: string, label: string, arg: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", WORKER, dataDir, label, arg], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (err += c));
    child.on("close", (code) => {
      if (code === 0) resolve(JSON.parse(out.trim().split("\n").pop()!));
      else reject(new Error(`worker ${label} exited with ${code}: ${err.slice(-2000)}`));
    });
  });
}

describe("store: several processes share one embedded folder", function () {
  this.timeout(120_000);
  let dataDir: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "anchorfl-shared-"));
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("two processes put, pin, read and unpin while a third collects garbage non-stop; every pin and pinned block survives", async () => {
    const count = 4;
    const stopFile = join(dataDir, "..", `${basename(dataDir)}.stop`);
    const collector = runWorker<{ runs: number; removed: number }>(dataDir, "gc", stopFile);
    let results: WorkerResult[];
    try {
      results = (await Promise.all([runWorker<WorkerResult[]>(dataDir, "a", String(count)), runWorker<WorkerResult[]>(dataDir, "b", String(count))])).flat();
    } finally {
      await writeFile(stopFile, "");
    }
    const { runs } = await collector;
    await rm(stopFile);
    expect(runs).to.be.greaterThan(0);
    expect(results).to.have.length(2 * 2 * count);

    const store = await EmbeddedStore.open({ dataDir });
    try {
      for (const r of results) {
        expect(await store.isPinned(r.cid), r.cid).to.equal(r.keepPinned);
        if (r.keepPinned) expect((await store.get({ digest: r.digest, contentRoot: r.contentRoot })).length, r.cid).to.equal(r.size);
      }
      const shared = results.filter((r) => r.kind === "shared");
      expect(new Set(shared.map((r) => r.cid)).size).to.equal(count); // the same bytes got the same CID in every process
      const pinnedCids = new Set(results.filter((r) => r.keepPinned).map((r) => r.cid));
      expect(new Set(await store.pinnedCids())).to.deep.equal(pinnedCids);

      await store.gc({ graceMs: 0 });
      const released = results.filter((r) => !r.keepPinned);
      for (const r of released) expect(await store.has(r.cid), r.cid).to.equal(false);
      for (const r of results.filter((x) => x.keepPinned)) expect((await store.get(r.cid)).length).to.equal(r.size);

      const leftovers = (await readdir(dataDir, { recursive: true })).filter((f) => f.endsWith(".tmp") || f.includes("pins.break"));
      expect(leftovers).to.deep.equal([]);
      expect(await readdir(join(dataDir, "locks"))).to.deep.equal([]);
    } finally {
      await store.close();
    }
  });
});
