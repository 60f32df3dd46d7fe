// Swarm mode and reputation, measured end to end on the in-process chain with the embedded store
// and real training on MNIST: prints two tables and writes the sections "swarm" and "reputation"
// of docs/BENCHMARKS.md.
//
//   npx tsx bench/swarm.ts [--rounds 4]
//
// swarm: 6 clients, the last 2 malicious (sign-flip, scale x10), trimmed mean. Once with one
// aggregator (quorum 1), once as a swarm (the 6 clients are the aggregators, quorum 4; malicious
// members submit first with FedAvg). Same seeds, so the two runs see the same updates: per round
// the aggregation phase's gas (bonds, submissions, dissent penalties), its wall time, and whether
// the swarm finalized exactly the weights the single aggregator did.
// reputation: FedAvg (the rule that takes weights), 6 clients of which 2 sign-flip in round 1
// (slashed as outliers) and then label-flip, which the conservative policy accepts. Accuracy per
// round without reputation, with reputation weighting, and with select=4.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { network } from "hardhat";
import type { Signer } from "ethers";
import type { Behaviour } from "../client/attacks/behaviours.js";
import { loadMnist } from "../client/data/mnist.js";
import { clientShard, parsePartitionSpec } from "../client/data/partition.js";
import type { Dataset } from "../client/data/dataset.js";
import { initBackend } from "../client/model/backend.js";
import { mlpSpec } from "../client/model/spec.js";
import { join } from "../client/participant/account.js";
import { Participant } from "../client/participant/round.js";
import { aggregateOnce, type RoundSummary } from "../lib/aggregator/service.js";
import { penalizeDissenters, swarmPlan } from "../lib/aggregator/swarm.js";
import { resolveSettings } from "../lib/config.js";
import type { ReputationOption } from "../lib/protocol/options.js";
import { fetchModel, fetchReport } from "../lib/protocol/models.js";
import { createTask, fundTask, openRound, publishGenesis } from "../lib/protocol/task.js";
import { sha256Digest } from "../lib/digest.js";
import { flatten } from "../lib/tensors.js";
import { EmbeddedStore } from "../lib/store/index.js";
import { makeContext, type Context } from "../scripts/commands/context.js";
import { AnchorCoordinator__factory, DemoToken__factory } from "../types/ethers-contracts/index.js";
import { machineLine, markdownTable, writeSection } from "./report.js";

const TOKEN = 10n ** 18n;
const CLIENTS = 6;
const SEED = 1;
const roundsArg = process.argv.indexOf("--rounds");
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 4;
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`--rounds: expected a whole number of rounds, at least 1, found ${JSON.stringify(process.argv[roundsArg + 1])}`);
const COMMAND = `npx tsx bench/swarm.ts${ROUNDS !== 4 ? ` --rounds ${ROUNDS}` : ""}`;

const { ethers } = await network.create();
type Account = Signer & { address: string };

interface World {
  readonly ctx: (signer: Signer) => Context;
  readonly taskId: bigint;
  readonly fromBlock: number;
  readonly members: Account[];
  readonly owner: Account;
  /** The weights of a round's new model, hashed: model files name their coordinator, so their digests differ between worlds. */
  weightsDigest(reportDigest: string): Promise<string>;
  close(): Promise<void>;
}

/** A fresh coordinator, token and task with its clients staked; `swarm` makes the clients its aggregators. */
async function world(options: { swarm: boolean; reputation?: ReputationOption }): Promise<World> {
  const dir = await mkdtemp(path.join(tmpdir(), "anchorfl-bench-swarm-"));
  const store = await EmbeddedStore.open({ dataDir: path.join(dir, "ipfs") });
  const signers = (await ethers.getSigners()) as Account[];
  const [owner, ...rest] = signers;
  const members = rest.slice(0, CLIENTS);
  const token = await new DemoToken__factory(owner).deploy(owner.address);
  await token.waitForDeployment();
  const deployed = await new AnchorCoordinator__factory(owner).deploy();
  const fromBlock = (await deployed.deploymentTransaction()!.wait())!.blockNumber;
  const address = await deployed.getAddress();
  const chainId = (await ethers.provider.getNetwork()).chainId;
  const ctx = (signer: Signer) =>
    makeContext({
      settings: resolveSettings({}, { home: dir }),
      provider: ethers.provider,
      chainId,
      signer,
      coordinator: AnchorCoordinator__factory.connect(address, signer),
      fromBlock,
      storeConfig: { kind: "embedded", dataDir: path.join(dir, "ipfs") },
      sharedStore: store,
    });
  // The owner funds the rewards and, alone, bonds as the single aggregator.
  for (const s of [owner, ...members]) await (await token.mint(s.address, (s === owner ? 2_000n : 1_000n) * TOKEN)).wait();
  const spec = { ...mlpSpec({ seed: SEED }), ...(options.reputation ? { options: { reputation: options.reputation } } : {}) };
  const genesis = await publishGenesis(store, spec, owner.address);
  const plan = options.swarm ? await swarmPlan(deployed, members.map((m) => m.address)) : { aggregators: [owner.address], quorum: 1 };
  const taskId = await createTask(deployed, {
    stakeToken: await token.getAddress(),
    minStake: 10n * TOKEN,
    rewardPerRound: 60n * TOKEN,
    aggregatorBond: 50n * TOKEN,
    commitWindow: 600,
    revealWindow: 600,
    aggregationWindow: 600,
    unbondingDelay: 60,
    maxParticipants: CLIENTS,
    outlierSlashBps: 1000,
    noRevealSlashBps: 2000,
    invalidSlashBps: 5000,
    duplicateSlashBps: 3000,
    dissentPenaltyBps: 1000,
    quorum: plan.quorum,
    genesisModelDigest: genesis.model.digest,
    modelSpecDigest: genesis.spec.digest,
    aggregators: plan.aggregators,
  });
  await fundTask(deployed, owner, taskId, 1_000n * TOKEN);
  for (const m of members) await join(ctx(m), taskId, 100n * TOKEN);
  const weightsDigest = async (reportDigest: string) => {
    const report = await fetchReport(store, reportDigest);
    const model = await fetchModel(store, report.model, spec);
    return sha256Digest(new Uint8Array(flatten(model.tensors).buffer));
  };
  return { ctx, taskId, fromBlock, members, owner, weightsDigest, close: () => store.close().then(() => rm(dir, { recursive: true, force: true })) };
}

/** Every client trains and commits in turn (one tfjs runtime), then all reveal. */
async function participate(w: World, shards: readonly Dataset[], behaviours: readonly Behaviour[], round: number): Promise<void> {
  const running: Promise<unknown>[] = [];
  for (const [i, m] of w.members.entries()) {
    let committed!: () => void;
    const ready = new Promise<void>((resolve) => (committed = resolve));
    const p = new Participant({
      ctx: w.ctx(m),
      taskId: w.taskId,
      data: shards[i],
      training: { epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: SEED * 1000 + i + 100 * round },
      behaviour: behaviours[i],
      pollMs: 20,
      log: () => {},
      onStep: (s) => {
        if (s === "committed") committed();
      },
    });
    running.push(p.participate().finally(committed));
    await ready;
  }
  await Promise.all(running);
}

async function gasSince(block: number): Promise<number> {
  let gas = 0n;
  for (let b = block; b <= (await ethers.provider.getBlockNumber()); b++) gas += (await ethers.provider.getBlock(b))!.gasUsed;
  return Number(gas);
}

const options = (rule: string) => ({ rule, evaluation: "mnist-test" as const, pollMs: 20, log: () => {} });

/** Single aggregator, or swarm members in order (malicious first, with FedAvg) until the round finalizes, then penalties. */
async function aggregate(w: World, swarm: boolean, rule: string, malicious: ReadonlySet<number>): Promise<{ summary: RoundSummary; submitted: number; dissented: number }> {
  if (!swarm) return { summary: await aggregateOnce(w.ctx(w.owner), w.taskId, options(rule)), submitted: 1, dissented: 0 };
  const order = [...w.members.keys()].sort((a, b) => Number(malicious.has(b)) - Number(malicious.has(a)));
  let summary: RoundSummary | undefined;
  let submitted = 0;
  for (const i of order) {
    const s = await aggregateOnce(w.ctx(w.members[i]), w.taskId, options(malicious.has(i) ? "fedavg" : rule));
    if (s.status === "submitted") submitted++;
    if (!malicious.has(i)) summary = s;
    if (s.phase !== "Aggregation") break;
  }
  const penalties = await penalizeDissenters(w.ctx(w.owner).coordinator, w.taskId, summary!.round, w.fromBlock);
  return { summary: summary!, submitted, dissented: penalties.length };
}

interface RoundFigures {
  readonly model: string;
  readonly accuracy: number;
  readonly gas: number;
  readonly ms: number;
  readonly submitted: number;
  readonly dissented: number;
}

/** Runs ROUNDS rounds; `behaviours(round)` says what each client does. */
async function run(setup: { swarm: boolean; rule: string; reputation?: ReputationOption }, shards: readonly Dataset[], behaviours: (round: number) => Behaviour[]): Promise<RoundFigures[]> {
  const w = await world(setup);
  const out: RoundFigures[] = [];
  try {
    for (let r = 1; r <= ROUNDS; r++) {
      await openRound(w.ctx(w.owner).coordinator, w.taskId);
      const b = behaviours(r);
      await participate(w, shards, b, r);
      const start = (await ethers.provider.getBlockNumber()) + 1;
      const started = Date.now();
      const malicious = new Set(b.flatMap((x, i) => (x.kind === "honest" ? [] : [i])));
      const { summary, submitted, dissented } = await aggregate(w, setup.swarm, setup.rule, malicious);
      out.push({ model: await w.weightsDigest(summary.result!.reportDigest), accuracy: summary.evaluation!.accuracy, gas: await gasSince(start), ms: Date.now() - started, submitted, dissented });
    }
  } finally {
    await w.close();
  }
  return out;
}

const honest: Behaviour = { kind: "honest" };
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

async function main(): Promise<void> {
  await initBackend("wasm", { log: () => {} });
  const { train } = await loadMnist();
  const shards = Array.from({ length: CLIENTS }, (_, i) => clientShard(train, parsePartitionSpec("iid"), CLIENTS, i, SEED));

  // ---- swarm vs one aggregator
  const attackers = (): Behaviour[] => [...Array(CLIENTS - 2).fill(honest), { kind: "sign-flip" }, { kind: "scale", lambda: 10 }];
  const single = await run({ swarm: false, rule: "trimmed-mean" }, shards, attackers);
  const swarm = await run({ swarm: true, rule: "trimmed-mean" }, shards, attackers);
  const swarmRows = single.map((s, i) => [
    i + 1,
    s.gas.toLocaleString("en"),
    swarm[i].gas.toLocaleString("en"),
    `${s.ms}`,
    `${swarm[i].ms}`,
    `${swarm[i].submitted} (${swarm[i].submitted - swarm[i].dissented} agree, ${swarm[i].dissented} dissent)`,
    swarm[i].model === s.model ? "yes" : "NO",
    pct(s.accuracy),
  ]);
  const swarmTable = markdownTable(
    ["round", "gas, one aggregator", "gas, swarm", "ms, one aggregator", "ms, swarm", "swarm submissions", "same weights", "accuracy"],
    swarmRows,
  );
  console.log(swarmTable);

  // ---- reputation against clients that are caught once, then poison subtly
  const turncoats = (round: number): Behaviour[] => [...Array(CLIENTS - 2).fill(honest), ...Array(2).fill(round === 1 ? { kind: "sign-flip" } : { kind: "label-flip" })];
  const configs: { name: string; reputation?: ReputationOption }[] = [
    { name: "no reputation" },
    { name: "reputation weighting", reputation: { weighting: true } },
    { name: "reputation select=4", reputation: { select: 4 } },
  ];
  const curves: RoundFigures[][] = [];
  for (const c of configs) curves.push(await run({ swarm: false, rule: "fedavg", reputation: c.reputation }, shards, turncoats));
  const repTable = markdownTable(
    ["setting", ...Array.from({ length: ROUNDS }, (_, i) => `round ${i + 1}`), "aggregation ms (mean)"],
    configs.map((c, k) => [c.name, ...curves[k].map((f) => pct(f.accuracy)), Math.round(curves[k].reduce((a, f) => a + f.ms, 0) / ROUNDS)]),
  );
  console.log(repTable);

  const setting = `${CLIENTS} clients, MNIST MLP, iid shards of the bundled digits, 1 epoch SGD lr 0.1 batch 32, seed ${SEED}, ${ROUNDS} rounds, wasm backend; ${machineLine()}. Command: \`${COMMAND}\`.`;
  await writeSection(
    "swarm",
    [
      "## Swarm mode",
      "",
      `Clients 5 and 6 attack (sign-flip, scale ×10); rule trimmed-mean. One aggregator (quorum 1) against a swarm of the 6 clients (quorum 4), whose 2 malicious members submit first with FedAvg and are outvoted and penalised (10% of their bond). Gas: every transaction from the end of the reveal phase to finalization and penalties (round 1 includes each member's bond approval and bonding). Time: the aggregation phase, each member gathering, aggregating, evaluating and submitting in one process, so the swarm pays one aggregation per submission. Same weights: the finalized model's weights are bit-identical in both runs (the files differ only in the coordinator they name). ${setting}`,
      "",
      swarmTable,
    ].join("\n"),
  );
  await writeSection(
    "reputation",
    [
      "## Reputation",
      "",
      `FedAvg (the rule reputation can weight), no robust rule behind it. Clients 5 and 6 sign-flip in round 1 (slashed as outliers), then label-flip (labels 9 − y), which the conservative policy accepts. Accuracy on the 1,000 held-out digits after each round. ${setting}`,
      "",
      repTable,
      "",
      `After round ${ROUNDS}: ${configs.map((c, k) => `${c.name} ${pct(curves[k].at(-1)!.accuracy)}`).join(", ")}.`,
    ].join("\n"),
  );
}

await main();
