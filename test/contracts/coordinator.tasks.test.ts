// Tasks on the coordinator: creation with every config field validated, ownership, funding the
// reward escrow, and the views the off-chain tools read.
import { expect } from "chai";
import {
  DEFAULTS,
  deployWorld,
  ethers,
  Field,
  makeConfig,
  networkHelpers,
  TOKEN,
  type World,
} from "./fixtures.js";

const { loadFixture } = networkHelpers;
const U96 = 2n ** 96n - 1n;
const DAY = 86_400n;

describe("AnchorCoordinator tasks", function () {
  async function config(w: World, overrides: Record<string, unknown> = {}) {
    return makeConfig(
      await w.token.getAddress(),
      w.aggregators.map((a) => a.address),
      overrides,
    );
  }

  describe("createTask", function () {
    it("creates task 1 owned by the caller, with the full config in TaskCreated and the views", async function () {
      const w = await loadFixture(deployWorld);
      const c = await config(w);
      await expect(w.coordinator.connect(w.outsider).createTask(c))
        .to.emit(w.coordinator, "TaskCreated")
        .withArgs(2n, w.outsider.address, (emitted: { minStake: bigint; aggregators: string[] }) => {
          return emitted.minStake === DEFAULTS.minStake && emitted.aggregators.length === 3;
        });
      expect(await w.coordinator.nextTaskId()).to.equal(3n);
      const stored = await w.coordinator.taskConfig(2n);
      expect(stored.stakeToken).to.equal(await w.token.getAddress());
      expect(stored.maxParticipants).to.equal(DEFAULTS.maxParticipants);
      expect(stored.quorum).to.equal(DEFAULTS.quorum);
      expect(stored.dissentPenaltyBps).to.equal(DEFAULTS.dissentPenaltyBps);
      expect(stored.modelSpecDigest).to.equal(DEFAULTS.modelSpecDigest);
      expect([...stored.aggregators]).to.deep.equal(w.aggregators.map((a) => a.address));
      const info = await w.coordinator.taskInfo(2n);
      expect(info.owner).to.equal(w.outsider.address);
      expect(info.rewardEscrow).to.equal(0n);
      expect(info.globalModelDigest).to.equal(DEFAULTS.genesisModelDigest);
      expect(info.currentRound).to.equal(0n);
      expect(await w.coordinator.globalModel(2n)).to.equal(DEFAULTS.genesisModelDigest);
      expect(await w.coordinator.currentRound(2n)).to.equal(0n);
      const agg = await w.coordinator.aggregatorInfo(2n, w.aggregators[0].address);
      expect(agg.member).to.equal(true);
      expect(agg.bond).to.equal(0n);
      expect((await w.coordinator.aggregatorInfo(2n, w.outsider.address)).member).to.equal(false);
    });

    const cases: [string, Record<string, unknown>, Field, bigint, bigint, bigint][] = [
      ["a zero minimum stake", { minStake: 0n }, Field.MinStake, 0n, 1n, U96],
      ["a zero aggregator bond", { aggregatorBond: 0n }, Field.AggregatorBond, 0n, 1n, U96],
      ["a zero commit window", { commitWindow: 0n }, Field.CommitWindow, 0n, 1n, 30n * DAY],
      ["a too long reveal window", { revealWindow: 30n * DAY + 1n }, Field.RevealWindow, 30n * DAY + 1n, 1n, 30n * DAY],
      ["a zero aggregation window", { aggregationWindow: 0n }, Field.AggregationWindow, 0n, 1n, 30n * DAY],
      ["a too long unbonding delay", { unbondingDelay: 365n * DAY + 1n }, Field.UnbondingDelay, 365n * DAY + 1n, 0n, 365n * DAY],
      ["zero max participants", { maxParticipants: 0n }, Field.MaxParticipants, 0n, 1n, 10_000n],
      ["too many max participants", { maxParticipants: 10_001n }, Field.MaxParticipants, 10_001n, 1n, 10_000n],
      ["an outlier rate over 100%", { outlierSlashBps: 10_001n }, Field.OutlierSlashBps, 10_001n, 0n, 10_000n],
      ["a no-reveal rate over 100%", { noRevealSlashBps: 10_001n }, Field.NoRevealSlashBps, 10_001n, 0n, 10_000n],
      ["an invalid rate over 100%", { invalidSlashBps: 65_535n }, Field.InvalidSlashBps, 65_535n, 0n, 10_000n],
      ["a duplicate rate over 100%", { duplicateSlashBps: 10_001n }, Field.DuplicateSlashBps, 10_001n, 0n, 10_000n],
      ["a dissent penalty over 100%", { dissentPenaltyBps: 10_001n }, Field.DissentPenaltyBps, 10_001n, 0n, 10_000n],
      ["an empty aggregator set", { aggregators: [], quorum: 1n }, Field.Aggregators, 0n, 1n, 16n],
      ["a zero quorum", { quorum: 0n }, Field.Quorum, 0n, 1n, 3n],
      ["a quorum above the set", { quorum: 4n }, Field.Quorum, 4n, 1n, 3n],
      ["a zero genesis model", { genesisModelDigest: ethers.ZeroHash }, Field.GenesisModelDigest, 0n, 1n, 2n ** 256n - 1n],
      ["a zero model spec", { modelSpecDigest: ethers.ZeroHash }, Field.ModelSpecDigest, 0n, 1n, 2n ** 256n - 1n],
    ];
    for (const [name, overrides, field, found, min, max] of cases) {
      it(`rejects ${name} with InvalidTaskConfig`, async function () {
        const w = await loadFixture(deployWorld);
        await expect(w.coordinator.createTask(await config(w, overrides)))
          .to.be.revertedWithCustomError(w.coordinator, "InvalidTaskConfig")
          .withArgs(field, found, min, max);
      });
    }

    it("rejects a stake token that is not a contract", async function () {
      const w = await loadFixture(deployWorld);
      for (const token of [ethers.ZeroAddress, w.outsider.address]) {
        await expect(w.coordinator.createTask(await config(w, { stakeToken: token })))
          .to.be.revertedWithCustomError(w.coordinator, "InvalidTaskConfig")
          .withArgs(Field.StakeToken, BigInt(token), 1n, 2n ** 160n - 1n);
      }
    });

    it("rejects more than 16 aggregators, a zero aggregator and a duplicate", async function () {
      const w = await loadFixture(deployWorld);
      const many = Array.from({ length: 17 }, (_, i) => ethers.toBeHex(i + 1, 20));
      await expect(w.coordinator.createTask(await config(w, { aggregators: many })))
        .to.be.revertedWithCustomError(w.coordinator, "InvalidTaskConfig")
        .withArgs(Field.Aggregators, 17n, 1n, 16n);
      const [a, b] = w.aggregators.map((x) => x.address);
      await expect(w.coordinator.createTask(await config(w, { aggregators: [a, ethers.ZeroAddress, b] })))
        .to.be.revertedWithCustomError(w.coordinator, "InvalidAggregator")
        .withArgs(1n, ethers.ZeroAddress);
      await expect(w.coordinator.createTask(await config(w, { aggregators: [a, b, a] })))
        .to.be.revertedWithCustomError(w.coordinator, "InvalidAggregator")
        .withArgs(2n, a);
    });

    it("accepts the extremes of every range", async function () {
      const w = await loadFixture(deployWorld);
      const sixteen = Array.from({ length: 16 }, (_, i) => ethers.toBeHex(i + 1, 20));
      const extreme = await config(w, {
        minStake: U96,
        aggregatorBond: U96,
        rewardPerRound: U96,
        commitWindow: 1n,
        revealWindow: 30n * DAY,
        aggregationWindow: 1n,
        unbondingDelay: 0n,
        maxParticipants: 10_000n,
        outlierSlashBps: 10_000n,
        noRevealSlashBps: 0n,
        aggregators: sixteen,
        quorum: 16n,
      });
      await expect(w.coordinator.createTask(extreme)).to.emit(w.coordinator, "TaskCreated");
    });
  });

  describe("ownership", function () {
    it("lets the owner hand the task over; the new owner opens rounds, the old one cannot", async function () {
      const w = await loadFixture(deployWorld);
      await expect(w.coordinator.transferTaskOwnership(w.taskId, w.outsider.address))
        .to.emit(w.coordinator, "TaskOwnershipTransferred")
        .withArgs(w.taskId, w.owner.address, w.outsider.address);
      expect((await w.coordinator.taskInfo(w.taskId)).owner).to.equal(w.outsider.address);
      await expect(w.coordinator.openRound(w.taskId))
        .to.be.revertedWithCustomError(w.coordinator, "NotTaskOperator")
        .withArgs(w.taskId, w.owner.address);
      await expect(w.coordinator.connect(w.outsider).openRound(w.taskId)).to.emit(w.coordinator, "RoundOpened");
    });

    it("refuses a non-owner, the zero address and an unknown task", async function () {
      const w = await loadFixture(deployWorld);
      await expect(w.coordinator.connect(w.outsider).transferTaskOwnership(w.taskId, w.outsider.address))
        .to.be.revertedWithCustomError(w.coordinator, "NotTaskOwner")
        .withArgs(w.taskId, w.owner.address, w.outsider.address);
      await expect(w.coordinator.transferTaskOwnership(w.taskId, ethers.ZeroAddress))
        .to.be.revertedWithCustomError(w.coordinator, "InvalidTaskOwner")
        .withArgs(ethers.ZeroAddress);
      await expect(w.coordinator.transferTaskOwnership(3n, w.outsider.address))
        .to.be.revertedWithCustomError(w.coordinator, "UnknownTask")
        .withArgs(3n, 2n);
    });
  });

  describe("fund", function () {
    it("moves tokens into the escrow and emits RewardsFunded; anyone may fund", async function () {
      const w = await loadFixture(deployWorld);
      const amount = 250n * TOKEN;
      const escrow = (await w.coordinator.taskInfo(w.taskId)).rewardEscrow;
      await expect(w.coordinator.connect(w.outsider).fund(w.taskId, amount))
        .to.emit(w.coordinator, "RewardsFunded")
        .withArgs(w.taskId, w.outsider.address, amount, escrow + amount);
      await expect(w.coordinator.connect(w.outsider).fund(w.taskId, amount)).to.changeTokenBalances(
        ethers,
        w.token,
        [w.outsider, w.coordinator],
        [-amount, amount],
      );
      expect((await w.coordinator.taskInfo(w.taskId)).rewardEscrow).to.equal(escrow + 2n * amount);
    });

    it("refuses zero, an unknown task and a missing allowance", async function () {
      const w = await loadFixture(deployWorld);
      await expect(w.coordinator.fund(w.taskId, 0n)).to.be.revertedWithCustomError(w.coordinator, "ZeroAmount");
      await expect(w.coordinator.fund(9n, 1n))
        .to.be.revertedWithCustomError(w.coordinator, "UnknownTask")
        .withArgs(9n, 2n);
      await w.token.approve(w.coordinatorAddress, 0n);
      await expect(w.coordinator.fund(w.taskId, 1n))
        .to.be.revertedWithCustomError(w.token, "ERC20InsufficientAllowance")
        .withArgs(w.coordinatorAddress, 0n, 1n);
    });
  });

  describe("views", function () {
    it("refuse unknown tasks", async function () {
      const w = await loadFixture(deployWorld);
      const unknown = 0n;
      const calls = [
        w.coordinator.taskConfig(unknown),
        w.coordinator.taskInfo(unknown),
        w.coordinator.globalModel(unknown),
        w.coordinator.currentRound(unknown),
        w.coordinator.roundPhase(unknown, 1n),
        w.coordinator.roundInfo(unknown, 1n),
        w.coordinator.participantInfo(unknown, w.outsider.address),
        w.coordinator.aggregatorInfo(unknown, w.outsider.address),
      ];
      for (const call of calls) {
        await expect(call).to.be.revertedWithCustomError(w.coordinator, "UnknownTask").withArgs(unknown, 2n);
      }
    });

    it("expose the protocol constants", async function () {
      const w = await loadFixture(deployWorld);
      expect(await w.coordinator.BPS()).to.equal(10_000n);
      expect(await w.coordinator.MAX_WINDOW()).to.equal(30n * DAY);
      expect(await w.coordinator.MAX_UNBONDING_DELAY()).to.equal(365n * DAY);
      expect(await w.coordinator.MAX_PARTICIPANTS()).to.equal(10_000n);
      expect(await w.coordinator.MAX_AGGREGATORS()).to.equal(16n);
    });
  });
});
