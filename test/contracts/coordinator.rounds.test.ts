// Rounds of the coordinator: opening, commit, reveal, phases derived from deadlines (with the
// last second of each phase and the first of the next), early closing, and their errors.
import { expect } from "chai";
import { commitmentOf as libCommitmentOf } from "../../lib/commitment.js";
import {
  commitUpdate,
  commitmentFor,
  createTask,
  deployRoundOpen,
  deployStaked,
  ethers,
  networkHelpers,
  nextBlockAt,
  Phase,
  phases,
  revealUpdate,
  toAggregation,
  toReveal,
  updateOf,
  WINDOW,
  DEFAULTS,
  type World,
} from "./fixtures.js";

const { loadFixture, time } = networkHelpers;

describe("AnchorCoordinator rounds", function () {
  describe("openRound", function () {
    it("opens round 1 with deadlines, reserves the budget and emits RoundOpened", async function () {
      const w = await loadFixture(deployStaked);
      const escrowBefore = (await w.coordinator.taskInfo(w.taskId)).rewardEscrow;
      const t = BigInt(await time.latest()) + 10n;
      await nextBlockAt(t);
      await expect(w.coordinator.openRound(w.taskId))
        .to.emit(w.coordinator, "RoundOpened")
        .withArgs(
          w.taskId,
          1n,
          DEFAULTS.genesisModelDigest,
          DEFAULTS.rewardPerRound,
          t + WINDOW,
          t + 2n * WINDOW,
          t + 3n * WINDOW,
        );
      expect(await w.coordinator.currentRound(w.taskId)).to.equal(1n);
      expect(await w.coordinator.roundPhase(w.taskId, 1n)).to.equal(Phase.Commit);
      const info = await w.coordinator.roundInfo(w.taskId, 1n);
      expect(info.budget).to.equal(DEFAULTS.rewardPerRound);
      expect(info.commitEnd).to.equal(t + WINDOW);
      expect((await w.coordinator.taskInfo(w.taskId)).rewardEscrow).to.equal(escrowBefore - DEFAULTS.rewardPerRound);
    });

    it("may be called by an aggregator, not by anyone else", async function () {
      const w = await loadFixture(deployStaked);
      await expect(w.coordinator.connect(w.outsider).openRound(w.taskId))
        .to.be.revertedWithCustomError(w.coordinator, "NotTaskOperator")
        .withArgs(w.taskId, w.outsider.address);
      await expect(w.coordinator.connect(w.aggregators[2]).openRound(w.taskId)).to.emit(w.coordinator, "RoundOpened");
    });

    it("refuses while the current round is unfinished", async function () {
      const w = await loadFixture(deployRoundOpen);
      await expect(w.coordinator.openRound(w.taskId))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 1n, Phase.Commit, phases(Phase.Finalized, Phase.Failed));
    });

    it("refuses an unknown task and a too small escrow", async function () {
      const w = await loadFixture(deployStaked);
      await expect(w.coordinator.openRound(7n))
        .to.be.revertedWithCustomError(w.coordinator, "UnknownTask")
        .withArgs(7n, 2n);
      await createTask(w);
      await expect(w.coordinator.openRound(2n))
        .to.be.revertedWithCustomError(w.coordinator, "InsufficientEscrow")
        .withArgs(2n, DEFAULTS.rewardPerRound, 0n);
    });
  });

  describe("commit", function () {
    it("stores the commitment, counts it and emits Committed", async function () {
      const w = await loadFixture(deployRoundOpen);
      const u = updateOf(w.participants[0], 1n);
      const c = commitmentFor(w, w.taskId, 1n, u.signer.address, u.digest, u.salt);
      await expect(w.coordinator.connect(u.signer).commit(w.taskId, 1n, c))
        .to.emit(w.coordinator, "Committed")
        .withArgs(w.taskId, 1n, u.signer.address, c);
      const p = await w.coordinator.participantInfo(w.taskId, u.signer.address);
      expect(p.lastRound).to.equal(1n);
      expect(p.commitment).to.equal(c);
      expect(p.revealed).to.equal(false);
      expect((await w.coordinator.roundInfo(w.taskId, 1n)).commitCount).to.equal(1n);
    });

    it("computes the same commitment as the contract and as lib/commitment.ts", async function () {
      const w = await loadFixture(deployRoundOpen);
      const u = updateOf(w.participants[1], 4n);
      const mine = commitmentFor(w, 9n, 4n, u.signer.address, u.digest, u.salt);
      expect(await w.coordinator.commitmentOf(9n, 4n, u.signer.address, u.digest, u.salt)).to.equal(mine);
      const lib = libCommitmentOf({
        chainId: w.chainId,
        coordinator: w.coordinatorAddress,
        taskId: 9n,
        round: 4n,
        participant: u.signer.address,
        updateDigest: u.digest as `0x${string}`,
        salt: u.salt as `0x${string}`,
      });
      expect(lib).to.equal(mine);
    });

    it("accepts one commitment per address per round", async function () {
      const w = await loadFixture(deployRoundOpen);
      const u = updateOf(w.participants[0], 1n);
      await commitUpdate(w, u, 1n);
      await expect(commitUpdate(w, { ...u, salt: ethers.id("other salt") }, 1n))
        .to.be.revertedWithCustomError(w.coordinator, "AlreadyCommitted")
        .withArgs(w.taskId, 1n, u.signer.address);
    });

    it("requires the minimum free stake", async function () {
      const w = await loadFixture(deployRoundOpen);
      const [p] = w.participants;
      await w.coordinator.connect(p).requestWithdrawal(w.taskId, 950n * 10n ** 18n);
      await expect(commitUpdate(w, updateOf(p, 1n), 1n))
        .to.be.revertedWithCustomError(w.coordinator, "InsufficientFreeStake")
        .withArgs(w.taskId, p.address, DEFAULTS.minStake, 50n * 10n ** 18n);
      await expect(commitUpdate(w, updateOf(w.outsider, 1n), 1n))
        .to.be.revertedWithCustomError(w.coordinator, "InsufficientFreeStake")
        .withArgs(w.taskId, w.outsider.address, DEFAULTS.minStake, 0n);
    });

    it("rejects a commitment that is zero or looks like a revealed marker", async function () {
      const w = await loadFixture(deployRoundOpen);
      const p = w.participants[0];
      for (const bad of [ethers.ZeroHash, ethers.toBeHex(1n, 32), ethers.toBeHex(2n ** 32n - 1n, 32)]) {
        await expect(w.coordinator.connect(p).commit(w.taskId, 1n, bad))
          .to.be.revertedWithCustomError(w.coordinator, "InvalidCommitment")
          .withArgs(bad);
      }
    });

    it("rejects the wrong round, an unknown task and a task without a round", async function () {
      const w = await loadFixture(deployRoundOpen);
      const p = w.participants[0];
      const c = ethers.id("c");
      await expect(w.coordinator.connect(p).commit(w.taskId, 2n, c))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRound")
        .withArgs(w.taskId, 1n, 2n);
      await expect(w.coordinator.connect(p).commit(5n, 1n, c))
        .to.be.revertedWithCustomError(w.coordinator, "UnknownTask")
        .withArgs(5n, 2n);
      await createTask(w);
      await expect(w.coordinator.connect(p).commit(2n, 0n, c))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(2n, 0n, Phase.None, phases(Phase.Commit, Phase.Reveal, Phase.Aggregation));
    });

    it("accepts a commit in the last second of the commit phase, not in the first of reveal", async function () {
      const w = await loadFixture(deployRoundOpen);
      const info = await w.coordinator.roundInfo(w.taskId, 1n);
      await nextBlockAt(info.commitEnd - 1n);
      await expect(commitUpdate(w, updateOf(w.participants[0], 1n), 1n)).to.emit(w.coordinator, "Committed");
      await nextBlockAt(info.commitEnd);
      await expect(commitUpdate(w, updateOf(w.participants[1], 1n), 1n))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 1n, Phase.Reveal, phases(Phase.Commit));
    });

    it("closes the commit phase early when max participants committed; the next commit is refused", async function () {
      const w = await loadFixture(deployRoundOpen);
      const [p1, p2, p3, p4] = w.participants;
      await commitUpdate(w, updateOf(p1, 1n), 1n);
      await commitUpdate(w, updateOf(p2, 1n), 1n);
      const t = BigInt(await time.latest()) + 5n;
      await nextBlockAt(t);
      await expect(commitUpdate(w, updateOf(p3, 1n), 1n))
        .to.emit(w.coordinator, "PhaseClosedEarly")
        .withArgs(w.taskId, 1n, Phase.Commit, t, t + WINDOW, t + 2n * WINDOW);
      expect(await w.coordinator.roundPhase(w.taskId, 1n)).to.equal(Phase.Reveal);
      const info = await w.coordinator.roundInfo(w.taskId, 1n);
      expect([info.commitEnd, info.revealEnd, info.aggregationEnd]).to.deep.equal([t, t + WINDOW, t + 2n * WINDOW]);
      await expect(commitUpdate(w, updateOf(p4, 1n), 1n))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 1n, Phase.Reveal, phases(Phase.Commit));
      expect((await w.coordinator.roundInfo(w.taskId, 1n)).commitCount).to.equal(3n);
    });
  });

  describe("reveal", function () {
    async function committedTwo(): Promise<World> {
      const w = await deployRoundOpen();
      await commitUpdate(w, updateOf(w.participants[0], 1n), 1n);
      await commitUpdate(w, updateOf(w.participants[1], 1n), 1n);
      return w;
    }

    it("checks the commitment, marks it revealed and emits Revealed with the file's digest and root", async function () {
      const w = await loadFixture(committedTwo);
      await toReveal(w);
      const u = updateOf(w.participants[0], 1n);
      const root = ethers.id("dag-pb root");
      await expect(revealUpdate(w, u, 1n, w.taskId, root))
        .to.emit(w.coordinator, "Revealed")
        .withArgs(w.taskId, 1n, u.signer.address, u.digest, u.samples, root);
      const p = await w.coordinator.participantInfo(w.taskId, u.signer.address);
      expect(p.revealed).to.equal(true);
      expect(p.commitment).to.equal(ethers.toBeHex(1n, 32));
      expect((await w.coordinator.roundInfo(w.taskId, 1n)).revealCount).to.equal(1n);
      await expect(revealUpdate(w, u, 1n))
        .to.be.revertedWithCustomError(w.coordinator, "AlreadyRevealed")
        .withArgs(w.taskId, 1n, u.signer.address);
    });

    it("never counts a reveal that does not match its commitment", async function () {
      const w = await loadFixture(committedTwo);
      await toReveal(w);
      const u = updateOf(w.participants[0], 1n);
      const stored = commitmentFor(w, w.taskId, 1n, u.signer.address, u.digest, u.salt);
      const wrong = { ...u, digest: ethers.id("another file") };
      const computed = commitmentFor(w, w.taskId, 1n, u.signer.address, wrong.digest, u.salt);
      await expect(revealUpdate(w, wrong, 1n))
        .to.be.revertedWithCustomError(w.coordinator, "CommitmentMismatch")
        .withArgs(w.taskId, 1n, u.signer.address, stored, computed);
      // A participant that never committed has nothing to match.
      const stranger = updateOf(w.participants[4], 1n);
      await expect(revealUpdate(w, stranger, 1n)).to.be.revertedWithCustomError(w.coordinator, "CommitmentMismatch");
      expect((await w.coordinator.roundInfo(w.taskId, 1n)).revealCount).to.equal(0n);
    });

    it("is refused during the commit phase and after the reveal phase (boundary seconds)", async function () {
      const w = await loadFixture(committedTwo);
      const info = await w.coordinator.roundInfo(w.taskId, 1n);
      const [u1, u2] = [updateOf(w.participants[0], 1n), updateOf(w.participants[1], 1n)];
      await nextBlockAt(info.commitEnd - 1n);
      await expect(revealUpdate(w, u1, 1n))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 1n, Phase.Commit, phases(Phase.Reveal));
      await nextBlockAt(info.commitEnd);
      await expect(revealUpdate(w, u1, 1n)).to.emit(w.coordinator, "Revealed");
      await nextBlockAt(info.revealEnd);
      await expect(revealUpdate(w, u2, 1n))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 1n, Phase.Aggregation, phases(Phase.Reveal));
    });

    it("accepts a reveal in the last second of the reveal phase", async function () {
      const w = await loadFixture(committedTwo);
      const info = await w.coordinator.roundInfo(w.taskId, 1n);
      await nextBlockAt(info.revealEnd - 1n);
      await expect(revealUpdate(w, updateOf(w.participants[1], 1n), 1n)).to.emit(w.coordinator, "Revealed");
    });

    it("closes the reveal phase early once every committer revealed", async function () {
      const w = await loadFixture(committedTwo);
      await toReveal(w);
      await revealUpdate(w, updateOf(w.participants[0], 1n), 1n);
      const t = BigInt(await time.latest()) + 3n;
      await nextBlockAt(t);
      await expect(revealUpdate(w, updateOf(w.participants[1], 1n), 1n))
        .to.emit(w.coordinator, "PhaseClosedEarly")
        .withArgs(w.taskId, 1n, Phase.Reveal, t, t, t + WINDOW);
      expect(await w.coordinator.roundPhase(w.taskId, 1n)).to.equal(Phase.Aggregation);
    });

    it("rejects the wrong round", async function () {
      const w = await loadFixture(committedTwo);
      await toReveal(w);
      await expect(revealUpdate(w, updateOf(w.participants[0], 1n), 2n))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRound")
        .withArgs(w.taskId, 1n, 2n);
    });
  });

  describe("phases", function () {
    it("walks Commit -> Reveal -> Aggregation -> Failed by the clock alone, and None outside the rounds", async function () {
      const w = await loadFixture(deployRoundOpen);
      const info = await w.coordinator.roundInfo(w.taskId, 1n);
      const at = async (t: bigint) => {
        await time.increaseTo(t);
        return w.coordinator.roundPhase(w.taskId, 1n);
      };
      expect(await at(info.commitEnd - 1n)).to.equal(Phase.Commit);
      expect(await at(info.commitEnd)).to.equal(Phase.Reveal);
      expect(await at(info.revealEnd - 1n)).to.equal(Phase.Reveal);
      expect(await at(info.revealEnd)).to.equal(Phase.Aggregation);
      expect(await at(info.aggregationEnd - 1n)).to.equal(Phase.Aggregation);
      expect(await at(info.aggregationEnd)).to.equal(Phase.Failed);
      expect(await w.coordinator.roundPhase(w.taskId, 0n)).to.equal(Phase.None);
      expect(await w.coordinator.roundPhase(w.taskId, 2n)).to.equal(Phase.None);
      await toAggregation(w);
    });
  });
});
