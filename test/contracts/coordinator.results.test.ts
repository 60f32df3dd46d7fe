// Results, slashing and rewards on the coordinator: aggregator bonds, identical submissions
// counted to quorum, finalization (model, slashes, rewards root, unused budget), dissent
// penalties, failed rounds, no-reveal slashing and Merkle reward claims.
import { expect } from "chai";
import {
  commitUpdate,
  DEFAULTS,
  deployRoundOpen,
  deployStaked,
  deployWorld,
  ethers,
  networkHelpers,
  Phase,
  phases,
  playCommitReveal,
  proofFor,
  Reason,
  resultOf,
  revealUpdate,
  rewardsTree,
  toAggregation,
  toFailed,
  toReveal,
  TOKEN,
  updateOf,
  type World,
} from "./fixtures.js";

const { loadFixture, time } = networkHelpers;
const STAKE = 1_000n * TOKEN;
const slashOf = (bps: bigint, stake = STAKE) => (stake * bps) / 10_000n;

/** Round 1 with participants 0..2 committed and revealed, now in Aggregation. */
async function deployAggregation(): Promise<World> {
  const w = await deployRoundOpen();
  await playCommitReveal(
    w,
    w.participants.slice(0, 3).map((p) => updateOf(p, 1n)),
    1n,
  );
  return w;
}

/** Round 1 with participants 0 and 1 revealed and participant 2 committed but silent, in Aggregation. */
async function deployWithSilent(): Promise<World> {
  const w = await deployRoundOpen();
  const [u0, u1, u2] = w.participants.slice(0, 3).map((p) => updateOf(p, 1n));
  for (const u of [u0, u1, u2]) await commitUpdate(w, u, 1n);
  await toReveal(w);
  await revealUpdate(w, u0, 1n);
  await revealUpdate(w, u1, 1n);
  await toAggregation(w);
  return w;
}

describe("AnchorCoordinator results and rewards", function () {
  describe("aggregator bonds", function () {
    it("bonds the task's amount, refuses outsiders, unknown tasks and double bonds", async function () {
      const w = await loadFixture(deployWorld);
      const [a] = w.aggregators;
      await expect(w.coordinator.connect(a).bondAggregator(w.taskId))
        .to.emit(w.coordinator, "AggregatorBonded")
        .withArgs(w.taskId, a.address, DEFAULTS.aggregatorBond, DEFAULTS.aggregatorBond);
      expect((await w.coordinator.aggregatorInfo(w.taskId, a.address)).bond).to.equal(DEFAULTS.aggregatorBond);
      await expect(w.coordinator.connect(a).bondAggregator(w.taskId))
        .to.be.revertedWithCustomError(w.coordinator, "AggregatorAlreadyBonded")
        .withArgs(w.taskId, a.address, DEFAULTS.aggregatorBond);
      await expect(w.coordinator.connect(w.outsider).bondAggregator(w.taskId))
        .to.be.revertedWithCustomError(w.coordinator, "NotAggregator")
        .withArgs(w.taskId, w.outsider.address);
      await expect(w.coordinator.connect(a).bondAggregator(3n))
        .to.be.revertedWithCustomError(w.coordinator, "UnknownTask")
        .withArgs(3n, 2n);
    });

    it("unbonds the whole bond when no submission is pending, and refuses without a bond", async function () {
      const w = await loadFixture(deployStaked);
      const [a] = w.aggregators;
      await expect(w.coordinator.connect(a).unbondAggregator(w.taskId)).to.changeTokenBalances(
        ethers,
        w.token,
        [a, w.coordinator],
        [DEFAULTS.aggregatorBond, -DEFAULTS.aggregatorBond],
      );
      await expect(w.coordinator.connect(a).unbondAggregator(w.taskId))
        .to.be.revertedWithCustomError(w.coordinator, "AggregatorNotBonded")
        .withArgs(w.taskId, a.address);
      await expect(w.coordinator.connect(a).bondAggregator(w.taskId)).to.emit(w.coordinator, "AggregatorBonded");
    });

    it("locks the bond while its submission's round is undecided", async function () {
      const w = await loadFixture(deployAggregation);
      const [a] = w.aggregators;
      await w.coordinator.connect(a).submitResult(w.taskId, 1n, resultOf("x"));
      await expect(w.coordinator.connect(a).bondAggregator(w.taskId))
        .to.be.revertedWithCustomError(w.coordinator, "AggregatorAlreadyBonded")
        .withArgs(w.taskId, a.address, DEFAULTS.aggregatorBond);
      await expect(w.coordinator.connect(a).unbondAggregator(w.taskId))
        .to.be.revertedWithCustomError(w.coordinator, "BondLocked")
        .withArgs(w.taskId, a.address, 1n, Phase.Aggregation);
      await toFailed(w);
      await expect(w.coordinator.connect(a).unbondAggregator(w.taskId))
        .to.emit(w.coordinator, "AggregatorUnbonded")
        .withArgs(w.taskId, a.address, DEFAULTS.aggregatorBond);
    });
  });

  describe("submitResult and finalization", function () {
    it("counts identical results and finalizes at quorum: model, root, budget, events", async function () {
      const w = await loadFixture(deployAggregation);
      const [p0, p1, p2] = w.participants;
      const rewards = rewardsTree([
        [p0.address, 300n * TOKEN],
        [p1.address, 200n * TOKEN],
        [p2.address, 100n * TOKEN],
      ]);
      const result = resultOf("round 1", rewards);
      const hash = await w.coordinator.resultHashOf(result);
      expect(hash).to.equal(
        ethers.keccak256(
          ethers.AbiCoder.defaultAbiCoder().encode(
            ["tuple(bytes32,bytes32,bytes32,uint256,tuple(address,uint8)[])"],
            [[result.newModelDigest, result.reportDigest, result.rewardsRoot, result.rewardsTotal, []]],
          ),
        ),
      );
      const escrow = (await w.coordinator.taskInfo(w.taskId)).rewardEscrow;
      await expect(w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 1n, result))
        .to.emit(w.coordinator, "ResultSubmitted")
        .withArgs(w.taskId, 1n, w.aggregators[0].address, hash, 1n, () => true)
        .and.not.to.emit(w.coordinator, "RoundFinalized");
      expect(await w.coordinator.resultVotes(w.taskId, 1n, hash)).to.equal(1n);
      expect(await w.coordinator.roundPhase(w.taskId, 1n)).to.equal(Phase.Aggregation);

      const returned = DEFAULTS.rewardPerRound - rewards.total;
      await expect(w.coordinator.connect(w.aggregators[2]).submitResult(w.taskId, 1n, result))
        .to.emit(w.coordinator, "RoundFinalized")
        .withArgs(
          w.taskId,
          1n,
          hash,
          result.newModelDigest,
          result.reportDigest,
          rewards.root,
          rewards.total,
          returned,
        );
      expect(await w.coordinator.roundPhase(w.taskId, 1n)).to.equal(Phase.Finalized);
      expect(await w.coordinator.globalModel(w.taskId)).to.equal(result.newModelDigest);
      const info = await w.coordinator.roundInfo(w.taskId, 1n);
      expect(info.resultHash).to.equal(hash);
      expect(info.rewardsRoot).to.equal(rewards.root);
      expect(info.unclaimedRewards).to.equal(rewards.total);
      expect(info.budget).to.equal(0n);
      expect(info.finalizedAt).to.equal(BigInt(await time.latest()));
      expect((await w.coordinator.taskInfo(w.taskId)).rewardEscrow).to.equal(escrow + returned);

      // The third aggregator is too late: the round is decided.
      await expect(w.coordinator.connect(w.aggregators[1]).submitResult(w.taskId, 1n, result))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 1n, Phase.Finalized, phases(Phase.Aggregation));
    });

    it("lets the next round open from the new model", async function () {
      const w = await loadFixture(deployAggregation);
      const result = resultOf("round 1");
      await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 1n, result);
      await w.coordinator.connect(w.aggregators[1]).submitResult(w.taskId, 1n, result);
      await expect(w.coordinator.openRound(w.taskId))
        .to.emit(w.coordinator, "RoundOpened")
        .withArgs(w.taskId, 2n, result.newModelDigest, DEFAULTS.rewardPerRound, () => true, () => true, () => true);
      expect(await w.coordinator.roundPhase(w.taskId, 1n)).to.equal(Phase.Finalized);
    });

    it("applies the slash list at its reasons' rates, once each, into the escrow", async function () {
      const w = await loadFixture(deployWithSilent);
      const [p0, p1, p2] = w.participants;
      const result = resultOf("slashes", undefined, [
        { participant: p0.address, reason: Reason.Invalid },
        { participant: p2.address, reason: Reason.NoReveal },
        { participant: p1.address, reason: Reason.Duplicate },
      ]);
      const escrow = (await w.coordinator.taskInfo(w.taskId)).rewardEscrow;
      await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 1n, result);
      const tx = w.coordinator.connect(w.aggregators[1]).submitResult(w.taskId, 1n, result);
      await expect(tx)
        .to.emit(w.coordinator, "Slashed")
        .withArgs(w.taskId, 1n, p0.address, Reason.Invalid, slashOf(DEFAULTS.invalidSlashBps));
      await expect(tx)
        .to.emit(w.coordinator, "Slashed")
        .withArgs(w.taskId, 1n, p2.address, Reason.NoReveal, slashOf(DEFAULTS.noRevealSlashBps));
      await expect(tx)
        .to.emit(w.coordinator, "Slashed")
        .withArgs(w.taskId, 1n, p1.address, Reason.Duplicate, slashOf(DEFAULTS.duplicateSlashBps));
      const total =
        slashOf(DEFAULTS.invalidSlashBps) + slashOf(DEFAULTS.noRevealSlashBps) + slashOf(DEFAULTS.duplicateSlashBps);
      expect((await w.coordinator.taskInfo(w.taskId)).rewardEscrow).to.equal(
        escrow + total + DEFAULTS.rewardPerRound,
      );
      expect((await w.coordinator.participantInfo(w.taskId, p0.address)).stake).to.equal(
        STAKE - slashOf(DEFAULTS.invalidSlashBps),
      );
      expect((await w.coordinator.participantInfo(w.taskId, p0.address)).slashed).to.equal(true);
    });

    it("never slashes twice: a repeated entry and an entry slashNoReveal already took are skipped", async function () {
      const w = await loadFixture(deployWithSilent);
      const [p0, , p2] = w.participants;
      const result = resultOf("twice", undefined, [
        { participant: p0.address, reason: Reason.Outlier },
        { participant: p0.address, reason: Reason.Outlier },
        { participant: p2.address, reason: Reason.NoReveal },
      ]);
      await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 1n, result);
      await w.coordinator.connect(w.outsider).slashNoReveal(w.taskId, 1n, p2.address);
      const tx = await w.coordinator.connect(w.aggregators[1]).submitResult(w.taskId, 1n, result);
      const receipt = await tx.wait();
      const slashes = receipt!.logs
        .map((l) => w.coordinator.interface.parseLog(l))
        .filter((e) => e?.name === "Slashed");
      expect(slashes.map((e) => [e!.args.participant, e!.args.reason])).to.deep.equal([
        [p0.address, BigInt(Reason.Outlier)],
      ]);
      expect((await w.coordinator.participantInfo(w.taskId, p0.address)).stake).to.equal(
        STAKE - slashOf(DEFAULTS.outlierSlashBps),
      );
      expect((await w.coordinator.participantInfo(w.taskId, p2.address)).stake).to.equal(
        STAKE - slashOf(DEFAULTS.noRevealSlashBps),
      );
    });

    it("rejects slash entries that could never apply", async function () {
      const w = await loadFixture(deployWithSilent);
      const [p0, , p2, p3] = w.participants;
      const a = w.coordinator.connect(w.aggregators[0]);
      const submit = (slashes: { participant: string; reason: Reason }[]) =>
        a.submitResult(w.taskId, 1n, resultOf("bad", undefined, slashes));
      await expect(submit([{ participant: p3.address, reason: Reason.Outlier }]))
        .to.be.revertedWithCustomError(w.coordinator, "SlashTargetNotCommitted")
        .withArgs(0n, p3.address, 1n);
      await expect(
        submit([
          { participant: p2.address, reason: Reason.NoReveal },
          { participant: p0.address, reason: Reason.NoReveal },
        ]),
      )
        .to.be.revertedWithCustomError(w.coordinator, "InvalidSlashReason")
        .withArgs(1n, p0.address, Reason.NoReveal, true);
      await expect(submit([{ participant: p2.address, reason: Reason.Outlier }]))
        .to.be.revertedWithCustomError(w.coordinator, "InvalidSlashReason")
        .withArgs(0n, p2.address, Reason.Outlier, false);
      await expect(submit([{ participant: p0.address, reason: Reason.None }]))
        .to.be.revertedWithCustomError(w.coordinator, "InvalidSlashReason")
        .withArgs(0n, p0.address, Reason.None, true);
      const four = [p0, p0, p0, p0].map((p) => ({ participant: p.address, reason: Reason.Outlier }));
      await expect(submit(four)).to.be.revertedWithCustomError(w.coordinator, "SlashListTooLong").withArgs(4n, 3n);
    });

    it("rejects rewards over the budget or without a root, a second submission, outsiders, unbonded aggregators, wrong phases", async function () {
      const w = await loadFixture(deployAggregation);
      const [a0, a1, a2] = w.aggregators;
      const over = { ...resultOf("over"), rewardsTotal: DEFAULTS.rewardPerRound + 1n };
      await expect(w.coordinator.connect(a0).submitResult(w.taskId, 1n, over))
        .to.be.revertedWithCustomError(w.coordinator, "RewardsExceedBudget")
        .withArgs(w.taskId, 1n, DEFAULTS.rewardPerRound + 1n, DEFAULTS.rewardPerRound);
      const rootless = { ...resultOf("rootless"), rewardsTotal: 5n };
      await expect(w.coordinator.connect(a0).submitResult(w.taskId, 1n, rootless))
        .to.be.revertedWithCustomError(w.coordinator, "MissingRewardsRoot")
        .withArgs(5n);
      await w.coordinator.connect(a0).submitResult(w.taskId, 1n, resultOf("a"));
      await expect(w.coordinator.connect(a0).submitResult(w.taskId, 1n, resultOf("b")))
        .to.be.revertedWithCustomError(w.coordinator, "AlreadySubmitted")
        .withArgs(w.taskId, 1n, a0.address);
      await expect(w.coordinator.connect(w.outsider).submitResult(w.taskId, 1n, resultOf("a")))
        .to.be.revertedWithCustomError(w.coordinator, "NotAggregator")
        .withArgs(w.taskId, w.outsider.address);
      await w.coordinator.connect(a2).unbondAggregator(w.taskId);
      await expect(w.coordinator.connect(a2).submitResult(w.taskId, 1n, resultOf("a")))
        .to.be.revertedWithCustomError(w.coordinator, "AggregatorBondTooLow")
        .withArgs(w.taskId, a2.address, DEFAULTS.aggregatorBond, 0n);
      await expect(w.coordinator.connect(a1).submitResult(w.taskId, 2n, resultOf("a")))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRound")
        .withArgs(w.taskId, 1n, 2n);
      await toFailed(w);
      await expect(w.coordinator.connect(a1).submitResult(w.taskId, 1n, resultOf("a")))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 1n, Phase.Failed, phases(Phase.Aggregation));
    });

    it("is refused before the reveal phase is over", async function () {
      const w = await loadFixture(deployRoundOpen);
      await expect(w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 1n, resultOf("early")))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 1n, Phase.Commit, phases(Phase.Aggregation));
    });

    it("finalizes an empty round (nobody committed) when the aggregators agree", async function () {
      const w = await loadFixture(deployRoundOpen);
      await toAggregation(w);
      const result = resultOf("empty");
      await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 1n, result);
      await expect(w.coordinator.connect(w.aggregators[1]).submitResult(w.taskId, 1n, result))
        .to.emit(w.coordinator, "RoundFinalized")
        .withArgs(
          w.taskId,
          1n,
          await w.coordinator.resultHashOf(result),
          result.newModelDigest,
          result.reportDigest,
          ethers.ZeroHash,
          0n,
          DEFAULTS.rewardPerRound,
        );
    });
  });

  describe("dissent", function () {
    async function dissented(): Promise<World> {
      const w = await deployAggregation();
      const [a0, a1, a2] = w.aggregators;
      await w.coordinator.connect(a0).submitResult(w.taskId, 1n, resultOf("honest"));
      await w.coordinator.connect(a2).submitResult(w.taskId, 1n, resultOf("dissent"));
      await w.coordinator.connect(a1).submitResult(w.taskId, 1n, resultOf("honest"));
      return w;
    }

    it("penalizes an aggregator whose result differs from the finalized one, once, into the escrow", async function () {
      const w = await loadFixture(dissented);
      const [a0, , a2] = w.aggregators;
      const penalty = slashOf(DEFAULTS.dissentPenaltyBps, DEFAULTS.aggregatorBond);
      const escrow = (await w.coordinator.taskInfo(w.taskId)).rewardEscrow;
      await expect(w.coordinator.connect(w.outsider).penalizeDissent(w.taskId, a2.address))
        .to.emit(w.coordinator, "AggregatorPenalized")
        .withArgs(w.taskId, 1n, a2.address, penalty, DEFAULTS.aggregatorBond - penalty);
      expect((await w.coordinator.taskInfo(w.taskId)).rewardEscrow).to.equal(escrow + penalty);
      const info = await w.coordinator.aggregatorInfo(w.taskId, a2.address);
      expect(info.bond).to.equal(DEFAULTS.aggregatorBond - penalty);
      expect(info.settled).to.equal(true);
      expect(info.lastResultHash).to.equal(await w.coordinator.resultHashOf(resultOf("dissent")));
      await expect(w.coordinator.penalizeDissent(w.taskId, a2.address))
        .to.be.revertedWithCustomError(w.coordinator, "NoDissent")
        .withArgs(w.taskId, a2.address, 1n);
      // Agreeing aggregators and ones that never submitted owe nothing.
      await expect(w.coordinator.penalizeDissent(w.taskId, a0.address))
        .to.be.revertedWithCustomError(w.coordinator, "NoDissent")
        .withArgs(w.taskId, a0.address, 1n);
      await expect(w.coordinator.penalizeDissent(w.taskId, w.outsider.address))
        .to.be.revertedWithCustomError(w.coordinator, "NoDissent")
        .withArgs(w.taskId, w.outsider.address, 0n);
      // The bond must be topped up before the next submission.
      await expect(w.coordinator.connect(a2).bondAggregator(w.taskId))
        .to.emit(w.coordinator, "AggregatorBonded")
        .withArgs(w.taskId, a2.address, penalty, DEFAULTS.aggregatorBond);
    });

    it("settles the penalty lazily when the dissenter unbonds, so leaving does not dodge it", async function () {
      const w = await loadFixture(dissented);
      const a2 = w.aggregators[2];
      const penalty = slashOf(DEFAULTS.dissentPenaltyBps, DEFAULTS.aggregatorBond);
      await expect(w.coordinator.connect(a2).unbondAggregator(w.taskId))
        .to.emit(w.coordinator, "AggregatorPenalized")
        .withArgs(w.taskId, 1n, a2.address, penalty, DEFAULTS.aggregatorBond - penalty)
        .and.to.emit(w.coordinator, "AggregatorUnbonded")
        .withArgs(w.taskId, a2.address, DEFAULTS.aggregatorBond - penalty);
    });

    it("settles it lazily at the dissenter's next submission, which then needs a topped-up bond", async function () {
      const w = await loadFixture(dissented);
      const a2 = w.aggregators[2];
      await w.coordinator.openRound(w.taskId);
      await toAggregation(w);
      const penalty = slashOf(DEFAULTS.dissentPenaltyBps, DEFAULTS.aggregatorBond);
      await expect(w.coordinator.connect(a2).submitResult(w.taskId, 2n, resultOf("r2")))
        .to.be.revertedWithCustomError(w.coordinator, "AggregatorBondTooLow")
        .withArgs(w.taskId, a2.address, DEFAULTS.aggregatorBond, DEFAULTS.aggregatorBond - penalty);
      await w.coordinator.connect(a2).bondAggregator(w.taskId);
      await expect(w.coordinator.connect(a2).submitResult(w.taskId, 2n, resultOf("r2"))).to.emit(
        w.coordinator,
        "ResultSubmitted",
      );
    });

    it("two aggregators that disagree reach no quorum: the round fails, nobody is penalized", async function () {
      const w = await loadFixture(deployAggregation);
      const [a0, a1] = w.aggregators;
      await w.coordinator.connect(a0).submitResult(w.taskId, 1n, resultOf("left"));
      await w.coordinator.connect(a1).submitResult(w.taskId, 1n, resultOf("right"));
      await expect(w.coordinator.penalizeDissent(w.taskId, a0.address))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 1n, Phase.Aggregation, phases(Phase.Finalized));
      await toFailed(w);
      expect(await w.coordinator.roundPhase(w.taskId, 1n)).to.equal(Phase.Failed);
      await expect(w.coordinator.penalizeDissent(w.taskId, a0.address))
        .to.be.revertedWithCustomError(w.coordinator, "NoDissent")
        .withArgs(w.taskId, a0.address, 1n);
      expect(await w.coordinator.globalModel(w.taskId)).to.equal(DEFAULTS.genesisModelDigest);
      await expect(w.coordinator.penalizeDissent(4n, a0.address)).to.be.revertedWithCustomError(
        w.coordinator,
        "UnknownTask",
      );
    });
  });

  describe("failed rounds", function () {
    it("an aggregator that never submits: the round fails, its budget returns, the next opens on the same model", async function () {
      const w = await loadFixture(deployAggregation);
      await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 1n, resultOf("lonely"));
      await toFailed(w);
      expect(await w.coordinator.roundPhase(w.taskId, 1n)).to.equal(Phase.Failed);
      const escrow = (await w.coordinator.taskInfo(w.taskId)).rewardEscrow;
      await expect(w.coordinator.openRound(w.taskId))
        .to.emit(w.coordinator, "RoundBudgetReleased")
        .withArgs(w.taskId, 1n, DEFAULTS.rewardPerRound)
        .and.to.emit(w.coordinator, "RoundOpened")
        .withArgs(w.taskId, 2n, DEFAULTS.genesisModelDigest, DEFAULTS.rewardPerRound, () => true, () => true, () => true);
      // Released then reserved again: the escrow is unchanged.
      expect((await w.coordinator.taskInfo(w.taskId)).rewardEscrow).to.equal(escrow);
      expect(await w.coordinator.roundPhase(w.taskId, 1n)).to.equal(Phase.Failed);
      expect((await w.coordinator.roundInfo(w.taskId, 1n)).budget).to.equal(0n);
      // A past round keeps its outcome but not its deadlines.
      expect((await w.coordinator.roundInfo(w.taskId, 1n)).commitEnd).to.equal(0n);
    });
  });

  describe("slashNoReveal", function () {
    it("lets anyone slash a silent committer after the reveal phase, at the no-reveal rate", async function () {
      const w = await loadFixture(deployWithSilent);
      const p2 = w.participants[2];
      const escrow = (await w.coordinator.taskInfo(w.taskId)).rewardEscrow;
      const amount = slashOf(DEFAULTS.noRevealSlashBps);
      await expect(w.coordinator.connect(w.outsider).slashNoReveal(w.taskId, 1n, p2.address))
        .to.emit(w.coordinator, "Slashed")
        .withArgs(w.taskId, 1n, p2.address, Reason.NoReveal, amount);
      expect((await w.coordinator.taskInfo(w.taskId)).rewardEscrow).to.equal(escrow + amount);
      const info = await w.coordinator.participantInfo(w.taskId, p2.address);
      expect(info.stake).to.equal(STAKE - amount);
      expect(info.slashed).to.equal(true);
    });

    it("refuses during the reveal phase, for revealers, non-committers, other rounds, unknown tasks", async function () {
      const w = await loadFixture(deployRoundOpen);
      const [p0, p1, , p3] = w.participants;
      const u0 = updateOf(p0, 1n);
      await commitUpdate(w, u0, 1n);
      await commitUpdate(w, updateOf(p1, 1n), 1n);
      await toReveal(w);
      await expect(w.coordinator.slashNoReveal(w.taskId, 1n, p1.address))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 1n, Phase.Reveal, phases(Phase.Aggregation, Phase.Finalized, Phase.Failed));
      await revealUpdate(w, u0, 1n);
      await toAggregation(w);
      await expect(w.coordinator.slashNoReveal(w.taskId, 1n, p0.address))
        .to.be.revertedWithCustomError(w.coordinator, "NoUnrevealedCommitment")
        .withArgs(w.taskId, 1n, p0.address, 1n);
      await expect(w.coordinator.slashNoReveal(w.taskId, 1n, p3.address))
        .to.be.revertedWithCustomError(w.coordinator, "NoUnrevealedCommitment")
        .withArgs(w.taskId, 1n, p3.address, 0n);
      await expect(w.coordinator.slashNoReveal(w.taskId, 0n, p3.address))
        .to.be.revertedWithCustomError(w.coordinator, "NoUnrevealedCommitment")
        .withArgs(w.taskId, 0n, p3.address, 0n);
      await expect(w.coordinator.slashNoReveal(w.taskId, 2n, p1.address))
        .to.be.revertedWithCustomError(w.coordinator, "NoUnrevealedCommitment")
        .withArgs(w.taskId, 2n, p1.address, 1n);
      await expect(w.coordinator.slashNoReveal(6n, 1n, p1.address)).to.be.revertedWithCustomError(
        w.coordinator,
        "UnknownTask",
      );
    });
  });

  describe("claim", function () {
    async function finalizedWithRewards() {
      const w = await deployAggregation();
      const [p0, p1, p2] = w.participants;
      const rewards = rewardsTree([
        [p0.address, 500n * TOKEN],
        [p1.address, 250n * TOKEN],
        [p2.address, 250n * TOKEN],
      ]);
      const result = resultOf("paid", rewards);
      await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 1n, result);
      await w.coordinator.connect(w.aggregators[1]).submitResult(w.taskId, 1n, result);
      return { w, rewards };
    }

    it("pays each participant its leaf once, with RewardClaimed and balances", async function () {
      const { w, rewards } = await loadFixture(finalizedWithRewards);
      const [p0, p1] = w.participants;
      const proof = proofFor(rewards, p0.address);
      await expect(w.coordinator.connect(p0).claim(w.taskId, 1n, 500n * TOKEN, proof)).to.changeTokenBalances(
        ethers,
        w.token,
        [p0, w.coordinator],
        [500n * TOKEN, -500n * TOKEN],
      );
      expect(await w.coordinator.hasClaimed(w.taskId, 1n, p0.address)).to.equal(true);
      expect(await w.coordinator.hasClaimed(w.taskId, 1n, p1.address)).to.equal(false);
      expect((await w.coordinator.roundInfo(w.taskId, 1n)).unclaimedRewards).to.equal(500n * TOKEN);
      await expect(w.coordinator.connect(p0).claim(w.taskId, 1n, 500n * TOKEN, proof))
        .to.be.revertedWithCustomError(w.coordinator, "AlreadyClaimed")
        .withArgs(w.taskId, 1n, p0.address);
      await expect(w.coordinator.connect(p1).claim(w.taskId, 1n, 250n * TOKEN, proofFor(rewards, p1.address)))
        .to.emit(w.coordinator, "RewardClaimed")
        .withArgs(w.taskId, 1n, p1.address, 250n * TOKEN);
    });

    it("refuses a wrong amount, someone else's proof, and unfinalized rounds", async function () {
      const { w, rewards } = await loadFixture(finalizedWithRewards);
      const [p0, p1, , p3] = w.participants;
      await expect(w.coordinator.connect(p0).claim(w.taskId, 1n, 501n * TOKEN, proofFor(rewards, p0.address)))
        .to.be.revertedWithCustomError(w.coordinator, "InvalidRewardProof")
        .withArgs(w.taskId, 1n, p0.address, 501n * TOKEN);
      await expect(w.coordinator.connect(p3).claim(w.taskId, 1n, 250n * TOKEN, proofFor(rewards, p1.address)))
        .to.be.revertedWithCustomError(w.coordinator, "InvalidRewardProof")
        .withArgs(w.taskId, 1n, p3.address, 250n * TOKEN);
      await w.coordinator.openRound(w.taskId);
      await expect(w.coordinator.connect(p0).claim(w.taskId, 2n, 1n, []))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 2n, Phase.Commit, phases(Phase.Finalized));
      await expect(w.coordinator.connect(p0).claim(w.taskId, 3n, 1n, []))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 3n, Phase.None, phases(Phase.Finalized));
    });

    it("never pays out more than the round's rewardsTotal, whatever the tree promises", async function () {
      const w = await loadFixture(deployAggregation);
      const [p0, p1] = w.participants;
      // A (buggy or hostile) tree whose leaves add up to more than the declared total.
      const tree = rewardsTree([
        [p0.address, 600n * TOKEN],
        [p1.address, 600n * TOKEN],
      ]);
      const result = { ...resultOf("greedy", tree), rewardsTotal: 1_000n * TOKEN };
      await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 1n, result);
      await w.coordinator.connect(w.aggregators[1]).submitResult(w.taskId, 1n, result);
      await w.coordinator.connect(p0).claim(w.taskId, 1n, 600n * TOKEN, proofFor(tree, p0.address));
      await expect(w.coordinator.connect(p1).claim(w.taskId, 1n, 600n * TOKEN, proofFor(tree, p1.address)))
        .to.be.revertedWithCustomError(w.coordinator, "RewardsExhausted")
        .withArgs(w.taskId, 1n, 600n * TOKEN, 400n * TOKEN);
    });

    it("keeps claims of different rounds apart (one bitmap word per 256 rounds)", async function () {
      const { w, rewards } = await loadFixture(finalizedWithRewards);
      const [p0] = w.participants;
      await w.coordinator.openRound(w.taskId);
      await playCommitReveal(w, [updateOf(p0, 2n)], 2n);
      const r2 = rewardsTree([[p0.address, 7n]]);
      const result = resultOf("round 2", r2);
      await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 2n, result);
      await w.coordinator.connect(w.aggregators[1]).submitResult(w.taskId, 2n, result);
      await w.coordinator.connect(p0).claim(w.taskId, 2n, 7n, proofFor(r2, p0.address));
      expect(await w.coordinator.hasClaimed(w.taskId, 1n, p0.address)).to.equal(false);
      await w.coordinator.connect(p0).claim(w.taskId, 1n, 500n * TOKEN, proofFor(rewards, p0.address));
      expect(await w.coordinator.hasClaimed(w.taskId, 1n, p0.address)).to.equal(true);
      expect(await w.coordinator.hasClaimed(w.taskId, 257n, p0.address)).to.equal(false);
    });
  });
});
