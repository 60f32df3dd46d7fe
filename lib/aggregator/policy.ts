// The verdict policy: turns what is known about each committer of a round (did it reveal, could
// its file be fetched and decoded, what does its update look like next to the others) into a
// verdict with evidence and a one-sentence reason. Pure: no I/O, no randomness, canonical order.
//
// Slashing an honest participant is the worst failure this system can have, so every numeric
// test is conservative and measured against a robust reference that attackers cannot drag:
// the coordinate-wise median of the round's valid updates (whatever rule then aggregates), and
// the median of their norms. Subtle attacks are left to the robust rule; the policy slashes
// only what no honest client produces.
//
// Two task options add to this (lib/protocol/options.ts). `telemetry`: a sample claim outside
// the task's bounds is invalid; other implausible telemetry is flagged in the evidence, never
// slashed, because it is self-reported. `anomaly`: the detector's robust z-scores
// (lib/aggregator/anomaly.ts) are recorded for every update and flag those above its
// threshold; only above slashThreshold, and when two of its views agree, is an update an
// outlier (off by default: on non-IID data the detector's scores of honest and label-flipping
// clients overlap, see docs/BENCHMARKS.md "detection").
import { coordinateMedian } from "../aggregation/index.js";
import { dot, sumOfSquares } from "../aggregation/kernels.js";
import { medianOf } from "../aggregation/select.js";
import { compareAddresses } from "../chain/coordinator.js";
import type { UpdateMetadata } from "../codec/update-metadata.js";
import { AnchorFLError } from "../errors.js";
import type { AnomalyOption, TaskOptions } from "../protocol/options.js";
import type { EvidenceValue, Verdict } from "../protocol/report.js";
import { DEFAULT_ANOMALY, anomalyScores, type AnomalyScore } from "./anomaly.js";
import { readTelemetry, telemetryFindings, type Telemetry } from "./telemetry.js";

export class PolicyParameterError extends AnchorFLError {}

export interface PolicyParams {
  /** Outlier when the update's norm exceeds normFactor x the median norm (default 4: honest norms in our IID and Dirichlet(0.5) runs stay within 2.5x). */
  readonly normFactor: number;
  /** Outlier when the cosine to the robust reference is below this (default -0.2: a sign flip points away from every honest update; honest non-IID updates stay above 0). */
  readonly minCosine: number;
  /** Free riding when the norm is below zeroFactor x the median norm (default 1e-3: one local step of the smallest shard is far above it). */
  readonly zeroFactor: number;
  /** Near-copy when the cosine exceeds this ... (default 0.9999) */
  readonly copyCosine: number;
  /** ... and the distance is below copyDistance x the larger norm (default 1e-4). Two independently trained updates are nowhere near. */
  readonly copyDistance: number;
  /** Fewer valid updates than this: no outlier verdicts at all (a median of one or two judges nothing). Default 3. */
  readonly minReference: number;
  /** Earlier rounds whose reveals are compared for copies (default 1: the previous round). */
  readonly lookback: number;
}

export const DEFAULT_POLICY: PolicyParams = {
  normFactor: 4,
  minCosine: -0.2,
  zeroFactor: 1e-3,
  copyCosine: 0.9999,
  copyDistance: 1e-4,
  minReference: 3,
  lookback: 1,
};

export const POLICY_NAME = "conservative-v1";

const POLICY_RANGES: Readonly<Record<keyof PolicyParams, readonly [number, number]>> = {
  normFactor: [1, 1e6],
  minCosine: [-1, 1],
  zeroFactor: [0, 1],
  copyCosine: [0, 1],
  copyDistance: [0, 1],
  minReference: [1, 1e6],
  lookback: [0, 64],
};

/** Fills defaults and refuses unknown or out-of-range parameters by name. */
export function policyParams(raw: Readonly<Record<string, number | string | undefined>> = {}): PolicyParams {
  const out: Record<string, number> = { ...DEFAULT_POLICY };
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    if (!Object.hasOwn(POLICY_RANGES, key)) {
      throw new PolicyParameterError(`unknown policy parameter ${key} (known: ${Object.keys(POLICY_RANGES).join(", ")})`);
    }
    const [min, max] = POLICY_RANGES[key as keyof PolicyParams];
    const n = typeof value === "number" ? value : Number(value);
    const integer = key === "minReference" || key === "lookback";
    if (typeof value === "string" && value.trim() === "") throw new PolicyParameterError(`policy parameter ${key} is empty`);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new PolicyParameterError(`policy parameter ${key} must be ${integer ? "an integer" : "a number"} in [${min}, ${max}], found ${JSON.stringify(value)}`);
    }
    out[key] = n;
  }
  return out as unknown as PolicyParams;
}

/** What the policy knows about the file a participant's reveal points at. */
export type Submission =
  | { readonly status: "no-reveal" }
  | { readonly status: "unavailable"; readonly problem: string }
  | { readonly status: "invalid"; readonly problem: string }
  | {
      readonly status: "valid";
      /** The flat delta, canonical tensor order. */
      readonly vector: Float32Array;
      /** Block of the reveal: among same-round near-copies the earliest reveal is the original. */
      readonly revealBlock: number;
      /** The file's metadata (already checked against the reveal): its sample count and telemetry. */
      readonly metadata?: UpdateMetadata;
    };

export interface Candidate {
  /** Checksummed address. */
  readonly address: string;
  readonly submission: Submission;
}

/** An update revealed in an earlier round, compared for copies. */
export interface EarlierUpdate {
  readonly round: bigint;
  readonly participant: string;
  readonly digest: string;
  /** The model it was trained from. */
  readonly baseModelDigest: string;
  readonly vector: Float32Array;
}

export interface Judgement {
  readonly address: string;
  readonly verdict: Verdict;
  readonly reason: string;
  readonly evidence: Readonly<Record<string, EvidenceValue>>;
  /** The telemetry the update's file carried (valid updates only). */
  readonly telemetry?: Telemetry;
}

/** What the round's task says beyond the policy parameters. */
export interface JudgeContext {
  /** The task's options (from its model spec): telemetry bounds, anomaly detector. */
  readonly options?: TaskOptions;
  /** Seed the anomaly detector's projection: task and round, so every re-run draws the same axes. */
  readonly taskId?: bigint;
  readonly round?: bigint;
}

/** What a valid update's metadata must say; the first mismatch makes it invalid. */
export interface ExpectedMetadata {
  readonly taskId: bigint;
  readonly round: bigint;
  readonly participant: string;
  readonly baseModelDigest: string;
  readonly modelSpecDigest: string;
  readonly numSamples: bigint;
}

/** Returns why the metadata is wrong for this reveal, or undefined when it matches. */
export function metadataProblem(meta: UpdateMetadata, expected: ExpectedMetadata): string | undefined {
  const checks: [string, unknown, unknown][] = [
    ["kind", meta.kind, "delta"],
    ["task", meta.taskId, expected.taskId],
    ["round", meta.round, expected.round],
    ["participant", meta.participant.toLowerCase(), expected.participant.toLowerCase()],
    ["base model", meta.baseModelDigest.toLowerCase(), expected.baseModelDigest.toLowerCase()],
    ["model spec", meta.modelSpecDigest.toLowerCase(), expected.modelSpecDigest.toLowerCase()],
    ["sample count", BigInt(meta.numSamples), expected.numSamples],
  ];
  for (const [what, found, wanted] of checks) {
    if (found !== wanted) return `the file's ${what} is ${String(found)}, expected ${String(wanted)}`;
  }
  return undefined;
}

/** Rounds a figure for the report: 6 significant digits, exactly specified by ECMAScript. */
export function figure(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(6)) : 0;
}

const norm = (v: Float32Array) => Math.sqrt(sumOfSquares(v));

function cosine(a: Float32Array, b: Float32Array, na: number, nb: number): number {
  return na === 0 || nb === 0 ? 0 : dot(a, b) / (na * nb);
}

/** Cosine and relative distance (to the larger norm) of two updates, float64 throughout. */
function similarity(a: Float32Array, b: Float32Array, na: number, nb: number): { cosine: number; relativeDistance: number } {
  const d2 = Math.max(0, na * na + nb * nb - 2 * dot(a, b));
  const scale = Math.max(na, nb);
  return { cosine: cosine(a, b, na, nb), relativeDistance: scale === 0 ? 0 : Math.sqrt(d2) / scale };
}

interface Valid {
  readonly address: string;
  readonly vector: Float32Array;
  readonly revealBlock: number;
  readonly norm: number;
}

/**
 * Judges every committer. Order of tests: no reveal, unavailable, invalid, then for valid
 * updates: sample claims against the task's telemetry bounds, copies (of an earlier round, then
 * within the round), free riding, norm, direction, then the anomaly detector when the task has it.
 * Returns judgements in canonical (address) order.
 */
export function judge(
  candidates: readonly Candidate[],
  earlier: readonly EarlierUpdate[],
  params: PolicyParams = DEFAULT_POLICY,
  baseModelDigest = "",
  context: JudgeContext = {},
): Judgement[] {
  const ordered = [...candidates].sort((a, b) => compareAddresses(a.address, b.address));
  const out = new Map<string, Judgement>();
  const valid: Valid[] = [];
  for (const c of ordered) {
    const s = c.submission;
    if (s.status === "no-reveal") out.set(c.address, { address: c.address, verdict: "no-reveal", reason: "committed but never revealed its update", evidence: {} });
    else if (s.status === "unavailable")
      out.set(c.address, { address: c.address, verdict: "unavailable", reason: `the revealed update could not be retrieved: ${s.problem}`, evidence: {} });
    else if (s.status === "invalid") out.set(c.address, { address: c.address, verdict: "invalid", reason: `the revealed update is invalid: ${s.problem}`, evidence: {} });
    else if (!judgeTelemetry(c.address, s, context, out)) valid.push({ address: c.address, vector: s.vector, revealBlock: s.revealBlock, norm: norm(s.vector) });
  }

  const originals = judgeCopies(valid, earlier, params, baseModelDigest.toLowerCase(), out);
  // The coordinate median is the costliest step of judging: computed once, for both tests.
  const reference = originals.length > 0 ? referenceOf(originals) : undefined;
  if (reference) judgeOutliers(originals, reference, params, out);
  if (reference && context.options?.anomaly) judgeAnomalies(originals, reference, context.options.anomaly, [String(context.taskId ?? 0n), String(context.round ?? 0n)], out);
  return ordered.map((c) => withTelemetry(out.get(c.address)!, c.submission, context));
}

/** Judges a sample claim outside the task's bounds as invalid (returns true); otherwise leaves the update to the other tests. */
function judgeTelemetry(address: string, s: Extract<Submission, { status: "valid" }>, context: JudgeContext, out: Map<string, Judgement>): boolean {
  const option = context.options?.telemetry;
  if (!option || !s.metadata) return false;
  const findings = telemetryFindings(s.metadata.numSamples, s.metadata.extra, option);
  if (!findings.invalid) return false;
  out.set(address, {
    address,
    verdict: "invalid",
    reason: `the revealed update is invalid: ${findings.invalid}`,
    evidence: { claimedSamples: s.metadata.numSamples, minSamples: option.minSamples ?? 1, ...(option.maxSamples !== undefined ? { maxSamples: option.maxSamples } : {}) },
  });
  return true;
}

/** Attaches a valid update's telemetry, and with the telemetry option its flags (evidence only: never a verdict change). */
function withTelemetry(j: Judgement, s: Submission, context: JudgeContext): Judgement {
  if (s.status !== "valid" || !s.metadata) return j;
  const { telemetry } = readTelemetry(s.metadata.extra);
  const option = context.options?.telemetry;
  const flags = option ? telemetryFindings(s.metadata.numSamples, s.metadata.extra, option).flags : [];
  return {
    ...j,
    ...(flags.length > 0 ? { evidence: { ...j.evidence, telemetryFlags: flags.join("; ") } } : {}),
    ...(Object.keys(telemetry).length > 0 ? { telemetry } : {}),
  };
}

/** Marks copies of earlier reveals and same-round near-copies; returns the updates left. */
function judgeCopies(valid: readonly Valid[], earlier: readonly EarlierUpdate[], p: PolicyParams, base: string, out: Map<string, Judgement>): Valid[] {
  // |na - nb| <= |a - b| (triangle inequality): norms further apart than the distance bound
  // cannot belong to a near-copy, which skips the dot product for almost every pair.
  const isCopy = (a: Float32Array, b: Float32Array, na: number, nb: number) => {
    if (Math.abs(na - nb) > p.copyDistance * Math.max(na, nb)) return false;
    const s = similarity(a, b, na, nb);
    return s.cosine > p.copyCosine && s.relativeDistance < p.copyDistance;
  };
  const earlierNorms = earlier.map((e) => norm(e.vector));
  const left: Valid[] = [];
  for (const v of valid) {
    if (v.norm === 0) {
      left.push(v); // a zero update copies nothing: free riding is judged below
      continue;
    }
    // Retraining from the same model (after a failed round) may honestly give the same update
    // again: one's own earlier update is stale only once the model has moved.
    const stale = (e: EarlierUpdate) => e.participant.toLowerCase() !== v.address.toLowerCase() || e.baseModelDigest.toLowerCase() !== base;
    const source = earlier.find((e, i) => stale(e) && isCopy(v.vector, e.vector, v.norm, earlierNorms[i]));
    if (source) {
      const s = similarity(v.vector, source.vector, v.norm, norm(source.vector));
      const whose = source.participant.toLowerCase() === v.address.toLowerCase() ? "its own" : `${source.participant}'s`;
      out.set(v.address, {
        address: v.address,
        verdict: "duplicate",
        reason: `the update is a near-copy of ${whose} round ${source.round} update ${source.digest}`,
        evidence: { copiedDigest: source.digest, copiedRound: source.round.toString(), cosine: figure(s.cosine), relativeDistance: figure(s.relativeDistance) },
      });
    } else left.push(v);
  }
  // Commitments hide updates until every commit is in, so at most one of a group of near-copies
  // can be original work: the earliest reveal (ties: lowest address) keeps its place.
  const byReveal = [...left].sort((a, b) => a.revealBlock - b.revealBlock || compareAddresses(a.address, b.address));
  const kept: Valid[] = [];
  for (const v of byReveal) {
    const original = v.norm === 0 ? undefined : kept.find((k) => k.norm !== 0 && isCopy(v.vector, k.vector, v.norm, k.norm));
    if (original) {
      const s = similarity(v.vector, original.vector, v.norm, original.norm);
      out.set(v.address, {
        address: v.address,
        verdict: "duplicate",
        reason: `the update is a near-copy of ${original.address}'s update in this round, revealed earlier`,
        evidence: { copiedParticipant: original.address, cosine: figure(s.cosine), relativeDistance: figure(s.relativeDistance) },
      });
    } else kept.push(v);
  }
  return left.filter((v) => !out.has(v.address));
}

/** The coordinate-wise median of the updates: the reference both the outlier tests and the detector measure against. */
function referenceOf(valid: readonly Valid[]): Float32Array {
  return coordinateMedian(
    valid.map((v) => v.vector),
    valid[0].vector.length,
  );
}

/** `reference` is referenceOf(valid). */
function judgeOutliers(valid: readonly Valid[], reference: Float32Array, p: PolicyParams, out: Map<string, Judgement>): void {
  const enough = valid.length >= p.minReference;
  const medianNorm = medianOf(valid.map((v) => v.norm));
  const referenceNorm = norm(reference);
  for (const v of valid) {
    const cos = cosine(v.vector, reference, v.norm, referenceNorm);
    const ratio = medianNorm === 0 ? (v.norm === 0 ? 1 : Infinity) : v.norm / medianNorm;
    const evidence = { norm: figure(v.norm), medianNorm: figure(medianNorm), normRatio: figure(ratio), cosine: figure(cos) };
    const judged = (verdict: Verdict, reason: string, extra: Record<string, EvidenceValue> = {}) =>
      out.set(v.address, { address: v.address, verdict, reason, evidence: { ...evidence, ...extra } });
    if (v.norm === 0 || (enough && ratio < p.zeroFactor)) {
      judged("outlier", `the update is ${v.norm === 0 ? "exactly zero" : "near zero"} (norm ${figure(v.norm)}, ${figure(ratio)} x the median norm): free riding`, {
        threshold: p.zeroFactor,
      });
    } else if (!enough) {
      judged("accepted", `accepted without outlier tests: ${valid.length} valid update(s), fewer than the ${p.minReference} needed for a robust reference`);
    } else if (ratio > p.normFactor) {
      judged("outlier", `the update's norm ${figure(v.norm)} is ${figure(ratio)} x the median norm, above the limit of ${p.normFactor} x`, { threshold: p.normFactor });
    } else if (cos < p.minCosine) {
      judged("outlier", `the update points away from the round's coordinate-wise median (cosine ${figure(cos)}, below ${p.minCosine})`, { threshold: p.minCosine });
    } else {
      judged("accepted", `within bounds: norm ${figure(ratio)} x the median, cosine ${figure(cos)} to the coordinate-wise median`);
    }
  }
}

/**
 * Scores the round's original non-zero updates with the anomaly detector and records the scores
 * in every scored update's evidence. An accepted update above the threshold is flagged; it
 * becomes an outlier only above slashThreshold with two views agreeing (see AnomalyOption).
 * `reference` is referenceOf(valid); the non-zero updates are scored against their own median,
 * which is that one when no update is zero.
 */
function judgeAnomalies(valid: readonly Valid[], reference: Float32Array, option: AnomalyOption, seed: readonly string[], out: Map<string, Judgement>): void {
  const scored = valid.filter((v) => v.norm > 0);
  if (scored.length === 0) return;
  const threshold = option.threshold ?? DEFAULT_ANOMALY.threshold;
  const params = { threshold, dims: option.dims ?? DEFAULT_ANOMALY.dims };
  for (const a of anomalyScores(scored, scored.length === valid.length ? reference : referenceOf(scored), params, seed)) {
    const j = out.get(a.address)!;
    const evidence = { ...j.evidence, ...anomalyEvidence(a), anomalyFlagged: a.flagged };
    const slash = j.verdict === "accepted" && option.slashThreshold !== undefined && a.score > option.slashThreshold && a.signals >= 2;
    if (slash) {
      out.set(a.address, {
        ...j,
        verdict: "outlier",
        reason: `the anomaly detector scores the update ${figure(a.score)} robust standard deviations from the round's updates, above ${option.slashThreshold}, with ${a.signals} of its 3 views beyond ${threshold / 2}`,
        evidence: { ...evidence, anomalySlashThreshold: option.slashThreshold! },
      });
    } else if (j.verdict === "accepted" && a.flagged) {
      out.set(a.address, { ...j, reason: `${j.reason}; flagged by the anomaly detector (score ${figure(a.score)} above ${threshold}), not slashed`, evidence });
    } else out.set(a.address, { ...j, evidence });
  }
}

function anomalyEvidence(a: AnomalyScore): Record<string, EvidenceValue> {
  return { anomalyScore: figure(a.score), anomalyNormZ: figure(a.normZ), anomalyCosineZ: figure(a.cosineZ), anomalyProjectionZ: figure(a.projectionZ) };
}
