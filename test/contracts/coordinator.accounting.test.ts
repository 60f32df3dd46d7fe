// The coordinator's books over a scripted life of two tasks: after every transaction its token
// balance equals stakes + reward escrows + aggregator bonds + round budgets + unclaimed rewards,
// so nothing is created or lost through deposits, slashes, failed rounds, penalties, claims and
// withdrawals.
import { expect } from "chai";
import {
  commitUpdate,
  createTask,
  deployStaked,
  networkHelpers,
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

/** What the coordinator owes, summed from its own views over every task, account and round. */
async function owed(w: World, taskIds: bigint[]): Promise<bigint> {
  const accounts = [...w.participants, ...w.aggregators, w.outsider, w.owner].map((s) => s.address);
  let total = 0n;
  for (const taskId of taskIds) {
    const info = await w.coordinator.taskInfo(taskId);
    total += info.rewardEscrow;
    for (const a of accounts) {
      total += (await w.coordinator.participantInfo(taskId, a)).stake;
      total += (await w.coordinator.aggregatorInfo(taskId, a)).bond;
    }
    for (let round = 1n; round <= info.currentRound; round++) {
      const r = await w.coordinator.roundInfo(taskId, round);
      total += r.budget + r.unclaimedRewards;
    }
  }
  return total;
}

describe("AnchorCoordinator accounting", function () {
  it("balances to the token after every step of two tasks' lives", async function () {
    const w = await networkHelpers.loadFixture(deployStaked);
    const tasks = [w.taskId];
    const check = async (step: string) => {
      const balance = await w.token.balanceOf(w.coordinatorAddress);
      expect(await owed(w, tasks), step).to.equal(balance);
    };
    await check("staked");
    const [p0, p1, p2, p3] = w.participants;
    const second = await createTask(w, { rewardPerRound: 10n * TOKEN });
    tasks.push(second);
    await w.coordinator.fund(second, 100n * TOKEN);
    await w.coordinator.connect(p3).deposit(second, 500n * TOKEN);
    await check("second task");

    // Round 1: three commit, one withholds its reveal; two aggregators agree, the third dissents.
    await w.coordinator.openRound(w.taskId);
    await check("round 1 open");
    const updates = [p0, p1, p2].map((p) => updateOf(p, 1n));
    for (const u of updates) await commitUpdate(w, u, 1n);
    await toReveal(w);
    await revealUpdate(w, updates[0], 1n);
    await revealUpdate(w, updates[1], 1n);
    await toAggregation(w);
    const rewards = rewardsTree([
      [p0.address, 400n * TOKEN],
      [p1.address, 350n * TOKEN],
    ]);
    const result = resultOf("round 1", rewards, [
      { participant: p1.address, reason: Reason.Outlier },
      { participant: p2.address, reason: Reason.NoReveal },
    ]);
    await w.coordinator.connect(w.aggregators[2]).submitResult(w.taskId, 1n, resultOf("dissent"));
    await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 1n, result);
    await w.coordinator.connect(w.aggregators[1]).submitResult(w.taskId, 1n, result);
    await check("round 1 finalized with slashes");
    await w.coordinator.penalizeDissent(w.taskId, w.aggregators[2].address);
    await check("dissent penalized");
    await w.coordinator.connect(p0).claim(w.taskId, 1n, 400n * TOKEN, proofFor(rewards, p0.address));
    await check("claimed");

    // Round 2 fails: one aggregator only; a withdrawal waits for it and then leaves.
    await w.coordinator.openRound(w.taskId);
    await w.coordinator.connect(p0).requestWithdrawal(w.taskId, 300n * TOKEN);
    await playCommitReveal(w, [updateOf(p0, 2n)], 2n);
    await w.coordinator.connect(w.aggregators[0]).submitResult(w.taskId, 2n, resultOf("alone"));
    await toFailed(w);
    await w.coordinator.connect(p0).withdraw(w.taskId);
    await check("withdrawn after a failed round");
    await w.coordinator.openRound(w.taskId);
    await check("failed budget released, round 3 open");

    // Round 3: the silent committer of round 1 is long slashed; p2 commits again and is charged nothing twice.
    await commitUpdate(w, updateOf(p2, 3n), 3n);
    await toFailed(w);
    await w.coordinator.slashNoReveal(w.taskId, 3n, p2.address);
    await check("no-reveal slash");
    await w.coordinator.connect(w.aggregators[2]).unbondAggregator(w.taskId);
    await w.coordinator.connect(p1).claim(w.taskId, 1n, 350n * TOKEN, proofFor(rewards, p1.address));
    await check("unbonded and claimed");

    // Escrow by hand: 10,000 funded; rounds 1 and 3 reserve 1,000 each (round 2's was reserved and released);
    // round 1 returns 250 unused and takes slashes of 100 (outlier, 10%) and 200 (no reveal, 20%) and a 50
    // dissent penalty (10% of 500); round 3 takes 20% of p2's remaining 800.
    expect((await w.coordinator.taskInfo(w.taskId)).rewardEscrow).to.equal(
      (10_000n - 2n * 1_000n + 250n + 100n + 200n + 50n + 160n) * TOKEN,
    );
  });
});
