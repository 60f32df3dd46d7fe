// The cross-process folder lock: mutual exclusion, recovery from a dead holder, and a
// typed timeout naming the holder when a live one keeps it.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { StoreLockTimeoutError } from "../../lib/store/index.js";
import { withFolderLock } from "../../lib/store/lock.js";

describe("store: folder lock", () => {
  let dir: string;
  let lockPath: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "anchorfl-lock-"));
    lockPath = join(dir, "pins");
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("runs holders one at a time and removes the lock afterwards", async () => {
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      Array.from({ length: 8 }, () =>
        withFolderLock(lockPath, async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await new Promise((r) => setTimeout(r, 5));
          inside--;
        }),
      ),
    );
    expect(maxInside).to.equal(1);
    expect(await readdir(dir)).to.deep.equal([]);
  });

  it("releases the lock when the holder throws", async () => {
    await withFolderLock(lockPath, async () => {
      throw new Error("boom");
    }).catch(() => undefined);
    expect(await withFolderLock(lockPath, async () => "next", { timeoutMs: 500 })).to.equal("next");
  });

  it("takes over a lock whose holder process has exited", async () => {
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString();
    await mkdir(lockPath);
    await writeFile(join(lockPath, "owner.json"), JSON.stringify({ pid: Number(dead), host: hostname(), at: Date.now(), token: "old" }));
    const t0 = Date.now();
    expect(await withFolderLock(lockPath, async () => "taken", { timeoutMs: 2000 })).to.equal("taken");
    expect(Date.now() - t0).to.be.below(1000);
  });

  it("takes over a lock older than staleMs even if its holder looks alive", async () => {
    await mkdir(lockPath);
    await writeFile(join(lockPath, "owner.json"), JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now() - 60_000, token: "old" }));
    expect(await withFolderLock(lockPath, async () => "taken", { timeoutMs: 2000, staleMs: 30_000 })).to.equal("taken");
  });

  it("times out with StoreLockTimeoutError naming the lock and the live holder", async () => {
    await mkdir(lockPath);
    await writeFile(join(lockPath, "owner.json"), JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now(), token: "live" }));
    const err = await withFolderLock(lockPath, async () => "never", { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(StoreLockTimeoutError);
    expect((err as Error).message).to.include(lockPath).and.include(`pid ${process.pid}`);
  });
});
