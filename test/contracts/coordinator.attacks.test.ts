// Attacks on the coordinator, each played with real transactions: a re-entrant stake token,
// commitment replay across rounds, tasks, contracts and chains, copying a revealed update,
// withholding a reveal across storage-slot reuse, silent or dissenting aggregators, full rounds,
// and amounts at zero and at the top of their range.
import { expect } from "chai";
import type { ReentrantToken } from "../../types/ethers-contracts/index.js";
import {
  commitUpdate,
  commitmentFor,
  createTask,
  DEFAULTS,
  deployRoundOpen,
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
const U96 = 2n ** 96n - 1n;

async function finalize(w: World, round: bigint, result: ReturnType<typeof resultOf>) {
  await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, round, result);
  await w.coordinator.connect(w.aggregators[1]).submitResult(w.taskId, round, result);
}

describe("AnchorCoordinator attacks", function () {
  describe("a re-entrant malicious stake token", function () {
    async function hostileTask() {
      const w = await deployWorld();
      const evil = (await ethers.deployContract("ReentrantToken")) as unknown as ReentrantToken;
      const taskId = await createTask(w, { stakeToken: await evil.getAddress() });
      const [p] = w.participants;
      for (const s of [p, ...w.aggregators, w.owner]) {
        await evil.mint(s.address, 10_000n * TOKEN);
        await evil.connect(s).approve(w.coordinatorAddress, ethers.MaxUint256);
      }
      await w.coordinator.fund(taskId, 5_000n * TOKEN);
      await w.coordinator.connect(p).deposit(taskId, 1_000n * TOKEN);
      return { w, evil, taskId, p };
    }

    it("cannot re-enter withdraw while a withdrawal is paid out", async function () {
      const { w, evil, taskId, p } = await loadFixture(hostileTask);
      await w.coordinator.connect(p).requestWithdrawal(taskId, 400n * TOKEN);
      await time.increase(DEFAULTS.unbondingDelay);
      await evil.arm(w.coordinatorAddress, w.coordinator.interface.encodeFunctionData("withdraw", [taskId]));
      await expect(w.coordinator.connect(p).withdraw(taskId)).to.be.revertedWithCustomError(
        w.coordinator,
        "ReentrancyGuardReentrantCall",
      );
      // Nothing moved: the stake and the coordinator's balance are intact, and an honest retry pays once.
      expect((await w.coordinator.participantInfo(taskId, p.address)).stake).to.equal(1_000n * TOKEN);
      await evil.arm(ethers.ZeroAddress, "0x");
      await expect(w.coordinator.connect(p).withdraw(taskId)).to.changeTokenBalances(
        ethers,
        evil,
        [p, w.coordinator],
        [400n * TOKEN, -400n * TOKEN],
      );
    });

    it("cannot re-enter deposit, fund or claim from inside a token transfer", async function () {
      const { w, evil, taskId, p } = await loadFixture(hostileTask);
      const calls = [
        w.coordinator.interface.encodeFunctionData("deposit", [taskId, 1n]),
        w.coordinator.interface.encodeFunctionData("fund", [taskId, 1n]),
        w.coordinator.interface.encodeFunctionData("claim", [taskId, 1n, 1n, []]),
        w.coordinator.interface.encodeFunctionData("bondAggregator", [taskId]),
      ];
      for (const data of calls) {
        await evil.arm(w.coordinatorAddress, data);
        await expect(w.coordinator.connect(p).deposit(taskId, 5n)).to.be.revertedWithCustomError(
          w.coordinator,
          "ReentrancyGuardReentrantCall",
        );
      }
      expect(await evil.balanceOf(w.coordinatorAddress)).to.equal(6_000n * TOKEN);
    });

    it("cannot re-enter claim to be paid twice", async function () {
      const { w, evil, taskId, p } = await loadFixture(hostileTask);
      for (const a of w.aggregators) await w.coordinator.connect(a).bondAggregator(taskId);
      await w.coordinator.openRound(taskId);
      const u = updateOf(p, 1n);
      await commitUpdate(w, u, 1n, taskId);
      await time.increaseTo((await w.coordinator.roundInfo(taskId, 1n)).commitEnd);
      await revealUpdate(w, u, 1n, taskId);
      const rewards = rewardsTree([
        [p.address, 100n * TOKEN],
        [w.outsider.address, 1n],
      ]);
      const result = resultOf("paid", rewards);
      await w.coordinator.connect(w.aggregators[0]).submitResult(taskId, 1n, result);
      await w.coordinator.connect(w.aggregators[1]).submitResult(taskId, 1n, result);
      const proof = proofFor(rewards, p.address);
      await evil.arm(
        w.coordinatorAddress,
        w.coordinator.interface.encodeFunctionData("claim", [taskId, 1n, 100n * TOKEN, proof]),
      );
      await expect(w.coordinator.connect(p).claim(taskId, 1n, 100n * TOKEN, proof)).to.be.revertedWithCustomError(
        w.coordinator,
        "ReentrancyGuardReentrantCall",
      );
      expect(await w.coordinator.hasClaimed(taskId, 1n, p.address)).to.equal(false);
    });
  });

  describe("replaying a commitment", function () {
    it("in another round: the commitment binds the round, so its reveal never matches", async function () {
      const w = await loadFixture(deployRoundOpen);
      const [p] = w.participants;
      const u = updateOf(p, 1n);
      const c1 = commitmentFor(w, w.taskId, 1n, p.address, u.digest, u.salt);
      await playCommitReveal(w, [u], 1n);
      await finalize(w, 1n, resultOf("r1"));
      await w.coordinator.openRound(w.taskId);
      await w.coordinator.connect(p).commit(w.taskId, 2n, c1);
      await toReveal(w);
      await expect(revealUpdate(w, u, 2n))
        .to.be.revertedWithCustomError(w.coordinator, "CommitmentMismatch")
        .withArgs(w.taskId, 2n, p.address, c1, commitmentFor(w, w.taskId, 2n, p.address, u.digest, u.salt));
    });

    it("in another task, contract or chain, or by another participant: every binding changes the hash", async function () {
      const w = await loadFixture(deployRoundOpen);
      const [p, q] = w.participants;
      const u = updateOf(p, 1n);
      const original = commitmentFor(w, w.taskId, 1n, p.address, u.digest, u.salt);
      const other = await ethers.deployContract("AnchorCoordinator");
      const variants = [
        await w.coordinator.commitmentOf(w.taskId + 1n, 1n, p.address, u.digest, u.salt),
        await other.commitmentOf(w.taskId, 1n, p.address, u.digest, u.salt),
        commitmentFor({ ...w, chainId: w.chainId + 1n }, w.taskId, 1n, p.address, u.digest, u.salt),
        await w.coordinator.commitmentOf(w.taskId, 1n, q.address, u.digest, u.salt),
      ];
      expect(await w.coordinator.commitmentOf(w.taskId, 1n, p.address, u.digest, u.salt)).to.equal(original);
      expect(new Set([original, ...variants]).size).to.equal(5);
    });

    it("made for another chain or copied from another participant: accepted as bytes, never revealed", async function () {
      const w = await loadFixture(deployRoundOpen);
      const [p, q] = w.participants;
      const u = updateOf(p, 1n);
      const foreignChain = commitmentFor({ ...w, chainId: 1n }, w.taskId, 1n, p.address, u.digest, u.salt);
      await w.coordinator.connect(p).commit(w.taskId, 1n, foreignChain);
      // q copies p's (real) commitment hoping to reveal p's update as its own.
      const real = commitmentFor(w, w.taskId, 1n, p.address, u.digest, u.salt);
      await w.coordinator.connect(q).commit(w.taskId, 1n, real);
      await toReveal(w);
      await expect(revealUpdate(w, u, 1n)).to.be.revertedWithCustomError(w.coordinator, "CommitmentMismatch");
      await expect(revealUpdate(w, { ...u, signer: q }, 1n))
        .to.be.revertedWithCustomError(w.coordinator, "CommitmentMismatch")
        .withArgs(w.taskId, 1n, q.address, real, commitmentFor(w, w.taskId, 1n, q.address, u.digest, u.salt));
      expect((await w.coordinator.roundInfo(w.taskId, 1n)).revealCount).to.equal(0n);
    });
  });

  describe("copying a revealed update", function () {
    it("is impossible in the same round: reveals start only after commits have closed", async function () {
      const w = await loadFixture(deployRoundOpen);
      const [p, copier, slow] = w.participants;
      const u = updateOf(p, 1n);
      await commitUpdate(w, u, 1n);
      await commitUpdate(w, updateOf(slow, 1n), 1n);
      // While commits are open, nothing is revealed yet: a reveal is refused.
      await expect(revealUpdate(w, u, 1n))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 1n, Phase.Commit, phases(Phase.Reveal));
      await toReveal(w);
      await revealUpdate(w, u, 1n);
      // Now the digest is public, but the commit phase is over.
      const copied = commitmentFor(w, w.taskId, 1n, copier.address, u.digest, ethers.id("copier salt"));
      await expect(w.coordinator.connect(copier).commit(w.taskId, 1n, copied))
        .to.be.revertedWithCustomError(w.coordinator, "UnexpectedRoundPhase")
        .withArgs(w.taskId, 1n, Phase.Reveal, phases(Phase.Commit));
    });

    it("re-submitted in a later round, it is slashed as a duplicate on the aggregators' word", async function () {
      const w = await loadFixture(deployRoundOpen);
      const [p, copier] = w.participants;
      const u = updateOf(p, 1n);
      await playCommitReveal(w, [u], 1n);
      await finalize(w, 1n, resultOf("r1"));
      await w.coordinator.openRound(w.taskId);
      const stale = { ...u, signer: copier, salt: ethers.id("copier salt") };
      await playCommitReveal(w, [stale], 2n);
      const result = resultOf("r2", undefined, [{ participant: copier.address, reason: Reason.Duplicate }]);
      await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 2n, result);
      await expect(w.coordinator.connect(w.aggregators[1]).submitResult(w.taskId, 2n, result))
        .to.emit(w.coordinator, "Slashed")
        .withArgs(w.taskId, 2n, copier.address, Reason.Duplicate, (1_000n * TOKEN * DEFAULTS.duplicateSlashBps) / 10_000n);
    });
  });

  describe("committing and never revealing", function () {
    it("is slashed by anyone after the reveal phase", async function () {
      const w = await loadFixture(deployRoundOpen);
      const [p] = w.participants;
      await commitUpdate(w, updateOf(p, 1n), 1n);
      await toAggregation(w);
      await expect(w.coordinator.connect(w.outsider).slashNoReveal(w.taskId, 1n, p.address))
        .to.emit(w.coordinator, "Slashed")
        .withArgs(w.taskId, 1n, p.address, Reason.NoReveal, (1_000n * TOKEN * DEFAULTS.noRevealSlashBps) / 10_000n);
    });

    it("cannot hide behind slot reuse: the next commit slashes the old unrevealed one first", async function () {
      const w = await loadFixture(deployRoundOpen);
      const [p] = w.participants;
      await commitUpdate(w, updateOf(p, 1n), 1n);
      await toFailed(w);
      await w.coordinator.openRound(w.taskId);
      const amount = (1_000n * TOKEN * DEFAULTS.noRevealSlashBps) / 10_000n;
      const tx = commitUpdate(w, updateOf(p, 2n), 2n);
      await expect(tx).to.emit(w.coordinator, "Slashed").withArgs(w.taskId, 1n, p.address, Reason.NoReveal, amount);
      await expect(tx).to.emit(w.coordinator, "Committed");
      const info = await w.coordinator.participantInfo(w.taskId, p.address);
      expect(info.stake).to.equal(1_000n * TOKEN - amount);
      expect(info.lastRound).to.equal(2n);
      expect(info.slashed).to.equal(false);
    });

    it("a slashed participant left below the minimum cannot commit again", async function () {
      const w = await loadFixture(deployWorld);
      const [p] = w.participants;
      await w.coordinator.connect(p).deposit(w.taskId, DEFAULTS.minStake);
      for (const a of w.aggregators) await w.coordinator.connect(a).bondAggregator(w.taskId);
      await w.coordinator.openRound(w.taskId);
      await commitUpdate(w, updateOf(p, 1n), 1n);
      await toFailed(w);
      await w.coordinator.openRound(w.taskId);
      const left = DEFAULTS.minStake - (DEFAULTS.minStake * DEFAULTS.noRevealSlashBps) / 10_000n;
      await expect(commitUpdate(w, updateOf(p, 2n), 2n))
        .to.be.revertedWithCustomError(w.coordinator, "InsufficientFreeStake")
        .withArgs(w.taskId, p.address, DEFAULTS.minStake, left);
    });
  });

  describe("aggregators", function () {
    it("one that never submits: no quorum, the round fails, the next one opens with the model unchanged and finalizes", async function () {
      const w = await loadFixture(deployRoundOpen);
      await playCommitReveal(w, [updateOf(w.participants[0], 1n)], 1n);
      await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 1n, resultOf("alone"));
      await toFailed(w);
      expect(await w.coordinator.roundPhase(w.taskId, 1n)).to.equal(Phase.Failed);
      await w.coordinator.openRound(w.taskId);
      expect(await w.coordinator.globalModel(w.taskId)).to.equal(DEFAULTS.genesisModelDigest);
      await playCommitReveal(w, [updateOf(w.participants[0], 2n)], 2n);
      await finalize(w, 2n, resultOf("r2"));
      expect(await w.coordinator.globalModel(w.taskId)).to.equal(resultOf("r2").newModelDigest);
      expect(await w.coordinator.roundPhase(w.taskId, 1n)).to.equal(Phase.Failed);
      expect(await w.coordinator.roundPhase(w.taskId, 2n)).to.equal(Phase.Finalized);
    });

    it("two that disagree and a third that sides with one: the dissenter pays", async function () {
      const w = await loadFixture(deployRoundOpen);
      await playCommitReveal(w, [updateOf(w.participants[0], 1n)], 1n);
      const [a0, a1, a2] = w.aggregators;
      await w.coordinator.connect(a0).submitResult(w.taskId, 1n, resultOf("honest"));
      await w.coordinator.connect(a1).submitResult(w.taskId, 1n, resultOf("forged"));
      await w.coordinator.connect(a2).submitResult(w.taskId, 1n, resultOf("honest"));
      expect(await w.coordinator.globalModel(w.taskId)).to.equal(resultOf("honest").newModelDigest);
      await expect(w.coordinator.penalizeDissent(w.taskId, a1.address)).to.emit(w.coordinator, "AggregatorPenalized");
    });
  });

  describe("amounts at the edges", function () {
    it("huge: stake, budget, reward and a 100% slash at uint96 max stay exact", async function () {
      const w = await loadFixture(deployWorld);
      const [p, q] = w.participants;
      const taskId = await createTask(w, {
        minStake: U96,
        rewardPerRound: U96,
        invalidSlashBps: 10_000n,
        maxParticipants: 2n,
      });
      await w.token.mint(w.owner.address, U96);
      await w.coordinator.fund(taskId, U96);
      for (const s of [p, q]) {
        await w.token.mint(s.address, U96);
        await w.coordinator.connect(s).deposit(taskId, U96);
      }
      for (const a of w.aggregators) await w.coordinator.connect(a).bondAggregator(taskId);
      await w.coordinator.openRound(taskId);
      const [up, uq] = [updateOf(p, 1n), updateOf(q, 1n)];
      await commitUpdate(w, up, 1n, taskId);
      await commitUpdate(w, uq, 1n, taskId);
      await revealUpdate(w, up, 1n, taskId);
      await revealUpdate(w, uq, 1n, taskId);
      const rewards = rewardsTree([[p.address, U96]]);
      const result = resultOf("huge", rewards, [{ participant: q.address, reason: Reason.Invalid }]);
      await w.coordinator.connect(w.aggregators[0]).submitResult(taskId, 1n, result);
      await expect(w.coordinator.connect(w.aggregators[1]).submitResult(taskId, 1n, result))
        .to.emit(w.coordinator, "Slashed")
        .withArgs(taskId, 1n, q.address, Reason.Invalid, U96);
      expect((await w.coordinator.participantInfo(taskId, q.address)).stake).to.equal(0n);
      expect((await w.coordinator.taskInfo(taskId)).rewardEscrow).to.equal(U96);
      await expect(w.coordinator.connect(p).claim(taskId, 1n, U96, proofFor(rewards, p.address))).to.changeTokenBalances(
        ethers,
        w.token,
        [p],
        [U96],
      );
    });

    it("zero: every amount-taking call refuses zero; zero rates and zero rewards are legal", async function () {
      const w = await loadFixture(deployWorld);
      const [p] = w.participants;
      for (const call of [
        w.coordinator.fund(w.taskId, 0n),
        w.coordinator.connect(p).deposit(w.taskId, 0n),
        w.coordinator.connect(p).requestWithdrawal(w.taskId, 0n),
      ]) {
        await expect(call).to.be.revertedWithCustomError(w.coordinator, "ZeroAmount");
      }
      const taskId = await createTask(w, { rewardPerRound: 0n, noRevealSlashBps: 0n });
      await w.coordinator.connect(p).deposit(taskId, DEFAULTS.minStake);
      await w.coordinator.openRound(taskId);
      await commitUpdate(w, updateOf(p, 1n), 1n, taskId);
      await time.increaseTo((await w.coordinator.roundInfo(taskId, 1n)).revealEnd);
      await expect(w.coordinator.slashNoReveal(taskId, 1n, p.address))
        .to.emit(w.coordinator, "Slashed")
        .withArgs(taskId, 1n, p.address, Reason.NoReveal, 0n);
      expect((await w.coordinator.participantInfo(taskId, p.address)).stake).to.equal(DEFAULTS.minStake);
    });
  });
});
