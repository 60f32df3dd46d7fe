// One round of aggregation, deterministic: given the round's facts from the chain and the bytes
// fetched from the store, decode strictly, judge, aggregate the accepted updates with the chosen
// rule, build the new model file, the rewards tree, the slash list and the report. The same
// inputs give the same bytes on any machine, whatever order the files arrived in: everything is
// keyed and sorted by address, arithmetic is the aggregation library's fixed-order float64.
import { getAddress } from "ethers";
import { modelShapes, type ModelSpec } from "../../client/model/spec.js";
import { aggregate, getRule, getServerOptimiser, parseParams, type AggregationResult, type RawParams, type ServerState } from "../aggregation/index.js";
import { compareAddresses } from "../chain/coordinator.js";
import { decodeUpdate, encodeUpdate } from "../codec/update-file.js";
import { sha256Digest, type Hex32 } from "../digest.js";
import { AnchorFLError } from "../errors.js";
import {
  REPORT_FORMAT,
  SLASH_REASON_OF,
  encodeReport,
  type AggregationReport,
  type EvidenceValue,
  type ReportEvaluation,
  type ReportParticipant,
  type ServerUpdateSource,
} from "../protocol/report.js";
import { allocateRewards, buildRewardsTree } from "../rewards.js";
import { roundReputation, type HistoryRound } from "./reputation.js";
import { RAW_BLOCK_LIMIT, describeContent } from "../store/index.js";
import { flatten, unflatten, type Tensor } from "../tensors.js";
import { POLICY_NAME, figure, judge, metadataProblem, type Candidate, type EarlierUpdate, type Judgement, type PolicyParams, type Submission } from "./policy.js";
import { OPTIMIZER_STATE, SERVER_UPDATE_STATE, decodeServerUpdate, encodeOptimizerState, type StateBinding } from "./state.js";

export class RoundAggregationError extends AnchorFLError {}
export class ReportTooLargeError extends AnchorFLError {}

/** The default rule: see DEFAULT_RULE_PARAMS. */
export const DEFAULT_RULE = "trimmed-mean";
/**
 * Trimmed mean dropping 20% at each end of every coordinate: it needs no guess of f, runs for
 * any n >= 1, bounds what any single participant moves each coordinate, costs O(n d), and the
 * policy has already removed the gross attackers it would otherwise have to absorb.
 */
export const DEFAULT_RULE_PARAMS: RawParams = { beta: 0.2 };

export type SlashReasonName = "Outlier" | "Invalid" | "Duplicate" | "NoReveal";

export interface RevealFact {
  readonly participant: string;
  readonly updateDigest: Hex32;
  readonly numSamples: bigint;
  readonly contentRoot: Hex32;
  readonly blockNumber: number;
}

/** What fetching a revealed file gave: its verified bytes, or why it could not be had. */
export type Fetched = { readonly bytes: Uint8Array } | { readonly unavailable: string } | { readonly tooLarge: string };

export interface RoundInputs {
  readonly chainId: bigint;
  readonly coordinator: string;
  readonly taskId: bigint;
  readonly round: bigint;
  readonly spec: ModelSpec;
  readonly specDigest: Hex32;
  /** The model the round was opened on. */
  readonly baseModel: { readonly digest: Hex32; readonly tensors: readonly Tensor[] };
  /** Reserved for the round when it opened (RoundOpened.budget). */
  readonly budget: bigint;
  /** Every committer of the round. */
  readonly committers: readonly string[];
  readonly reveals: readonly RevealFact[];
  /** Fetch outcome per revealed digest (lowercase 0x hex). */
  readonly files: ReadonlyMap<string, Fetched>;
  /** Decoded updates of earlier rounds, for the copy test. */
  readonly earlier: readonly EarlierUpdate[];
  /** The finalized rounds of the reputation window (required when the spec's options include reputation). */
  readonly reputationHistory?: readonly HistoryRound[];
  readonly rule: { readonly name: string; readonly params: RawParams };
  /** A server optimiser on top of the rule, and the state the round starts from (state.ts previousOptimizerState). */
  readonly optimizer?: { readonly name: string; readonly params: RawParams; readonly previous: ServerState };
  /** FLTrust's server update file for this round (computed with a backend, so pinned; state.ts) and its source. */
  readonly serverUpdate?: { readonly bytes: Uint8Array; readonly source: ServerUpdateSource };
  readonly policy: PolicyParams;
  readonly softwareVersion: string;
  /** Held-out evaluation of the new model; computed with a training backend, so injected. */
  readonly evaluate?: (model: readonly Tensor[]) => Promise<ReportEvaluation | undefined>;
}

export interface RoundResult {
  readonly newModelDigest: Hex32;
  readonly reportDigest: Hex32;
  readonly rewardsRoot: Hex32;
  readonly rewardsTotal: bigint;
  /** Canonical (address) order. */
  readonly slashes: readonly { readonly participant: string; readonly reason: SlashReasonName }[];
}

export interface RoundOutput {
  readonly result: RoundResult;
  readonly modelBytes: Uint8Array;
  readonly reportBytes: Uint8Array;
  readonly report: AggregationReport;
  readonly judgements: readonly Judgement[];
  readonly model: readonly Tensor[];
  /** Undefined when no update was accepted (the model is carried forward). */
  readonly aggregation?: AggregationResult;
  /** The files the report's `state` names, to pin with the model (sorted by name). */
  readonly stateFiles: readonly { readonly name: string; readonly bytes: Uint8Array }[];
}

/** Turns one fetched file into what the policy judges. */
export function submissionOf(reveal: RevealFact, fetched: Fetched | undefined, inputs: RoundInputs): Submission {
  if (!fetched) return { status: "unavailable", problem: "it was not fetched" };
  if ("unavailable" in fetched) return { status: "unavailable", problem: fetched.unavailable };
  if ("tooLarge" in fetched) return { status: "invalid", problem: fetched.tooLarge };
  let file;
  try {
    // Held to the task's compression: a file stored any other way is invalid, like any malformed one.
    file = decodeUpdate(fetched.bytes, { expected: modelShapes(inputs.spec), compression: inputs.spec.options?.compression ?? "none" });
  } catch (error) {
    if (!(error instanceof AnchorFLError)) throw error;
    return { status: "invalid", problem: firstLine(error.message) };
  }
  const problem = metadataProblem(file.metadata, {
    taskId: inputs.taskId,
    round: inputs.round,
    participant: reveal.participant,
    baseModelDigest: inputs.baseModel.digest,
    modelSpecDigest: inputs.specDigest,
    numSamples: reveal.numSamples,
  });
  if (problem) return { status: "invalid", problem };
  return { status: "valid", vector: flatten(file.tensors), revealBlock: reveal.blockNumber, metadata: file.metadata };
}

const firstLine = (text: string) => text.split("\n")[0];

/** Runs the round. Throws RoundAggregationError / ReportTooLargeError / the rule's errors when no result can be formed. */
export async function aggregateRound(inputs: RoundInputs): Promise<RoundOutput> {
  const rule = getRule(inputs.rule.name);
  const ruleParams = parseParams(rule, inputs.rule.params);
  const reveals = new Map(inputs.reveals.map((r) => [getAddress(r.participant), r]));
  const committers = [...new Set(inputs.committers.map((a) => getAddress(a)))].sort(compareAddresses);
  for (const address of reveals.keys()) {
    if (!committers.includes(address)) throw new RoundAggregationError(`${address} revealed in round ${inputs.round} without a commit on record`);
  }

  const submissions = new Map<string, Submission>();
  const candidates: Candidate[] = committers.map((address) => {
    const reveal = reveals.get(address);
    const submission: Submission = reveal ? submissionOf(reveal, inputs.files.get(reveal.updateDigest.toLowerCase()), inputs) : { status: "no-reveal" };
    submissions.set(address, submission);
    return { address, submission };
  });
  const judgements = judge(candidates, inputs.earlier, inputs.policy, inputs.baseModel.digest, { options: inputs.spec.options, taskId: inputs.taskId, round: inputs.round });
  const accepted = judgements.filter((j) => j.verdict === "accepted").map((j) => j.address);
  // Reputation may leave some accepted updates out of the aggregate and weight the rest (reputation.ts).
  const reputation = roundReputation(inputs.spec.options?.reputation, inputs.reputationHistory, inputs.round, committers, accepted, rule.name);

  const base = flatten([...inputs.baseModel.tensors]);
  const updates = (reputation?.aggregated ?? accepted).map((address) => {
    const s = submissions.get(address) as Extract<Submission, { status: "valid" }>;
    const numSamples = Number(reveals.get(address)!.numSamples);
    return { id: address.toLowerCase(), numSamples: reputation ? reputation.samples(address, numSamples) : numSamples, vector: s.vector };
  });
  const binding: StateBinding = { taskId: inputs.taskId, round: inputs.round, modelSpecDigest: inputs.specDigest, baseModelDigest: inputs.baseModel.digest };
  if (inputs.serverUpdate && rule.name !== "fltrust") throw new RoundAggregationError(`a server update was given, but rule ${rule.name} does not use one (only fltrust does)`);
  const serverUpdate = inputs.serverUpdate && decodeServerUpdate(inputs.serverUpdate.bytes, inputs.spec, inputs.serverUpdate.source, binding);
  const aggregation = updates.length > 0 ? aggregate(rule.name, updates, ruleParams, { serverUpdate }) : undefined;
  const server = serverStep(inputs.optimizer, aggregation?.aggregate);
  const step = server?.delta ?? aggregation?.aggregate;
  // float32 addition, element by element: the same on every machine.
  const next = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) next[i] = base[i] + (step ? step[i] : 0);
  const model = unflatten(next, modelShapes(inputs.spec));

  const acceptedSamples = accepted.reduce((sum, a) => sum + reveals.get(a)!.numSamples, 0n);
  if (acceptedSamples > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RoundAggregationError(`accepted updates claim ${acceptedSamples} samples, more than a model file can record`);
  }
  const modelBytes = encodeUpdate(model, {
    taskId: inputs.taskId,
    round: inputs.round,
    participant: getAddress(inputs.coordinator),
    baseModelDigest: inputs.baseModel.digest,
    numSamples: Number(acceptedSamples),
    kind: "model",
    modelSpecDigest: inputs.specDigest,
    extra: {},
  });
  const modelContent = await describeContent(modelBytes);

  const allocations = allocateRewards(
    inputs.budget,
    accepted.map((account) => ({ account, weight: reveals.get(account)!.numSamples })),
  );
  const tree = buildRewardsTree(allocations);
  const slashes = judgements.flatMap((j) => {
    const reason = SLASH_REASON_OF[j.verdict];
    return reason ? [{ participant: j.address, reason }] : [];
  });

  const evidenceOf = new Map(aggregation?.participants.map((p) => [p.id, p]) ?? []);
  const participants: ReportParticipant[] = judgements.map((j) => {
    const reveal = reveals.get(j.address);
    const ruleEvidence = evidenceOf.get(j.address.toLowerCase());
    const evidence: Record<string, EvidenceValue> = { ...j.evidence };
    if (ruleEvidence) {
      evidence.selected = ruleEvidence.selected;
      evidence.distanceToAggregate = figure(ruleEvidence.distance);
      evidence.cosineToAggregate = figure(ruleEvidence.cosine);
      if (ruleEvidence.clipFactor !== 1) evidence.clipFactor = figure(ruleEvidence.clipFactor);
    }
    return {
      address: j.address,
      verdict: j.verdict,
      reason: j.reason,
      ...(reveal ? { updateDigest: reveal.updateDigest.toLowerCase() as Hex32, contentRoot: reveal.contentRoot.toLowerCase() as Hex32, numSamples: reveal.numSamples.toString() } : {}),
      ...(ruleEvidence ? { score: figure(ruleEvidence.score) } : {}),
      ...(Object.keys(evidence).length > 0 ? { evidence } : {}),
      ...(j.telemetry ? { telemetry: j.telemetry } : {}),
    };
  });

  const stateFiles = [
    ...(inputs.serverUpdate ? [{ name: SERVER_UPDATE_STATE, bytes: inputs.serverUpdate.bytes }] : []),
    ...(server ? [{ name: OPTIMIZER_STATE, bytes: encodeOptimizerState(server.state, server.choice, binding) }] : []),
  ];
  const state = await Promise.all(stateFiles.map(async (f) => ({ name: f.name, ...(await describeContent(f.bytes)) })));

  const evaluation = await inputs.evaluate?.(model);
  const report: AggregationReport = {
    format: REPORT_FORMAT,
    chainId: inputs.chainId.toString(),
    coordinator: getAddress(inputs.coordinator),
    taskId: inputs.taskId.toString(),
    round: inputs.round.toString(),
    baseModelDigest: inputs.baseModel.digest.toLowerCase() as Hex32,
    modelSpecDigest: inputs.specDigest.toLowerCase() as Hex32,
    rule: { name: rule.name, params: ruleParams },
    policy: { name: POLICY_NAME, params: { ...inputs.policy } },
    participants,
    model: { digest: modelContent.digest, contentRoot: modelContent.contentRoot, numSamples: acceptedSamples.toString() },
    rewards: {
      budget: inputs.budget.toString(),
      total: tree.total.toString(),
      root: tree.root,
      allocations: tree.allocations.map((a) => ({ account: a.account, amount: a.amount.toString() })),
    },
    slashes,
    ...(state.length > 0 ? { state: state.map((s) => ({ name: s.name, digest: s.digest, contentRoot: s.contentRoot })) } : {}),
    ...(server ? { optimizer: server.choice } : {}),
    ...(inputs.serverUpdate ? { serverUpdate: inputs.serverUpdate.source } : {}),
    ...(reputation ? { reputation: reputation.section } : {}),
    ...(evaluation ? { evaluation: roundEvaluation(evaluation) } : {}),
    software: { name: "anchorfl", version: inputs.softwareVersion },
  };
  const reportBytes = encodeReport(report);
  if (reportBytes.length > RAW_BLOCK_LIMIT) {
    throw new ReportTooLargeError(`the round's report is ${reportBytes.length} bytes; reports must fit one ${RAW_BLOCK_LIMIT}-byte block`, {
      hint: "the report is located by its digest alone; lower the task's maxParticipants",
      details: { bytes: reportBytes.length, participants: participants.length },
    });
  }
  return {
    result: { newModelDigest: modelContent.digest, reportDigest: sha256Digest(reportBytes), rewardsRoot: tree.root, rewardsTotal: tree.total, slashes },
    modelBytes,
    reportBytes,
    report,
    judgements,
    model,
    aggregation,
    stateFiles,
  };
}

/**
 * The server optimiser's step on the rule's aggregate: the delta to apply and the state after the
 * round. Without an aggregate (nothing accepted) the model stays and so does the state.
 */
function serverStep(optimizer: RoundInputs["optimizer"], aggregate: Float32Array | undefined) {
  if (!optimizer) return undefined;
  const spec = getServerOptimiser(optimizer.name);
  const params = parseParams(spec, optimizer.params);
  const choice = { name: spec.name, params };
  if (!aggregate) return { choice, state: optimizer.previous, delta: undefined };
  const step = spec.step(aggregate, optimizer.previous, params);
  return { choice, state: step.state, delta: step.delta };
}

/** Accuracy and loss rounded to 4 decimals, as the report records them. */
export function roundEvaluation(e: ReportEvaluation): ReportEvaluation {
  return { dataset: e.dataset, examples: e.examples, accuracy: Number(e.accuracy.toFixed(4)), loss: Number(e.loss.toFixed(4)) };
}
