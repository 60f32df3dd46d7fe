import { expect } from "chai";
import { network } from "hardhat";
import {
  compareAddresses,
  connectCoordinator,
  CoordinatorError,
  readCommitters,
  readReveals,
  readRound,
  requireTask,
  send,
  waitForPhase,
} from "../../lib/chain/coordinator.js";
import { ContractRevertError } from "../../lib/chain/revert.js";
import { commitmentOf, randomSalt } from "../../lib/commitment.js";
import { sha256Digest } from "../../lib/digest.js";

const { ethers } = await network.create();
const TOKEN = 10n ** 18n;

describe("coordinator bindings on the in-process chain", function () {
  it("refuses an address without a contract, naming it and the chain", async () => {
    const [owner] = await ethers.getSigners();
    const empty = ethers.Wallet.createRandom().address;
    const error = await connectCoordinator(empty, owner).catch((e) => e);
    expect(error).to.be.instanceOf(CoordinatorError);
    expect(error.message).to.include(empty).and.include("chain 31337");
  });

  it("reads rounds, commits and reveals from events in canonical order, and names reverts", async () => {
    const [owner, agg, ...people] = await ethers.getSigners();
    const token = await ethers.deployContract("DemoToken", [owner.address]);
    const deployed = await ethers.deployContract("AnchorCoordinator");
    const c = await connectCoordinator(await deployed.getAddress(), owner);
    const config = {
      stakeToken: await token.getAddress(),
      minStake: 10n * TOKEN,
      rewardPerRound: 100n * TOKEN,
      aggregatorBond: 10n * TOKEN,
      commitWindow: 600n,
      revealWindow: 600n,
      aggregationWindow: 600n,
      unbondingDelay: 0n,
      maxParticipants: 3n,
      outlierSlashBps: 1000n,
      noRevealSlashBps: 1000n,
      invalidSlashBps: 1000n,
      duplicateSlashBps: 1000n,
      dissentPenaltyBps: 1000n,
      quorum: 1n,
      genesisModelDigest: sha256Digest(new Uint8Array([1])),
      modelSpecDigest: sha256Digest(new Uint8Array([2])),
      aggregators: [agg.address],
    };
    await send("create task", () => c.createTask(config));
    await requireTask(c, 1n);
    expect((await requireTask(c, 2n).catch((e) => e)).message).to.include("task 2 does not exist");
    await token.mint(owner.address, 1000n * TOKEN);
    await token.approve(await c.getAddress(), 1000n * TOKEN);
    await send("fund", () => c.fund(1n, 500n * TOKEN));
    await send("open round", () => c.openRound(1n));
    expect((await readRound(c, 1n, 1n)).phase).to.equal("Commit");

    const three = people.slice(0, 3);
    const secrets = new Map<string, { digest: `0x${string}`; salt: `0x${string}` }>();
    for (const [i, p] of three.entries()) {
      await token.mint(p.address, 100n * TOKEN);
      await token.connect(p).approve(await c.getAddress(), 100n * TOKEN);
      await send("deposit", () => c.connect(p).deposit(1n, 10n * TOKEN));
      const digest = sha256Digest(new Uint8Array([10 + i]));
      const salt = randomSalt();
      secrets.set(p.address, { digest, salt });
      const commitment = commitmentOf({ chainId: 31337n, coordinator: await c.getAddress(), taskId: 1n, round: 1n, participant: p.address, updateDigest: digest, salt });
      await send("commit", () => c.connect(p).commit(1n, 1n, commitment));
    }
    expect(await waitForPhase(c, 1n, 1n, ["Reveal"], { pollMs: 10, timeoutMs: 1_000 })).to.equal("Reveal");

    // A wrong salt is refused with the contract's error name and arguments.
    const wrong = await send("reveal", () => c.connect(three[0]).reveal(1n, 1n, secrets.get(three[0].address)!.digest, 5n, randomSalt(), ethers.ZeroHash)).catch((e) => e);
    expect(wrong).to.be.instanceOf(ContractRevertError);
    expect(wrong.errorName).to.equal("CommitmentMismatch");
    expect(wrong.message).to.include("CommitmentMismatch(taskId: 1, round: 1, account: " + three[0].address);

    for (const p of [...three].reverse()) {
      const { digest, salt } = secrets.get(p.address)!;
      await send("reveal", () => c.connect(p).reveal(1n, 1n, digest, 7n, salt, ethers.ZeroHash));
    }
    const reveals = await readReveals(c, 1n, 1n, { maxRange: 2 });
    expect(reveals.map((r) => r.participant)).to.deep.equal(three.map((p) => p.address).sort(compareAddresses));
    for (const r of reveals) expect(r.updateDigest).to.equal(secrets.get(r.participant)!.digest);
    expect(await readCommitters(c, 1n, 1n)).to.deep.equal(reveals.map((r) => r.participant));
    expect((await readRound(c, 1n, 1n)).phase).to.equal("Aggregation");
    const timeout = await waitForPhase(c, 1n, 1n, ["Finalized"], { pollMs: 10, timeoutMs: 50 }).catch((e) => e);
    expect(timeout.message).to.include("still in phase Aggregation");
  });
});
