// Gas of the coordinator's operations on the in-process Hardhat chain: prints a table and writes it to
// docs/BENCHMARKS.md (section "gas"). Targets from the protocol issue sit next to the measured values.
//
//   npx tsx bench/gas.ts
//
// Every figure is a real transaction's gasUsed (base 21,000 and calldata included). Where the cost varies between
// participants (commit, reveal, claim, deposit) the row is the median over the participants of one round; the last
// commit and the last reveal of a round also close their phase early and are reported apart. Finalizing is the
// submitResult that reaches the quorum, for 5, 50 and 100 participants and 0, 1 and 5 slashes (Outlier).
import hre from "hardhat";
import { getBytes, Wallet, type ContractTransactionResponse, type HDNodeWallet } from "ethers";
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
} from "../test/contracts/fixtures.js";
import { join } from "../client/participant/account.js";
import { resolveSettings } from "../lib/config.js";
import { makeContext } from "../scripts/commands/context.js";
import { machineLine, markdownTable, writeSection } from "./report.js";

const COMMAND = "npx tsx bench/gas.ts";

const TARGETS: Record<string, number> = {
  "commit (first round)": 62_000,
  "commit (later rounds)": 45_000,
  reveal: 40_000,
  claim: 70_000,
};

async function gasOf(tx: Promise<ContractTransactionResponse>): Promise<number> {
  const receipt = await (await tx).wait();
  return Number(receipt!.gasUsed);
}

/** Gas of the latest block's transaction (automine: one per block), for calls that do not hand back their receipt. */
async function lastTransactionGas(): Promise<number> {
  const block = await ethers.provider.getBlock("latest");
  const receipt = await ethers.provider.getTransactionReceipt(block!.transactions[0]);
  return Number(receipt!.gasUsed);
}

/** A client context signing as `signer`; `join` needs no store, so none is ever opened. */
function contextFor(w: World, signer: HDNodeWallet) {
  return makeContext({
    settings: resolveSettings({}),
    provider: ethers.provider,
    chainId: w.chainId,
    signer,
    coordinator: w.coordinator.connect(signer),
    fromBlock: 0,
    storeConfig: { kind: "embedded" },
  });
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** `n` fresh funded wallets with the coordinator approved. */
async function wallets(w: World, n: number): Promise<HDNodeWallet[]> {
  const out: HDNodeWallet[] = [];
  for (let i = 0; i < n; i++) {
    const wallet = Wallet.createRandom().connect(ethers.provider);
    await networkHelpers.setBalance(wallet.address, 10n ** 20n);
    await w.token.mint(wallet.address, 10_000n * TOKEN);
    await w.token.connect(wallet).approve(w.coordinatorAddress, ethers.MaxUint256);
    out.push(wallet);
  }
  return out;
}

/** A funded task with bonded aggregators for `maxParticipants`; returns its id and the bond gas of the first. */
async function newTask(w: World, maxParticipants: number) {
  // Windows long enough for 100 one-second blocks of commits; full rounds close their phases early anyway.
  const taskId = await createTask(w, {
    maxParticipants: BigInt(maxParticipants),
    commitWindow: 3_600n,
    revealWindow: 3_600n,
  });
  await w.token.mint(w.owner.address, 5_000n * TOKEN);
  await w.coordinator.fund(taskId, 5_000n * TOKEN);
  const bond = [];
  for (const a of w.aggregators) bond.push(await gasOf(w.coordinator.connect(a).bondAggregator(taskId)));
  return { taskId, bond: bond[0] };
}

/** One round where every wallet commits and reveals; gas of the commits and reveals in order. */
async function playRound(w: World, taskId: bigint, round: bigint, ws: HDNodeWallet[]) {
  const updates = ws.map((x) => updateOf(x, round));
  const commits = [];
  for (const u of updates) commits.push(await gasOf(commitUpdate(w, u, round, taskId)));
  const reveals = [];
  for (const u of updates) reveals.push(await gasOf(revealUpdate(w, u, round, taskId)));
  return { commits, reveals };
}

/**
 * The quorum-reaching submission's gas (the first aggregator's vote is cast before): the total, and the execution
 * alone (less the 21,000 base and the calldata, whose cost depends on how many bytes of addresses and roots are zero).
 */
async function finalizeGas(w: World, taskId: bigint, round: bigint, result: ReturnType<typeof resultOf>) {
  await w.coordinator.connect(w.aggregators[0]).submitResult(taskId, round, result);
  const tx = await w.coordinator.connect(w.aggregators[1]).submitResult(taskId, round, result);
  const total = await gasOf(Promise.resolve(tx));
  const calldata = getBytes(tx.data).reduce((sum, byte) => sum + (byte === 0 ? 4 : 16), 0);
  return { total, execution: total - 21_000 - calldata };
}

/** The participant's path through two rounds, plus stake and aggregator operations. */
async function participantRows(w: World): Promise<[string, number][]> {
  const n = 9; // one more than measured, so the phase-closing commit and reveal are the last ones
  const { taskId, bond } = await newTask(w, n);
  const ws = await wallets(w, n);
  const firstDeposits = [];
  for (const x of ws.slice(0, -1))
    firstDeposits.push(await gasOf(w.coordinator.connect(x).deposit(taskId, 1_000n * TOKEN)));
  const laterDeposit = await gasOf(w.coordinator.connect(ws[0]).deposit(taskId, 100n * TOKEN));
  // The last wallet stakes with a permit instead of an allowance, through the client's own `join`.
  const permitter = ws[n - 1];
  await w.token.connect(permitter).approve(w.coordinatorAddress, 0n);
  await join(contextFor(w, permitter), taskId, 1_000n * TOKEN);
  const permitDeposit = await lastTransactionGas();

  const openRound = await gasOf(w.coordinator.openRound(taskId));
  const first = await playRound(w, taskId, 1n, ws);
  const rewards = rewardsTree(ws.map((x) => [x.address, 10n * TOKEN]));
  await finalizeGas(w, taskId, 1n, resultOf("gas r1", rewards));
  const claims = [];
  for (const x of ws.slice(0, -1)) {
    claims.push(
      await gasOf(w.coordinator.connect(x).claim(taskId, 1n, 10n * TOKEN, proofFor(rewards, x.address))),
    );
  }
  await w.coordinator.openRound(taskId);
  const later = await playRound(w, taskId, 2n, ws);
  await finalizeGas(w, taskId, 2n, resultOf("gas r2"));

  const requestWithdrawal = await gasOf(w.coordinator.connect(ws[0]).requestWithdrawal(taskId, 500n * TOKEN));
  await networkHelpers.time.increase(7_200); // past the unbonding delay and round 2's aggregation window
  const withdraw = await gasOf(w.coordinator.connect(ws[0]).withdraw(taskId));
  const common = (xs: number[]) => xs.slice(0, -1);
  return [
    ["deposit (an account's first)", median(firstDeposits)],
    ["deposit (later)", laterDeposit],
    ["deposit-with-permit (first)", permitDeposit],
    ["requestWithdrawal", requestWithdrawal],
    ["withdraw", withdraw],
    ["bondAggregator", bond],
    ["openRound", openRound],
    ["commit (first round)", median(common(first.commits))],
    ["commit (later rounds)", median(common(later.commits))],
    ["commit closing the phase (later round)", later.commits.at(-1)!],
    ["reveal", median([...common(first.reveals), ...common(later.reveals)])],
    ["reveal closing the phase", later.reveals.at(-1)!],
    ["claim", median(claims)],
  ];
}

/** Gas of the finalizing submission for `n` participants (all revealed, all rewarded) and each slash count. */
async function finalizeRow(w: World, n: number, slashCounts: number[]) {
  const ws = await wallets(w, n);
  const out = [];
  for (const slashes of slashCounts) {
    const { taskId } = await newTask(w, n);
    for (const x of ws) await w.coordinator.connect(x).deposit(taskId, 1_000n * TOKEN);
    await w.coordinator.openRound(taskId);
    await playRound(w, taskId, 1n, ws);
    const rewards = rewardsTree(ws.map((x) => [x.address, 5n * TOKEN]));
    const list = ws.slice(0, slashes).map((x) => ({ participant: x.address, reason: Reason.Outlier }));
    out.push(await finalizeGas(w, taskId, 1n, resultOf(`n${n} s${slashes}`, rewards, list)));
  }
  return out;
}

async function main(): Promise<void> {
  const w = await deployWorld();
  const rows = await participantRows(w);
  const table = markdownTable(
    ["operation", "gas", "target", "result"],
    rows.map(([name, gas]) => {
      const target = TARGETS[name];
      return [
        name,
        gas.toLocaleString("en"),
        target ? `<= ${target.toLocaleString("en")}` : "",
        target ? (gas <= target ? "pass" : "FAIL") : "",
      ];
    }),
  );
  const slashCounts = [0, 1, 5];
  const finalRows: Awaited<ReturnType<typeof finalizeRow>>[] = [];
  for (const n of [5, 50, 100]) {
    const gas = await finalizeRow(w, n, slashCounts);
    finalRows.push(gas);
    console.log(`finalize n=${n}: ${gas.map((g) => `${g.total} (${g.execution})`).join(" / ")}`);
  }
  const finalTable = markdownTable(
    ["participants", ...slashCounts.map((s) => `${s} slash${s === 1 ? "" : "es"}: total (execution)`)],
    finalRows.map((gas, i) => [
      [5, 50, 100][i],
      ...gas.map((g) => `${g.total.toLocaleString("en")} (${g.execution.toLocaleString("en")})`),
    ]),
  );
  // Execution gas must be identical for every participant count; only the slash list may add to it.
  const flat = finalRows.every((gas) => gas.every((g, j) => g.execution === finalRows[0][j].execution));
  const compiler = hre.config.solidity.profiles.default.compilers[0];
  const markdown = [
    "## Gas (contracts/AnchorCoordinator.sol)",
    "",
    `Command: \`${COMMAND}\` on the in-process Hardhat chain (hardfork ${hre.config.networks.default.type === "edr-simulated" ? hre.config.networks.default.hardfork : "default"}).`,
    `Machine: ${machineLine()}.`,
    `Compiler: solc ${compiler.version}, optimizer ${compiler.settings.optimizer?.enabled ? `on, ${compiler.settings.optimizer.runs} runs` : "off"}, evmVersion ${compiler.settings.evmVersion}.`,
    "",
    "Each figure is a transaction's whole gasUsed (21,000 base and calldata included). Deposit, commit, reveal and claim are medians over 8 participants of one task;",
    "the commit that fills the last slot and the reveal that completes the committers also close their phase and are shown apart.",
    "",
    table,
    "",
    "### Finalizing a round (the quorum-reaching submitResult)",
    "",
    "All participants revealed and hold a reward leaf; the slashes are Outlier entries in the slash list.",
    `Execution gas ${flat ? "is identical" : "DIFFERS"} for 5, 50 and 100 participants; only the slash list adds gas (totals differ by a few gas of calldata).`,
    "",
    finalTable,
  ].join("\n");
  console.log(`\n${table}\n\n${finalTable}`);
  await writeSection("gas", markdown);
}

await main();
