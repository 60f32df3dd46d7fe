// Stake on the coordinator: deposit (also with an EIP-2612 permit), request withdrawal, withdraw
// after the unbonding delay, and the locks that keep staked misbehaviour from leaving.
import { expect } from "chai";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { DemoToken } from "../../types/ethers-contracts/index.js";
import {
  commitUpdate,
  createTask,
  DEFAULTS,
  deployRoundOpen,
  deployWorld,
  ethers,
  networkHelpers,
  nextBlockAt,
  Phase,
  Reason,
  revealUpdate,
  resultOf,
  toAggregation,
  toFailed,
  toReveal,
  TOKEN,
  updateOf,
  type World,
} from "./fixtures.js";

const { loadFixture, time } = networkHelpers;
const U96 = 2n ** 96n - 1n;

async function signPermit(token: DemoToken, owner: HardhatEthersSigner, spender: string, value: bigint, deadline: bigint) {
  const domain = {
    name: await token.name(),
    version: "1",
    chainId: (await ethers.provider.getNetwork()).chainId,
    verifyingContract: await token.getAddress(),
  };
  const types = {
    Permit: [
      { name: "owner", type: "address" },
      { name: "spender", type: "address" },
      { name: "value", type: "uint256" },
      { name: "nonce", type: "uint256" },
      { name: "deadline", type: "uint256" },
    ],
  };
  const nonce = await token.nonces(owner.address);
  const sig = ethers.Signature.from(
    await owner.signTypedData(domain, types, { owner: owner.address, spender, value, nonce, deadline }),
  );
  return { v: sig.v, r: sig.r, s: sig.s };
}

describe("AnchorCoordinator stake", function () {
  describe("deposit", function () {
    it("moves tokens into the stake and emits Deposited with the new total", async function () {
      const w = await loadFixture(deployWorld);
      const [p] = w.participants;
      await expect(w.coordinator.connect(p).deposit(w.taskId, 300n * TOKEN))
        .to.emit(w.coordinator, "Deposited")
        .withArgs(w.taskId, p.address, 300n * TOKEN, 300n * TOKEN);
      await expect(w.coordinator.connect(p).deposit(w.taskId, 200n * TOKEN)).to.changeTokenBalances(
        ethers,
        w.token,
        [p, w.coordinator],
        [-200n * TOKEN, 200n * TOKEN],
      );
      const info = await w.coordinator.participantInfo(w.taskId, p.address);
      expect(info.stake).to.equal(500n * TOKEN);
      expect(info.pendingWithdrawal).to.equal(0n);
      expect(info.lastRound).to.equal(0n);
    });

    it("keeps stakes per task", async function () {
      const w = await loadFixture(deployWorld);
      const [p] = w.participants;
      const other = await createTask(w);
      await w.coordinator.connect(p).deposit(other, 7n);
      expect((await w.coordinator.participantInfo(w.taskId, p.address)).stake).to.equal(0n);
      expect((await w.coordinator.participantInfo(other, p.address)).stake).to.equal(7n);
    });

    it("refuses zero, an unknown task, and a total that would not fit (huge amounts)", async function () {
      const w = await loadFixture(deployWorld);
      const [p] = w.participants;
      await expect(w.coordinator.connect(p).deposit(w.taskId, 0n)).to.be.revertedWithCustomError(
        w.coordinator,
        "ZeroAmount",
      );
      await expect(w.coordinator.connect(p).deposit(4n, 1n))
        .to.be.revertedWithCustomError(w.coordinator, "UnknownTask")
        .withArgs(4n, 2n);
      await w.token.mint(p.address, U96 + 1n);
      await expect(w.coordinator.connect(p).deposit(w.taskId, U96 + 1n))
        .to.be.revertedWithCustomError(w.coordinator, "AmountTooLarge")
        .withArgs(U96 + 1n, U96);
      await w.coordinator.connect(p).deposit(w.taskId, U96 - 5n);
      await expect(w.coordinator.connect(p).deposit(w.taskId, 6n))
        .to.be.revertedWithCustomError(w.coordinator, "AmountTooLarge")
        .withArgs(6n, 5n);
      await w.coordinator.connect(p).deposit(w.taskId, 5n);
      expect((await w.coordinator.participantInfo(w.taskId, p.address)).stake).to.equal(U96);
    });

    it("refuses a token that delivers less than was sent", async function () {
      const w = await loadFixture(deployWorld);
      const fee = await ethers.deployContract("FeeOnTransferToken");
      const [p] = w.participants;
      await fee.mint(p.address, 1_000n);
      await fee.connect(p).approve(w.coordinatorAddress, 1_000n);
      const taskId = await createTask(w, { stakeToken: await fee.getAddress() });
      await expect(w.coordinator.connect(p).deposit(taskId, 1_000n))
        .to.be.revertedWithCustomError(w.coordinator, "UnsupportedTokenTransfer")
        .withArgs(await fee.getAddress(), 1_000n, 990n);
    });
  });

  describe("depositWithPermit", function () {
    it("stakes in one transaction without a prior approve", async function () {
      const w = await loadFixture(deployWorld);
      const [p] = w.participants;
      await w.token.connect(p).approve(w.coordinatorAddress, 0n);
      const deadline = BigInt(await time.latest()) + 3_600n;
      const { v, r, s } = await signPermit(w.token, p, w.coordinatorAddress, 400n * TOKEN, deadline);
      await expect(
        w.coordinator.connect(p).depositWithPermit(w.taskId, 400n * TOKEN, deadline, v, r, s),
      ).to.changeTokenBalances(ethers, w.token, [p, w.coordinator], [-400n * TOKEN, 400n * TOKEN]);
      expect((await w.coordinator.participantInfo(w.taskId, p.address)).stake).to.equal(400n * TOKEN);
      expect(await w.token.allowance(p.address, w.coordinatorAddress)).to.equal(0n);
    });

    it("tolerates a permit that was front-run: the allowance is already there", async function () {
      const w = await loadFixture(deployWorld);
      const [p] = w.participants;
      await w.token.connect(p).approve(w.coordinatorAddress, 0n);
      const deadline = BigInt(await time.latest()) + 3_600n;
      const { v, r, s } = await signPermit(w.token, p, w.coordinatorAddress, 400n * TOKEN, deadline);
      // Someone copies the signature from the mempool and submits the permit first.
      await w.token.connect(w.outsider).permit(p.address, w.coordinatorAddress, 400n * TOKEN, deadline, v, r, s);
      await expect(w.coordinator.connect(p).depositWithPermit(w.taskId, 400n * TOKEN, deadline, v, r, s))
        .to.emit(w.coordinator, "Deposited")
        .withArgs(w.taskId, p.address, 400n * TOKEN, 400n * TOKEN);
    });

    it("refuses when the permit fails and no allowance covers the amount", async function () {
      const w = await loadFixture(deployWorld);
      const [p] = w.participants;
      await w.token.connect(p).approve(w.coordinatorAddress, 10n);
      const deadline = BigInt(await time.latest()) + 3_600n;
      const { v, r, s } = await signPermit(w.token, w.outsider, w.coordinatorAddress, 400n * TOKEN, deadline);
      await expect(w.coordinator.connect(p).depositWithPermit(w.taskId, 400n * TOKEN, deadline, v, r, s))
        .to.be.revertedWithCustomError(w.coordinator, "PermitAllowanceTooLow")
        .withArgs(await w.token.getAddress(), p.address, 400n * TOKEN, 10n);
      await expect(
        w.coordinator.connect(p).depositWithPermit(8n, 1n, deadline, v, r, s),
      ).to.be.revertedWithCustomError(w.coordinator, "UnknownTask");
    });
  });

  describe("withdrawal", function () {
    async function staked(): Promise<World> {
      const w = await deployWorld();
      await w.coordinator.connect(w.participants[0]).deposit(w.taskId, 1_000n * TOKEN);
      return w;
    }

    it("requests, waits out the unbonding delay, then pays out the pending amount", async function () {
      const w = await loadFixture(staked);
      const [p] = w.participants;
      const t = BigInt(await time.latest()) + 1n;
      await nextBlockAt(t);
      await expect(w.coordinator.connect(p).requestWithdrawal(w.taskId, 300n * TOKEN))
        .to.emit(w.coordinator, "WithdrawalRequested")
        .withArgs(w.taskId, p.address, 300n * TOKEN, 300n * TOKEN, t + DEFAULTS.unbondingDelay);
      const info = await w.coordinator.participantInfo(w.taskId, p.address);
      expect(info.pendingWithdrawal).to.equal(300n * TOKEN);
      expect(info.unlockAt).to.equal(t + DEFAULTS.unbondingDelay);

      await nextBlockAt(t + DEFAULTS.unbondingDelay - 1n);
      await expect(w.coordinator.connect(p).withdraw(w.taskId))
        .to.be.revertedWithCustomError(w.coordinator, "WithdrawalNotUnlocked")
        .withArgs(w.taskId, p.address, t + DEFAULTS.unbondingDelay, t + DEFAULTS.unbondingDelay - 1n);
      await nextBlockAt(t + DEFAULTS.unbondingDelay);
      await expect(w.coordinator.connect(p).withdraw(w.taskId)).to.changeTokenBalances(
        ethers,
        w.token,
        [p, w.coordinator],
        [300n * TOKEN, -300n * TOKEN],
      );
      const after = await w.coordinator.participantInfo(w.taskId, p.address);
      expect(after.stake).to.equal(700n * TOKEN);
      expect(after.pendingWithdrawal).to.equal(0n);
    });

    it("emits Withdrawn with the stake left", async function () {
      const w = await loadFixture(staked);
      const [p] = w.participants;
      await w.coordinator.connect(p).requestWithdrawal(w.taskId, 1_000n * TOKEN);
      await time.increase(DEFAULTS.unbondingDelay);
      await expect(w.coordinator.connect(p).withdraw(w.taskId))
        .to.emit(w.coordinator, "Withdrawn")
        .withArgs(w.taskId, p.address, 1_000n * TOKEN, 0n);
    });

    it("adds to the pending amount and restarts the delay", async function () {
      const w = await loadFixture(staked);
      const [p] = w.participants;
      await w.coordinator.connect(p).requestWithdrawal(w.taskId, 100n * TOKEN);
      await time.increase(40n);
      const t = BigInt(await time.latest()) + 1n;
      await nextBlockAt(t);
      await expect(w.coordinator.connect(p).requestWithdrawal(w.taskId, 50n * TOKEN))
        .to.emit(w.coordinator, "WithdrawalRequested")
        .withArgs(w.taskId, p.address, 50n * TOKEN, 150n * TOKEN, t + DEFAULTS.unbondingDelay);
    });

    it("refuses zero, more than the free stake, and withdrawing with nothing pending", async function () {
      const w = await loadFixture(staked);
      const [p] = w.participants;
      await expect(w.coordinator.connect(p).requestWithdrawal(w.taskId, 0n)).to.be.revertedWithCustomError(
        w.coordinator,
        "ZeroAmount",
      );
      await w.coordinator.connect(p).requestWithdrawal(w.taskId, 600n * TOKEN);
      await expect(w.coordinator.connect(p).requestWithdrawal(w.taskId, 401n * TOKEN))
        .to.be.revertedWithCustomError(w.coordinator, "InsufficientFreeStake")
        .withArgs(w.taskId, p.address, 401n * TOKEN, 400n * TOKEN);
      await expect(w.coordinator.connect(w.outsider).withdraw(w.taskId))
        .to.be.revertedWithCustomError(w.coordinator, "NoPendingWithdrawal")
        .withArgs(w.taskId, w.outsider.address);
      await expect(w.coordinator.connect(p).requestWithdrawal(5n, 1n)).to.be.revertedWithCustomError(
        w.coordinator,
        "UnknownTask",
      );
      await expect(w.coordinator.connect(p).withdraw(5n)).to.be.revertedWithCustomError(w.coordinator, "UnknownTask");
    });
  });

  describe("locks", function () {
    it("keeps stake that backs a commitment until its round is finished", async function () {
      const w = await loadFixture(deployRoundOpen);
      const [p] = w.participants;
      const u = updateOf(p, 1n);
      await commitUpdate(w, u, 1n);
      // Requesting is allowed (the stake stays slashable), leaving is not.
      await w.coordinator.connect(p).requestWithdrawal(w.taskId, 1_000n * TOKEN);
      await time.increase(DEFAULTS.unbondingDelay);
      await expect(w.coordinator.connect(p).withdraw(w.taskId))
        .to.be.revertedWithCustomError(w.coordinator, "StakeLocked")
        .withArgs(w.taskId, p.address, 1n, Phase.Commit);
      await toReveal(w);
      await revealUpdate(w, u, 1n);
      await toAggregation(w);
      await expect(w.coordinator.connect(p).withdraw(w.taskId))
        .to.be.revertedWithCustomError(w.coordinator, "StakeLocked")
        .withArgs(w.taskId, p.address, 1n, Phase.Aggregation);
      // Finalized as an outlier: the slash takes its share of the whole stake, pending part included.
      const result = resultOf("r1", undefined, [{ participant: p.address, reason: Reason.Outlier }]);
      await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 1n, result);
      await w.coordinator.connect(w.aggregators[1]).submitResult(w.taskId, 1n, result);
      const slashed = (1_000n * TOKEN * DEFAULTS.outlierSlashBps) / 10_000n;
      const left = 1_000n * TOKEN - slashed;
      const info = await w.coordinator.participantInfo(w.taskId, p.address);
      expect(info.stake).to.equal(left);
      expect(info.pendingWithdrawal).to.equal(left);
      await expect(w.coordinator.connect(p).withdraw(w.taskId)).to.changeTokenBalances(
        ethers,
        w.token,
        [p, w.coordinator],
        [left, -left],
      );
    });

    it("misbehave-then-exit: request during the round, withhold the reveal, try to leave: slashed first", async function () {
      const w = await loadFixture(deployRoundOpen);
      const [p] = w.participants;
      await commitUpdate(w, updateOf(p, 1n), 1n);
      await w.coordinator.connect(p).requestWithdrawal(w.taskId, 1_000n * TOKEN);
      await toFailed(w);
      const slashed = (1_000n * TOKEN * DEFAULTS.noRevealSlashBps) / 10_000n;
      const escrow = (await w.coordinator.taskInfo(w.taskId)).rewardEscrow;
      await expect(w.coordinator.connect(p).withdraw(w.taskId))
        .to.emit(w.coordinator, "Slashed")
        .withArgs(w.taskId, 1n, p.address, Reason.NoReveal, slashed)
        .and.to.emit(w.coordinator, "Withdrawn")
        .withArgs(w.taskId, p.address, 1_000n * TOKEN - slashed, 0n);
      expect((await w.coordinator.taskInfo(w.taskId)).rewardEscrow).to.equal(escrow + slashed);
    });

    it("a withdrawal request after the round also pays the overdue no-reveal slash first", async function () {
      const w = await loadFixture(deployRoundOpen);
      const [p] = w.participants;
      await commitUpdate(w, updateOf(p, 1n), 1n);
      await toAggregation(w);
      const slashed = (1_000n * TOKEN * DEFAULTS.noRevealSlashBps) / 10_000n;
      await expect(w.coordinator.connect(p).requestWithdrawal(w.taskId, 1_000n * TOKEN))
        .to.be.revertedWithCustomError(w.coordinator, "InsufficientFreeStake")
        .withArgs(w.taskId, p.address, 1_000n * TOKEN, 1_000n * TOKEN - slashed);
      await expect(w.coordinator.connect(p).requestWithdrawal(w.taskId, 100n * TOKEN))
        .to.emit(w.coordinator, "Slashed")
        .withArgs(w.taskId, 1n, p.address, Reason.NoReveal, slashed);
      // Once slashed, the same commitment is never slashed again.
      await expect(w.coordinator.slashNoReveal(w.taskId, 1n, p.address))
        .to.be.revertedWithCustomError(w.coordinator, "NoUnrevealedCommitment")
        .withArgs(w.taskId, 1n, p.address, 1n);
      expect(await w.coordinator.roundPhase(w.taskId, 1n)).to.equal(Phase.Aggregation);
    });
  });
});
