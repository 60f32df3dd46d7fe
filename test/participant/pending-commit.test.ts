// A client restarted while its commit is still waiting to be mined (a network that keeps
// transactions pending; here the in-process chain with automine off). Dropping the journal entry
// as "never landed" and committing anew would lose the first commit's salt: once mined it could
// not be revealed, and the honest client would be slashed for no reveal. The restarted client
// must wait for it instead, then reveal it with the journaled salt.
import { expect } from "chai";
import { network } from "hardhat";
import { loadMnist } from "../../client/data/mnist.js";
import { mlpSpec } from "../../client/model/spec.js";
import { entryCommitment } from "../../client/participant/journal.js";
import type { Step } from "../../client/participant/round.js";
import { readReveals } from "../../lib/chain/coordinator.js";
import { openRound } from "../../lib/protocol/task.js";
import { createTestTask, openTaskWorld, shard, testParticipant, type TaskWorld } from "../helpers/task-world.js";

const { ethers, networkHelpers } = await network.create();

class Crash extends Error {}

describe("participant: restarted while its commit is still pending", function () {
  this.timeout(120_000);
  let world: TaskWorld;
  let taskId: bigint;

  before(async () => {
    world = await openTaskWorld(ethers, { prefix: "anchorfl-pending-commit-", funded: 2 });
    ({ taskId } = await createTestTask(world, { spec: mlpSpec({ seed: 0 }), joiners: [world.signers[1]] }));
  });
  after(async () => {
    await ethers.provider.send("evm_setAutomine", [true]);
    await world?.close();
  });

  it("waits for the pending commit instead of committing again, and reveals it with the journaled salt once it is mined", async () => {
    const signer = world.signers[1];
    const data = shard((await loadMnist()).train, 0);
    const lines: string[] = [];
    const client = (onStep?: (step: Step) => void) => testParticipant(world, { signer, taskId, data, seed: 1, log: (l) => lines.push(l), ...(onStep ? { onStep } : {}) });
    const round = await openRound(world.coordinator(), taskId);

    // The first process journals its salt, sends its commit and dies before the commit is mined.
    const crashed = client((step) => {
      if (step === "journaled") throw new Crash("simulated crash after journaling");
    });
    await crashed.participate().then(
      () => expect.fail("expected the simulated crash"),
      (e: unknown) => expect(e).to.be.instanceOf(Crash),
    );
    const [entry] = await crashed.entries();
    expect(entry.state).to.equal("committing");
    await ethers.provider.send("evm_setAutomine", [false]);
    const sent = await world.coordinator(signer).commit(taskId, round, entryCommitment(entry, signer.address), { gasLimit: 500_000 });
    expect(await ethers.provider.getTransactionCount(signer.address, "pending")).to.equal((await ethers.provider.getTransactionCount(signer.address, "latest")) + 1);

    // Restarted: the entry (and its salt) is kept, and no second commit is sent.
    const restarted = client();
    expect(await restarted.recover()).to.deep.equal([]);
    expect(await restarted.entries()).to.deep.equal([entry]);
    const outcome = await restarted.participate();
    expect(outcome).to.deep.include({ kind: "skipped", round });
    expect(await ethers.provider.getTransactionCount(signer.address, "pending")).to.equal((await ethers.provider.getTransactionCount(signer.address, "latest")) + 1, "still the one commit");
    expect(lines.some((l) => l.includes("waiting for it rather than committing again"))).to.equal(true);

    // Mined: the same entry is the round's commit, and it is revealed in the Reveal phase.
    await ethers.provider.send("evm_mine", []);
    await ethers.provider.send("evm_setAutomine", [true]);
    expect((await sent.wait())!.status).to.equal(1);
    await networkHelpers.time.increaseTo((await world.coordinator().roundInfo(taskId, round)).commitEnd);
    const recovered = await client().recover();
    expect(recovered.map((o) => [o.kind, o.round])).to.deep.equal([["revealed", round]]);
    const reveals = await readReveals(world.coordinator(), taskId, round, { fromBlock: world.fromBlock });
    expect(reveals.map((r) => [r.participant, r.updateDigest])).to.deep.equal([[signer.address, entry.updateDigest]]);
  });
});
