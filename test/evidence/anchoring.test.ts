// The anchoring benchmark's measuring function at a tiny size (3 clients, 1 round, 300 real
// MNIST digits, the in-process chain and a real Helia store): the split adds up to the round's
// wall time, the gas equals what the chain's own receipts say, and the bytes stored equal the
// sizes of the files read back from the store. The timeline split is checked by hand first.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { network } from "hardhat";
import { connectCoordinator, readReveals } from "../../lib/chain/coordinator.js";
import { splitWallTime, PARTS, Timeline, TimelineError } from "../../lib/simulation/anchoring-timeline.js";
import { AnchoringRunError, measureAnchoring, type AnchoringRun } from "../../lib/simulation/anchoring.js";
import { openContentStore } from "../../lib/store/index.js";
import { expectClose } from "../helpers/close.js";

describe("anchoring benchmark", function () {
  this.timeout(90_000);

  describe("splitWallTime", () => {
    it("gives each instant to the most specific part active then, and the rest to the remainder", () => {
      const split = splitWallTime(
        [
          { part: "chain-reads", start: 0, end: 50 },
          { part: "training", start: 10, end: 40 },
          { part: "storing", start: 60, end: 70 },
          { part: "chain-tx", start: 65, end: 80 },
          { part: "encoding", start: 90, end: 130 },
        ],
        0,
        100,
      );
      expect(split).to.deep.equal({ training: 30, encoding: 10, aggregation: 0, storing: 10, pinning: 0, journaling: 0, "chain-tx": 10, "fetch-verify": 0, "chain-reads": 20, remainder: 20 });
    });

    it("refuses a window or a span that ends before it starts", () => {
      expect(() => splitWallTime([], 5, 1)).to.throw(TimelineError, /window ends \(1\) before it starts \(5\)/);
      expect(() => new Timeline().add("storing", 5, 1)).to.throw(TimelineError, /span "storing" ends \(1\) before it starts \(5\)/);
    });
  });

  describe("measureAnchoring (3 clients, 1 round, 300 digits)", () => {
    let dir: string;
    let run: AnchoringRun;
    let elapsed: number;
    let connection: Awaited<ReturnType<typeof network.create>>;

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "anchorfl-anchoring-"));
      connection = await network.create();
      const start = performance.now();
      run = await measureAnchoring(connection, { clients: 3, rounds: 1, digits: 300, epochs: 1, batchSize: 32, learningRate: 0.1, seed: 3, dir });
      elapsed = performance.now() - start;
    });

    after(async () => {
      await connection?.close();
      await rm(dir, { recursive: true, force: true });
    });

    it("splits the round's wall time into parts that add up to it", () => {
      const [round] = run.rounds;
      expect(run.rounds).to.have.length(1);
      expect(round.wallMs).to.be.greaterThan(0).and.lessThan(elapsed);
      const parts = [...PARTS, "remainder"] as const;
      for (const p of parts) expect(round.split[p], p).to.be.at.least(0);
      expectClose(
        parts.reduce((a, p) => a + round.split[p], 0),
        round.wallMs,
        1e-6 * round.wallMs,
      );
      // Every measured part of the flow happened.
      for (const p of ["training", "encoding", "aggregation", "storing", "pinning", "journaling", "chain-tx", "fetch-verify"] as const) expect(round.split[p], p).to.be.greaterThan(0);
    });

    it("reports gas per participant from the same receipts the chain holds", async () => {
      const { ethers } = connection;
      const c = await connectCoordinator(run.coordinator, ethers.provider);
      const byName = new Map<string, number[]>();
      const latest = await ethers.provider.getBlockNumber();
      for (let b = run.deployBlock; b <= latest; b++) {
        for (const hash of (await ethers.provider.getBlock(b))!.transactions) {
          const tx = (await ethers.provider.getTransaction(hash))!;
          if (tx.to?.toLowerCase() !== run.coordinator.toLowerCase()) continue;
          const name = c.interface.parseTransaction({ data: tx.data })!.name;
          byName.set(name, [...(byName.get(name) ?? []), Number((await ethers.provider.getTransactionReceipt(hash))!.gasUsed)]);
        }
      }
      const { gas } = run.rounds[0];
      expect([...gas.commit].sort()).to.deep.equal([...byName.get("commit")!].sort());
      expect([...gas.reveal].sort()).to.deep.equal([...byName.get("reveal")!].sort());
      expect(gas.submitResult).to.equal(byName.get("submitResult")![0]);
      // The task's first round was opened during setup; the round measured opens the next.
      expect(byName.get("openRound")).to.have.length(2);
      expect(gas.openRound).to.equal(byName.get("openRound")![1]);
      expect(gas.other).to.equal(0);
      expect(gas.total).to.equal(gas.commit.reduce((a, b) => a + b, 0) + gas.reveal.reduce((a, b) => a + b, 0) + gas.submitResult + gas.openRound);
      expect(gas.perParticipant).to.be.greaterThan(0);
      expectClose(gas.perParticipant * 3, gas.total, 1e-9);
      expect(run.joinGas).to.deep.equal(byName.get("depositWithPermit"));
    });

    it("counts as stored exactly the bytes of the revealed updates, the model and the report", async () => {
      const [round] = run.rounds;
      const store = await openContentStore({ kind: "embedded", dataDir: path.join(dir, "ipfs") });
      try {
        const c = await connectCoordinator(run.coordinator, connection.ethers.provider);
        const reveals = await readReveals(c, run.taskId, round.round, { fromBlock: run.deployBlock });
        expect(reveals.map((r) => r.participant).sort()).to.deep.equal([...run.participants].sort());
        let updates = 0;
        for (const r of reveals) updates += (await store.get({ digest: r.updateDigest, contentRoot: r.contentRoot })).length;
        expect(round.bytes.updates.reduce((a, b) => a + b, 0)).to.equal(updates);
        expect(round.bytes.model).to.equal((await store.get(round.stored.find((s) => s.digest === round.newModelDigest.toLowerCase())!.cid)).length);
        expect(round.bytes.total).to.equal(updates + round.bytes.model + round.bytes.report);
        let fetched = 0;
        for (const s of round.stored) fetched += (await store.get(s.cid)).length;
        expect(round.bytes.total).to.equal(fetched);
        expect(round.bytes.onDisk).to.be.at.least(round.bytes.total);
      } finally {
        await store.close();
      }
    });

    it("records memory and refuses settings it cannot run", async () => {
      expect(run.memory.peakRss).to.be.at.least(run.memory.baselineRss);
      expect(run.memory.peakHeap).to.be.greaterThan(0);
      await expectAsyncError(() => measureAnchoring(connection, { clients: 4, rounds: 0, digits: 2, epochs: 1, batchSize: 32, learningRate: 0.1, seed: 1, dir }), /rounds must be a positive integer.*digits must be an integer of at least one per client/);
    });
  });
});

async function expectAsyncError(run: () => Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await run();
  } catch (error) {
    expect(error).to.be.instanceOf(AnchoringRunError);
    expect((error as Error).message).to.match(message);
    return;
  }
  expect.fail("expected an AnchoringRunError");
}
