// The aggregator process, stateless: every decision is derived from the chain and the store, so
// it can be killed at any point and restarted. Before submitting it checks on-chain whether it
// already submitted for the round (aggregatorInfo.lastRound), so a restart never double-submits;
// pinning twice is harmless and aggregation is deterministic, so a restart recomputes the same
// result. Several aggregators can run side by side and reach a quorum independently.
import { readFileSync } from "node:fs";
import { getAddress } from "ethers";
import { ensureBackend } from "../../client/model/backend.js";
import { parameterCount, type ModelSpec } from "../../client/model/spec.js";
import { getRule, getServerOptimiser, parseParams, type RawParams } from "../aggregation/index.js";
import { phaseName, send, slashReasonCode, waitForPhase, withRaceHeadroom, type AnchorCoordinator, type Phase } from "../chain/coordinator.js";
import { ContractRevertError } from "../chain/revert.js";
import { AnchorFLError } from "../errors.js";
import type { ReportEvaluation, RootTraining, Verdict } from "../protocol/report.js";
import { openRound } from "../protocol/task.js";
import type { ContentStore } from "../store/index.js";
import type { Tensor } from "../tensors.js";
import type { Context } from "../../scripts/commands/context.js";
import { DemoToken__factory } from "../../types/ethers-contracts/index.js";
import { penalizeDissenters } from "./swarm.js";
import { gatherRound, type FetchOptions } from "./gather.js";
import { policyParams, type PolicyParams } from "./policy.js";
import { DEFAULT_RULE, DEFAULT_RULE_PARAMS, aggregateRound, type RoundResult } from "./round.js";
import { previousOptimizerState } from "./state.js";
import { DEFAULT_ROOT_DATA, parseRootData, serverUpdateFile } from "./state-fltrust.js";

export class AggregatorError extends AnchorFLError {}

/** The version written into reports, from package.json. */
export const SOFTWARE_VERSION: string = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version;

export type AggregatorStep = "bonded" | "gathered" | "aggregated" | "pinned" | "submitted";

export interface AggregatorOptions extends FetchOptions {
  /** Registry name (default trimmed-mean) and its parameters (default beta 0.2 for the default rule). */
  readonly rule?: string;
  readonly ruleParams?: RawParams;
  /** A server optimiser on top of the rule (fedavgm, fedadam, fedyogi), its state carried round to round. */
  readonly optimizer?: string;
  readonly optimizerParams?: RawParams;
  /** FLTrust only: the root set the server update trains on (default mnist-root:0:100) and its training. */
  readonly rootData?: string;
  readonly rootTraining?: Partial<RootTraining>;
  readonly policy?: Readonly<Record<string, number | string | undefined>>;
  /** Evaluate each new model on a held-out set and record it in the report. */
  readonly evaluation?: "mnist-test";
  readonly pollMs?: number;
  /** How long to wait for a phase before giving up (default 1 hour). */
  readonly waitTimeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
  /** Called after each step; a test may throw here to simulate a crash. */
  readonly onStep?: (step: AggregatorStep, round: bigint) => void | Promise<void>;
}

export interface RoundSummary {
  readonly taskId: bigint;
  readonly round: bigint;
  /** submitted: by this call; already-submitted: an earlier run did; missed: the round ended without our result. */
  readonly status: "submitted" | "already-submitted" | "missed";
  /** The round's phase after this call. */
  readonly phase: Phase;
  readonly result?: RoundResult;
  readonly participants: readonly { readonly address: string; readonly verdict: Verdict; readonly reason: string }[];
  readonly counts: Readonly<Record<Verdict, number>>;
  /** Identical submissions of our result after ours. */
  readonly votes?: bigint;
  readonly gasUsed: bigint;
  readonly evaluation?: ReportEvaluation;
  readonly ms: { readonly gather: number; readonly aggregate: number; readonly total: number };
}

const noCounts = (): Record<Verdict, number> => ({ accepted: 0, outlier: 0, invalid: 0, unavailable: 0, duplicate: 0, "no-reveal": 0 });

/** Approves and bonds the difference when the caller's bond is below the task's; refuses non-members. */
export async function ensureBonded(ctx: Context, taskId: bigint, log: (line: string) => void): Promise<boolean> {
  const c = ctx.coordinator;
  const me = getAddress(await ctx.signer.getAddress());
  const [config, info] = await Promise.all([c.taskConfig(taskId), c.aggregatorInfo(taskId, me)]);
  if (!info.member) {
    throw new AggregatorError(`${me} is not an aggregator of task ${taskId} (its aggregators: ${config.aggregators.join(", ")})`, {
      hint: "run with the key of one of the task's aggregators (--account)",
    });
  }
  if (info.bond >= config.aggregatorBond) return false;
  const missing = config.aggregatorBond - info.bond;
  const token = DemoToken__factory.connect(config.stakeToken, ctx.signer);
  const balance = await token.balanceOf(me);
  if (balance < missing) {
    throw new AggregatorError(`bonding as aggregator of task ${taskId} needs ${missing} token units, ${me} holds ${balance}`);
  }
  await send("approve aggregator bond", () => token.approve(c.getAddress(), missing));
  await send("bond aggregator", () => c.bondAggregator(taskId));
  log(`task ${taskId}: bonded ${missing} token units as aggregator ${me}`);
  return true;
}

/** Accuracy and loss of the new model on the held-out MNIST split (the participants' test split). */
export function mnistEvaluator(spec: ModelSpec): (model: readonly Tensor[]) => Promise<ReportEvaluation> {
  return async (model) => {
    const [{ loadMnist }, { evaluate }] = await Promise.all([import("../../client/data/mnist.js"), import("../../client/train/train.js")]);
    await ensureBackend();
    const { test } = await loadMnist();
    const e = await evaluate(spec, model, test);
    return { dataset: "mnist-test", examples: test.n, accuracy: e.accuracy, loss: e.loss };
  };
}

async function waitForRound(c: AnchorCoordinator, taskId: bigint, after: bigint, o: AggregatorOptions): Promise<bigint> {
  const deadline = Date.now() + (o.waitTimeoutMs ?? 3_600_000);
  for (;;) {
    const round = await c.currentRound(taskId);
    if (round > after) return round;
    if (o.signal?.aborted) throw new AggregatorError("aggregator stopped");
    if (Date.now() > deadline) throw new AggregatorError(`task ${taskId} has no round after ${after}; waited ${o.waitTimeoutMs ?? 3_600_000} ms`);
    await new Promise((r) => setTimeout(r, o.pollMs ?? 1_000));
  }
}

export interface ResolvedAggregation {
  readonly rule: { readonly name: string; readonly params: RawParams };
  readonly optimizer?: { readonly name: string; readonly params: RawParams };
  readonly fltrust?: { readonly rootData: string; readonly training: Partial<RootTraining> };
  readonly policy: PolicyParams;
}

const defined = (raw: RawParams | undefined): RawParams => Object.fromEntries(Object.entries(raw ?? {}).filter(([, v]) => v !== undefined));

/** Resolves the rule, the server optimiser, FLTrust's root set and the policy from options (defaults filled in). */
export function resolveAggregation(o: AggregatorOptions): ResolvedAggregation {
  const name = o.rule ?? DEFAULT_RULE;
  const given = defined(o.ruleParams);
  const params = name === DEFAULT_RULE && Object.keys(given).length === 0 ? DEFAULT_RULE_PARAMS : given;
  // Refuse an unknown rule, optimiser or parameter before waiting for any round.
  parseParams(getRule(name), params);
  let optimizer: ResolvedAggregation["optimizer"];
  if (o.optimizer !== undefined) {
    const spec = getServerOptimiser(o.optimizer);
    const optimizerParams = defined(o.optimizerParams);
    // One step on a one-value delta runs the optimiser's own range checks (beta1 in [0, 1), ...).
    spec.step(new Float32Array(1), undefined, parseParams(spec, optimizerParams));
    optimizer = { name: spec.name, params: optimizerParams };
  } else if (Object.keys(defined(o.optimizerParams)).length > 0) {
    throw new AggregatorError(`server optimiser parameters (${Object.keys(defined(o.optimizerParams)).join(", ")}) were given without a server optimiser`, { hint: "add --optimizer fedavgm|fedadam|fedyogi" });
  }
  if (name !== "fltrust" && (o.rootData !== undefined || o.rootTraining !== undefined)) {
    throw new AggregatorError(`a root data set only serves fltrust, and the rule is ${name}`);
  }
  const rootData = o.rootData ?? DEFAULT_ROOT_DATA;
  if (name === "fltrust") parseRootData(rootData);
  return {
    rule: { name, params },
    ...(optimizer ? { optimizer } : {}),
    ...(name === "fltrust" ? { fltrust: { rootData, training: o.rootTraining ?? {} } } : {}),
    policy: policyParams(o.policy),
  };
}

/**
 * Handles the task's current round (waiting for one to open, then for its Aggregation phase):
 * gathers, aggregates, pins the model and report, and submits the result unless this
 * aggregator already did. Returns what happened.
 */
export async function aggregateOnce(ctx: Context, taskId: bigint, options: AggregatorOptions = {}): Promise<RoundSummary> {
  const started = Date.now();
  const log = options.log ?? ((line: string) => console.log(line));
  const c = ctx.coordinator;
  const me = getAddress(await ctx.signer.getAddress());
  const { rule, optimizer, fltrust, policy } = resolveAggregation(options);
  if (await ensureBonded(ctx, taskId, log)) await options.onStep?.("bonded", 0n);
  const round = await waitForRound(c, taskId, 0n, options);
  const base = { taskId, round, participants: [], counts: noCounts(), gasUsed: 0n };
  const done = async (status: RoundSummary["status"]): Promise<RoundSummary> => ({
    ...base,
    status,
    phase: phaseName(await c.roundPhase(taskId, round)),
    ms: { gather: 0, aggregate: 0, total: Date.now() - started },
  });
  if ((await c.aggregatorInfo(taskId, me)).lastRound === round) return done("already-submitted");
  const now = phaseName(await c.roundPhase(taskId, round));
  if (now === "Commit" || now === "Reveal") log(`task ${taskId} round ${round}: in ${now}; waiting for Aggregation`);
  const phase = await waitForPhase(c, taskId, round, ["Aggregation", "Finalized", "Failed"], {
    pollMs: options.pollMs,
    timeoutMs: options.waitTimeoutMs,
    signal: options.signal,
  });
  if (phase !== "Aggregation") return done("missed");

  const store: ContentStore = await ctx.store();
  const gathered = await gatherRound(c, store, { chainId: ctx.chainId, taskId, round, fromBlock: ctx.fromBlock }, { ...options, lookback: policy.lookback });
  const gatheredAt = Date.now();
  await options.onStep?.("gathered", round);
  const unavailable = [...gathered.files.values()].filter((f) => "unavailable" in f).length;
  log(
    `task ${taskId} round ${round}: ${gathered.committers.length} committed, ${gathered.reveals.length} revealed, ${gathered.files.size - unavailable} file(s) fetched, ${unavailable} unavailable (${gatheredAt - started} ms); aggregating with ${rule.name}${optimizer ? ` + ${optimizer.name}` : ""}`,
  );
  // One participant hiding its file is its own fault; most files missing points at our own store
  // or network, and slashing a majority of honest participants for it is the worst outcome.
  if (unavailable > 1 && unavailable * 2 > gathered.files.size) {
    throw new AggregatorError(`task ${taskId} round ${round}: ${unavailable} of ${gathered.files.size} revealed files could not be fetched; not submitting a result that would slash them`, {
      hint: `check the content store (${store.description}) and its connectivity, or raise --fetch-timeout`,
    });
  }
  // Carried state comes from the last finalized round's report; the server update is trained
  // here (a backend computes it) and pinned, so verify re-runs the round from the file.
  const carried = optimizer && { ...optimizer, previous: await previousOptimizerState(store, gathered.previous, optimizer.name, parameterCount(gathered.spec), options.fetchTimeoutMs) };
  const out = await aggregateRound({
    ...gathered,
    rule,
    ...(carried ? { optimizer: carried } : {}),
    ...(fltrust ? { serverUpdate: await serverUpdateFile(gathered, fltrust) } : {}),
    policy,
    softwareVersion: SOFTWARE_VERSION,
    ...(options.evaluation ? { evaluate: mnistEvaluator(gathered.spec) } : {}),
  });
  const aggregatedAt = Date.now();
  await options.onStep?.("aggregated", round);

  const model = await store.put(out.modelBytes);
  await store.pin(model.cid);
  for (const file of out.stateFiles) await store.pin((await store.put(file.bytes)).cid);
  const report = await store.put(out.reportBytes);
  await store.pin(report.cid);
  await options.onStep?.("pinned", round);

  const counts = noCounts();
  for (const j of out.judgements) counts[j.verdict]++;
  const computed = async (status: RoundSummary["status"], extra: Partial<RoundSummary> = {}): Promise<RoundSummary> => ({
    ...base,
    status,
    phase: phaseName(await c.roundPhase(taskId, round)),
    result: out.result,
    participants: out.judgements.map(({ address, verdict, reason }) => ({ address, verdict, reason })),
    counts,
    evaluation: out.report.evaluation,
    ms: { gather: gatheredAt - started, aggregate: aggregatedAt - gatheredAt, total: Date.now() - started },
    ...extra,
  });
  // The restart guard: a previous run may have submitted between our first check and now.
  if ((await c.aggregatorInfo(taskId, me)).lastRound === round) return computed("already-submitted");
  const r = out.result;
  let receipt;
  try {
    const result = {
      newModelDigest: r.newModelDigest,
      reportDigest: r.reportDigest,
      rewardsRoot: r.rewardsRoot,
      rewardsTotal: r.rewardsTotal,
      slashes: r.slashes.map((s) => ({ participant: s.participant, reason: slashReasonCode(s.reason) })),
    };
    // Another aggregator's identical result may land first and make ours the finalizing one.
    receipt = await send(`submit result for round ${round}`, async () =>
      c.submitResult(taskId, round, result, { gasLimit: withRaceHeadroom(await c.submitResult.estimateGas(taskId, round, result), result.slashes.length) }),
    );
  } catch (error) {
    if (error instanceof ContractRevertError && (await c.aggregatorInfo(taskId, me)).lastRound === round) return computed("already-submitted");
    // Swarm members race to the quorum: a result arriving after the round finalized (or failed) is too late, not an error.
    if (error instanceof ContractRevertError && phaseName(await c.roundPhase(taskId, round)) !== "Aggregation") return computed("missed");
    throw error;
  }
  await options.onStep?.("submitted", round);
  let votes: bigint | undefined;
  for (const l of receipt.logs) {
    const parsed = c.interface.parseLog(l);
    if (parsed?.name === "ResultSubmitted") votes = parsed.args.votes as bigint;
  }
  const summary = await computed("submitted", { votes, gasUsed: receipt.gasUsed });
  log(summaryLine(summary));
  return summary;
}

/** One line per round: verdict counts, slashes, model, gas, outcome. */
export function summaryLine(s: RoundSummary): string {
  const head = `task ${s.taskId} round ${s.round}:`;
  if (!s.result) return `${head} ${s.status} (round ${s.phase})`;
  const c = s.counts;
  const verdicts = (Object.keys(c) as Verdict[])
    .filter((v) => c[v] > 0)
    .map((v) => `${c[v]} ${v}`)
    .join(", ");
  const evaluation = s.evaluation ? `, accuracy ${s.evaluation.accuracy} on ${s.evaluation.dataset}` : "";
  const outcome = s.status === "submitted" ? `${s.phase === "Finalized" ? "finalized" : "submitted"} (${s.votes ?? "?"} vote(s))` : s.status;
  return `${head} ${verdicts || "no committers"}; ${s.result.slashes.length} slashed; model ${s.result.newModelDigest}${evaluation}; gas ${s.gasUsed}; ${outcome}; ${s.ms.total} ms`;
}

export interface RunOptions extends AggregatorOptions {
  /** Handle one round and return. */
  readonly once?: boolean;
  /** Stop after this many rounds. */
  readonly rounds?: number;
  /** Open the next round once the current one has finished (Finalized or Failed). */
  readonly openRounds?: boolean;
}

/** The aggregator loop behind `anchorfl aggregate`: round after round until `rounds`, `once` or the signal says stop. */
export async function runAggregator(ctx: Context, taskId: bigint, options: RunOptions = {}): Promise<RoundSummary[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const c = ctx.coordinator;
  resolveAggregation(options); // bad flags are refused now, not after waiting for a round
  const summaries: RoundSummary[] = [];
  let last = 0n;
  while (!options.signal?.aborted) {
    await waitForRound(c, taskId, last, options);
    const summary = await aggregateOnce(ctx, taskId, options);
    if (summary.status !== "submitted") log(summaryLine(summary));
    summaries.push(summary);
    last = summary.round;
    if (options.once || (options.rounds !== undefined && summaries.length >= options.rounds)) break;
    const phase = await waitForPhase(c, taskId, last, ["Finalized", "Failed"], { pollMs: options.pollMs, timeoutMs: options.waitTimeoutMs, signal: options.signal });
    // With several aggregators (a swarm), whoever sees the round finalize settles the dissenters' penalties.
    if (phase === "Finalized") {
      for (const p of await penalizeDissenters(c, taskId, last, ctx.fromBlock)) log(`task ${taskId} round ${last}: ${p.aggregator} dissented; penalised ${p.amount} token units of its bond`);
    }
    if (options.openRounds && (await c.currentRound(taskId)) === last) {
      try {
        const next = await openRound(c, taskId);
        log(`task ${taskId}: round ${last} ${phase === "Finalized" ? "finalized" : "failed"}; opened round ${next}`);
      } catch (error) {
        // Another aggregator (or the owner) opened it first: fine, the loop follows the chain.
        if (!(error instanceof ContractRevertError) || (await c.currentRound(taskId)) === last) throw error;
      }
    }
  }
  return summaries;
}
