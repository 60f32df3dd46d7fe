// Gas ceilings of the participant's hot path, held as tests so a change that breaks them fails
// here first (the benchmark in bench/ reports the full table). Targets from the protocol issue:
// commit <= 62,000 gas for a participant's first round and <= 45,000 later, reveal <= 40,000,
// claim <= 70,000; finalizing costs the same whatever the number of participants.
import { expect } from "chai";
import hre from "hardhat";
import { Wallet, getBytes, type ContractTransactionResponse, type HDNodeWallet } from "ethers";
import {
  commitUpdate,
  createTask,
  deployWorld,
  ethers,
  networkHelpers,
  proofFor,
  Reason,
  resultOf,
  revealUpdate,
  rewardsTree,
  TOKEN,
  updateOf,
  type World,
} from "./fixtures.js";

const { loadFixture } = networkHelpers;

async function gasOf(tx: Promise<ContractTransactionResponse>): Promise<bigint> {
  const receipt = await (await tx).wait();
  return receipt!.gasUsed;
}

/** A task for `n` participants (fresh wallets) that have all staked; round 1 open. */
async function taskFor(w: World, n: number) {
  const taskId = await createTask(w, { maxParticipants: BigInt(n) });
  await w.coordinator.fund(taskId, 5_000n * TOKEN);
  for (const a of w.aggregators) await w.coordinator.connect(a).bondAggregator(taskId);
  const wallets = [];
  for (let i = 0; i < n; i++) {
    const wallet = Wallet.createRandom().connect(ethers.provider);
    await networkHelpers.setBalance(wallet.address, 10n ** 20n);
    await w.token.mint(wallet.address, 2_000n * TOKEN);
    await w.token.connect(wallet).approve(w.coordinatorAddress, ethers.MaxUint256);
    await w.coordinator.connect(wallet).deposit(taskId, 1_000n * TOKEN);
    wallets.push(wallet);
  }
  return { taskId, wallets };
}

/** Plays a round in which all `wallets` commit and reveal; returns the gas of the commits and reveals. */
async function playRound(w: World, taskId: bigint, round: bigint, wallets: HDNodeWallet[]) {
  const commits: bigint[] = [];
  const reveals: bigint[] = [];
  const updates = wallets.map((x) => updateOf(x, round));
  for (const u of updates) commits.push(await gasOf(commitUpdate(w, u, round, taskId)));
  for (const u of updates) reveals.push(await gasOf(revealUpdate(w, u, round, taskId)));
  return { commits, reveals };
}

/** Gas of the submission that finalizes, less the transaction base and calldata (whose zero bytes vary). */
async function finalizeGas(w: World, taskId: bigint, round: bigint, result: ReturnType<typeof resultOf>) {
  await w.coordinator.connect(w.aggregators[0]).submitResult(taskId, round, result);
  const tx = await w.coordinator.connect(w.aggregators[1]).submitResult(taskId, round, result);
  const calldata = getBytes(tx.data).reduce((sum, byte) => sum + (byte === 0 ? 4n : 16n), 0n);
  return (await gasOf(Promise.resolve(tx))) - 21_000n - calldata;
}

describe("AnchorCoordinator gas", function () {
  before(function () {
    // Coverage instruments the bytecode, which changes every gas figure.
    if (hre.globalOptions.coverage === true) this.skip();
  });

  it("commit, reveal and claim stay under their ceilings, first round and later rounds", async function () {
    const w = await loadFixture(deployWorld);
    const { taskId, wallets } = await taskFor(w, 5);
    await w.coordinator.openRound(taskId);
    const first = await playRound(w, taskId, 1n, wallets);
    const rewards = rewardsTree(wallets.map((x) => [x.address, 100n * TOKEN]));
    await finalizeGas(w, taskId, 1n, resultOf("r1", rewards));
    const firstClaim = await gasOf(w.coordinator.connect(wallets[0]).claim(taskId, 1n, 100n * TOKEN, proofFor(rewards, wallets[0].address)));

    await w.coordinator.openRound(taskId);
    const later = await playRound(w, taskId, 2n, wallets);
    const rewards2 = rewardsTree(wallets.map((x) => [x.address, 50n * TOKEN]));
    await finalizeGas(w, taskId, 2n, resultOf("r2", rewards2));
    const laterClaim = await gasOf(w.coordinator.connect(wallets[1]).claim(taskId, 2n, 50n * TOKEN, proofFor(rewards2, wallets[1].address)));
    const repeatClaim = await gasOf(w.coordinator.connect(wallets[0]).claim(taskId, 2n, 50n * TOKEN, proofFor(rewards2, wallets[0].address)));

    // The last commit and the last reveal also close their phase early; all others are the common case.
    const common = (xs: bigint[]) => xs.slice(0, -1);
    const max = (xs: bigint[]) => xs.reduce((a, b) => (a > b ? a : b));
    const table = {
      "commit (first round)": max(common(first.commits)),
      "commit (later round)": max(common(later.commits)),
      "commit closing the phase": max([first.commits.at(-1)!, later.commits.at(-1)!]),
      reveal: max([...common(first.reveals), ...common(later.reveals)]),
      "reveal closing the phase": max([first.reveals.at(-1)!, later.reveals.at(-1)!]),
      "claim (first claim of an account)": firstClaim,
      "claim (account's first in a round word)": laterClaim,
      "claim (repeat claimer)": repeatClaim,
    };
    console.log("      gas:", JSON.stringify(Object.fromEntries(Object.entries(table).map(([k, v]) => [k, Number(v)]))));
    expect(table["commit (first round)"]).to.be.at.most(62_000n);
    expect(table["commit (later round)"]).to.be.at.most(45_000n);
    expect(table.reveal).to.be.at.most(40_000n);
    expect(table["claim (repeat claimer)"]).to.be.at.most(70_000n);
  });

  it("finalizing costs the same for 2 or 12 participants; only the slash list adds gas", async function () {
    const w = await loadFixture(deployWorld);
    const measure = async (n: number, slashes: number) => {
      const { taskId, wallets } = await taskFor(w, n);
      await w.coordinator.openRound(taskId);
      await playRound(w, taskId, 1n, wallets);
      const rewards = rewardsTree(wallets.map((x) => [x.address, 10n * TOKEN]));
      const list = wallets.slice(0, slashes).map((x) => ({ participant: x.address, reason: Reason.Outlier }));
      return finalizeGas(w, taskId, 1n, resultOf(`n${n}`, rewards, list));
    };
    const small = await measure(2, 0);
    const large = await measure(12, 0);
    const smallSlash = await measure(2, 1);
    const largeSlash = await measure(12, 1);
    console.log("      finalize gas:", { small, large, smallSlash, largeSlash });
    expect(large).to.equal(small);
    expect(largeSlash).to.equal(smallSlash);
    expect(smallSlash > small).to.equal(true);
  });
});
