// Anyone can check a finalized round: fetch its reveals and files from the chain and the store,
// re-run the rule and policy the round's report names, and compare the model digest, report
// digest, rewards root and total and the slash list with what the chain finalized. The
// evaluation (accuracy, loss) comes from a training backend, so it is taken as reported for the
// exact comparison and, when asked, recomputed and compared within a tolerance.
//
// State files (state.ts): a server optimiser's state is re-run exactly from the state of the last
// finalized round before, and the state file recomputed for this round must equal the pinned one.
// FLTrust's server update is taken from its pinned file for the exact re-run (so the model digest
// must match bit for bit), then re-trained here on the named root set and compared approximately
// (cosine and relative distance within a tolerance): that part depends on the training backend.
import { parameterCount } from "../../client/model/spec.js";
import { canonicalJson } from "../canonical-json.js";
import { SLASH_REASONS, compareAddresses, phaseName, type AnchorCoordinator } from "../chain/coordinator.js";
import { allEvents } from "../chain/logs.js";
import type { Hex32 } from "../digest.js";
import { AnchorFLError } from "../errors.js";
import { fetchReport } from "../protocol/models.js";
import type { AggregationReport, ReportEvaluation } from "../protocol/report.js";
import type { ContentStore } from "../store/index.js";
import { gatherRound, type FetchOptions } from "./gather.js";
import { POLICY_NAME, policyParams } from "./policy.js";
import { aggregateRound } from "./round.js";
import { mnistEvaluator } from "./service.js";
import { DEFAULT_SERVER_UPDATE_TOLERANCE, compareServerUpdates, trainServerUpdate, type ApproximateCheck } from "./state-fltrust.js";
import {
  OPTIMIZER_STATE,
  SERVER_UPDATE_STATE,
  STATE_NAMES,
  checkStateNames,
  decodeOptimizerState,
  decodeServerUpdate,
  fetchState,
  previousOptimizerState,
  statePointer,
  type StateBinding,
} from "./state.js";

export class VerifyError extends AnchorFLError {}

export type VerifiedPart = "model" | "report" | "rewardsRoot" | "rewardsTotal" | "slashes" | `state ${string}`;

export interface PartCheck {
  readonly part: VerifiedPart;
  readonly onChain: string;
  readonly recomputed: string;
  readonly match: boolean;
}

export interface EvaluationCheck {
  readonly reported: ReportEvaluation;
  readonly recomputed: ReportEvaluation;
  readonly tolerance: number;
  readonly match: boolean;
}

export interface VerifyOutcome {
  readonly taskId: bigint;
  readonly round: bigint;
  /** True only when every exact part matches (and the evaluation, when it was recomputed). */
  readonly ok: boolean;
  readonly parts: readonly PartCheck[];
  /** When the report differs: its top-level fields (and participants) that differ from the recomputation. */
  readonly reportDifferences: readonly string[];
  readonly evaluation?: EvaluationCheck;
  /** Whether the report records an evaluation at all. */
  readonly evaluationRecorded: boolean;
  /** FLTrust: the server update re-trained here vs the pinned one (approximate: backend-dependent). */
  readonly serverUpdate?: ServerUpdateCheck;
  readonly rule: AggregationReport["rule"];
  readonly optimizer?: AggregationReport["optimizer"];
}

export interface ServerUpdateCheck extends ApproximateCheck {
  readonly rootData: string;
  /** The backend the pinned update was trained on, and the one it was re-trained on here. */
  readonly pinnedBackend: string;
  readonly localBackend: string;
}

export interface VerifyOptions extends FetchOptions {
  /** Recompute the held-out evaluation and compare it within `tolerance` (default 0.01). */
  readonly evaluate?: boolean;
  readonly tolerance?: number;
  /** FLTrust: the largest relative L2 distance between the re-trained and pinned server updates (default 0.01). */
  readonly serverUpdateTolerance?: number;
}

const slashText = (slashes: readonly { participant: string; reason: string }[]) =>
  slashes.map((s) => `${s.participant}:${s.reason}`).join(",") || "(none)";

/** The finalized result of `round` from the chain: RoundFinalized plus the matching submission's slash list. */
async function finalizedResult(c: AnchorCoordinator, taskId: bigint, round: bigint, fromBlock: number) {
  const finalized = await allEvents(c, c.filters.RoundFinalized(taskId, round), { fromBlock });
  if (finalized.length === 0) {
    const phase = phaseName(await c.roundPhase(taskId, round));
    throw new VerifyError(`task ${taskId} round ${round} is not finalized (phase ${phase}); only finalized rounds can be verified`);
  }
  const f = c.interface.parseLog(finalized[0])!.args;
  const submissions = await allEvents(c, c.filters.ResultSubmitted(taskId, round), { fromBlock });
  const winning = submissions.map((l) => c.interface.parseLog(l)!.args).find((a) => a.resultHash === f.resultHash);
  if (!winning) throw new VerifyError(`no ResultSubmitted event of round ${round} carries the finalized result ${f.resultHash}`);
  const slashes = (winning.result.slashes as { participant: string; reason: bigint }[])
    .map((s) => ({ participant: s.participant, reason: SLASH_REASONS[Number(s.reason)] }))
    .sort((a, b) => compareAddresses(a.participant, b.participant));
  return {
    newModelDigest: (f.newModelDigest as string).toLowerCase(),
    reportDigest: (f.reportDigest as string).toLowerCase() as Hex32,
    rewardsRoot: (f.rewardsRoot as string).toLowerCase(),
    rewardsTotal: f.rewardsTotal as bigint,
    slashes,
  };
}

/** Which top-level report fields (and which participants) differ between two reports. */
export function reportDifferences(published: AggregationReport, recomputed: AggregationReport): string[] {
  const out: string[] = [];
  const keys = [...new Set([...Object.keys(published), ...Object.keys(recomputed)])].sort();
  for (const key of keys) {
    const a = (published as unknown as Record<string, unknown>)[key];
    const b = (recomputed as unknown as Record<string, unknown>)[key];
    if (canonicalJson(a ?? null) === canonicalJson(b ?? null)) continue;
    if (key === "participants" && Array.isArray(a) && Array.isArray(b)) {
      const byAddress = new Map(b.map((p) => [p.address, p]));
      for (const p of a) {
        const q = byAddress.get(p.address);
        if (!q) out.push(`participants: ${p.address} is not a committer of the round`);
        else if (canonicalJson(p) !== canonicalJson(q)) out.push(`participants: ${p.address} reported ${p.verdict} ("${p.reason}"), recomputed ${q.verdict} ("${q.reason}")`);
      }
      if (a.length !== b.length) out.push(`participants: the report lists ${a.length}, the round had ${b.length} committers`);
    } else out.push(key);
  }
  return out;
}

/** Recomputes `round` and compares it with the chain. Throws VerifyError when the round cannot be checked at all. */
export async function verifyRound(
  c: AnchorCoordinator,
  store: ContentStore,
  ids: { chainId: bigint; taskId: bigint; round: bigint; fromBlock: number },
  options: VerifyOptions = {},
): Promise<VerifyOutcome> {
  const onChain = await finalizedResult(c, ids.taskId, ids.round, ids.fromBlock);
  const report = await fetchReport(store, onChain.reportDigest);
  if (report.policy.name !== POLICY_NAME) {
    throw new VerifyError(`the report names policy ${report.policy.name}; this verifier knows ${POLICY_NAME}`, { hint: "verify with the AnchorFL version the report names" });
  }
  checkStateNames(report);
  const policy = policyParams(report.policy.params as Record<string, number>);
  const gathered = await gatherRound(c, store, ids, { ...options, lookback: policy.lookback });
  const binding: StateBinding = { taskId: ids.taskId, round: ids.round, modelSpecDigest: gathered.specDigest, baseModelDigest: gathered.baseModel.digest };
  // Every file the report names must be in the store and be what it claims (typed errors otherwise).
  const timeoutMs = options.fetchTimeoutMs;
  const optimizer = report.optimizer && {
    name: report.optimizer.name,
    params: report.optimizer.params,
    previous: await previousOptimizerState(store, gathered.previous, report.optimizer.name, parameterCount(gathered.spec), timeoutMs),
  };
  // The state this round hands to the next must be retrievable too (it is compared exactly below).
  if (optimizer && statePointer(report, OPTIMIZER_STATE)) {
    await fetchState(store, report, OPTIMIZER_STATE, (b) => decodeOptimizerState(b, optimizer.name, parameterCount(gathered.spec), binding), timeoutMs);
  }
  let serverUpdate: { bytes: Uint8Array; source: NonNullable<AggregationReport["serverUpdate"]>; vector: Float32Array } | undefined;
  if (report.serverUpdate) {
    const source = report.serverUpdate;
    const decode = (bytes: Uint8Array) => ({ bytes, vector: decodeServerUpdate(bytes, gathered.spec, source, binding) });
    serverUpdate = { ...(await fetchState(store, report, SERVER_UPDATE_STATE, decode, timeoutMs)), source };
  } else if (report.rule.name === "fltrust") {
    throw new VerifyError(`the report of round ${ids.round} uses fltrust but names no server update (serverUpdate and state ${SERVER_UPDATE_STATE})`);
  }
  const out = await aggregateRound({
    ...gathered,
    rule: { name: report.rule.name, params: report.rule.params },
    ...(optimizer ? { optimizer } : {}),
    ...(serverUpdate ? { serverUpdate: { bytes: serverUpdate.bytes, source: serverUpdate.source } } : {}),
    policy,
    softwareVersion: report.software.version,
    evaluate: async () => report.evaluation,
  });
  const r = out.result;
  const parts: PartCheck[] = [
    ["model", onChain.newModelDigest, r.newModelDigest],
    ["report", onChain.reportDigest, r.reportDigest],
    ["rewardsRoot", onChain.rewardsRoot, r.rewardsRoot],
    ["rewardsTotal", onChain.rewardsTotal.toString(), r.rewardsTotal.toString()],
    ["slashes", slashText(onChain.slashes), slashText(r.slashes)],
    // The report's digest is on-chain, so the state files it names are what the chain vouches for.
    ...STATE_NAMES.filter((name) => [report, out.report].some((x) => x.state?.some((e) => e.name === name))).map((name) => [
      `state ${name}`,
      report.state?.find((e) => e.name === name)?.digest ?? "(none)",
      out.report.state?.find((e) => e.name === name)?.digest ?? "(none)",
    ]),
  ].map(([part, a, b]) => ({ part: part as VerifiedPart, onChain: a, recomputed: b, match: a.toLowerCase() === b.toLowerCase() }));

  let evaluation: EvaluationCheck | undefined;
  if (options.evaluate && report.evaluation) {
    const tolerance = options.tolerance ?? 0.01;
    const recomputed = await mnistEvaluator(gathered.spec)(out.model);
    const reported = report.evaluation;
    const match = Math.abs(recomputed.accuracy - reported.accuracy) <= tolerance && Math.abs(recomputed.loss - reported.loss) <= tolerance;
    evaluation = { reported, recomputed, tolerance, match };
  }
  let serverUpdateCheck: ServerUpdateCheck | undefined;
  if (serverUpdate) {
    const retrained = await trainServerUpdate(gathered.spec, gathered.baseModel.tensors, serverUpdate.source);
    serverUpdateCheck = {
      ...compareServerUpdates(serverUpdate.vector, retrained.update, options.serverUpdateTolerance ?? DEFAULT_SERVER_UPDATE_TOLERANCE),
      rootData: serverUpdate.source.rootData,
      pinnedBackend: serverUpdate.source.backend,
      localBackend: retrained.backend,
    };
  }
  const exact = parts.every((p) => p.match);
  return {
    taskId: ids.taskId,
    round: ids.round,
    ok: exact && (evaluation?.match ?? true) && (serverUpdateCheck?.match ?? true),
    parts,
    reportDifferences: parts[1].match ? [] : reportDifferences(report, out.report),
    evaluation,
    evaluationRecorded: report.evaluation !== undefined,
    ...(serverUpdateCheck ? { serverUpdate: serverUpdateCheck } : {}),
    rule: report.rule,
    ...(report.optimizer ? { optimizer: report.optimizer } : {}),
  };
}

/** The verification as lines a person reads (the command prints them). */
export function formatVerify(v: VerifyOutcome): string[] {
  const optimizer = v.optimizer ? ` + server optimiser ${v.optimizer.name} ${canonicalJson(v.optimizer.params)}` : "";
  const lines = [`task ${v.taskId} round ${v.round}: recomputed with ${v.rule.name} ${canonicalJson(v.rule.params)}${optimizer}`];
  for (const p of v.parts) {
    lines.push(p.match ? `  ${p.part}: match ${p.onChain}` : `  ${p.part}: DIFFERS: on-chain ${p.onChain}, recomputed ${p.recomputed}`);
  }
  for (const d of v.reportDifferences) lines.push(`    report differs in ${d}`);
  if (v.evaluation) {
    const e = v.evaluation;
    lines.push(
      `  evaluation (approximate, training backend, tolerance ${e.tolerance}): ${e.match ? "match" : "DIFFERS"}: reported accuracy ${e.reported.accuracy} loss ${e.reported.loss}, recomputed accuracy ${e.recomputed.accuracy.toFixed(4)} loss ${e.recomputed.loss.toFixed(4)}`,
    );
  } else if (v.evaluationRecorded) {
    lines.push("  evaluation: taken as reported (not recomputed; pass --eval to check it approximately)");
  }
  if (v.serverUpdate) {
    const u = v.serverUpdate;
    lines.push(
      `  server update (APPROXIMATE: re-trained here on ${u.rootData} with ${u.localBackend}, pinned from ${u.pinnedBackend}; tolerance relative distance <= ${u.tolerance}): ${u.match ? "match" : "DIFFERS"}: cosine ${u.cosine.toFixed(6)}, relative distance ${u.relativeDistance.toPrecision(3)}`,
    );
  }
  const exact = v.parts.every((p) => p.match);
  const approximate = v.serverUpdate ? " (exact given the pinned server update; the server update itself checked approximately)" : "";
  lines.push(v.ok ? `verified: the round reproduces exactly${approximate}` : exact ? "NOT verified: the exact parts match, but an approximate check is outside its tolerance" : "NOT verified: the recomputation differs from the chain");
  return lines;
}
