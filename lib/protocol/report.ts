// The aggregation report: the public reasons behind a round's result. It is pinned as canonical
// JSON and its sha-256 goes on-chain with the result, so every verdict, slash and reward can be
// re-checked by anyone (`verify`). Clients read it to find the new model file and their reward.
import { getAddress } from "ethers";
import { canonicalJsonBytes } from "../canonical-json.js";
import { AnchorFLError } from "../errors.js";

export const REPORT_FORMAT = "anchorfl.report.v1";

export const VERDICTS = ["accepted", "outlier", "invalid", "unavailable", "duplicate", "no-reveal"] as const;
export type Verdict = (typeof VERDICTS)[number];

/** The on-chain slash reason each verdict leads to (accepted: none). */
export const SLASH_REASON_OF: Readonly<Record<Verdict, "Outlier" | "Invalid" | "Duplicate" | "NoReveal" | undefined>> = {
  accepted: undefined,
  outlier: "Outlier",
  invalid: "Invalid",
  unavailable: "Invalid",
  duplicate: "Duplicate",
  "no-reveal": "NoReveal",
};

type Hex32 = `0x${string}`;
export type EvidenceValue = number | string | boolean;

/** What a participant said about its local training (update metadata), parsed; see lib/aggregator/telemetry.ts. */
export interface ReportTelemetry {
  readonly lossBefore?: number;
  readonly lossAfter?: number;
  readonly epochs?: number;
  readonly wallMs?: number;
  readonly backend?: string;
  readonly dpEpsilon?: number;
  readonly dpDelta?: number;
}

const TELEMETRY_FIELDS: Readonly<Record<keyof ReportTelemetry, "number" | "string">> = {
  lossBefore: "number",
  lossAfter: "number",
  epochs: "number",
  wallMs: "number",
  backend: "string",
  dpEpsilon: "number",
  dpDelta: "number",
};

export interface ReportParticipant {
  readonly address: string;
  readonly verdict: Verdict;
  /** One sentence a person can read: why this verdict. */
  readonly reason: string;
  /** Absent for no-reveal. */
  readonly updateDigest?: Hex32;
  readonly contentRoot?: Hex32;
  /** Decimal string (as revealed on-chain). */
  readonly numSamples?: string;
  /** The rule's suspicion score (higher = more suspicious), when the update took part. */
  readonly score?: number;
  /** Figures behind the verdict: norm, distance, cosine, threshold, copied digest, ... */
  readonly evidence?: Readonly<Record<string, EvidenceValue>>;
  /** The participant's self-reported training telemetry, when its file carried any. */
  readonly telemetry?: ReportTelemetry;
}

export interface ContentPointer {
  readonly digest: Hex32;
  readonly contentRoot: Hex32;
}

export interface AggregationReport {
  readonly format: typeof REPORT_FORMAT;
  readonly chainId: string;
  readonly coordinator: string;
  readonly taskId: string;
  readonly round: string;
  readonly baseModelDigest: Hex32;
  readonly modelSpecDigest: Hex32;
  readonly rule: { readonly name: string; readonly params: Readonly<Record<string, EvidenceValue>> };
  readonly policy: { readonly name: string; readonly params: Readonly<Record<string, EvidenceValue>> };
  /** Every committer of the round, in canonical (address) order. */
  readonly participants: readonly ReportParticipant[];
  /** The new global model file. */
  readonly model: ContentPointer & { readonly numSamples: string };
  readonly rewards: {
    readonly budget: string;
    readonly total: string;
    readonly root: Hex32;
    readonly allocations: readonly { readonly account: string; readonly amount: string }[];
  };
  readonly slashes: readonly { readonly participant: string; readonly reason: "Outlier" | "Invalid" | "Duplicate" | "NoReveal" }[];
  /**
   * Files the round depends on beyond the updates, sorted by name: `server-optimizer` (the
   * optimiser state after this round) and `fltrust-server-update` (the server update this round
   * used). See lib/aggregator/state.ts.
   */
  readonly state?: readonly (ContentPointer & { readonly name: string })[];
  /** The server optimiser applied on top of the rule (its state is the `server-optimizer` file). */
  readonly optimizer?: { readonly name: string; readonly params: Readonly<Record<string, EvidenceValue>> };
  /** How FLTrust's server update was computed (a root set anyone can re-create, the training, the backend). */
  readonly serverUpdate?: ServerUpdateSource;
  /** How reputation (task option `reputation`) was computed and used this round; see lib/aggregator/reputation.ts. */
  readonly reputation?: ReportReputation;
  /**
   * Held-out accuracy and loss of the new model, when the aggregator evaluates (`--eval`).
   * Computed with a training backend, so `verify` re-checks it approximately; aggregators in one
   * quorum must all evaluate on the same backend, or none.
   */
  readonly evaluation?: ReportEvaluation;
  readonly software: { readonly name: "anchorfl"; readonly version: string };
}

/** Held-out accuracy and loss of a round's new model. */
export interface ReportEvaluation {
  readonly dataset: string;
  readonly examples: number;
  readonly accuracy: number;
  readonly loss: number;
}

/** How the FLTrust server update was computed: which root set, which local training, which backend. */
export interface ServerUpdateSource {
  /** A root data set anyone can re-create, e.g. `mnist-root:<seed>:<size>` (see lib/aggregator/state-fltrust.ts). */
  readonly rootData: string;
  readonly training: RootTraining;
  /** The training backend it ran on (the bytes depend on it). */
  readonly backend: string;
}

/** The participants' local-training settings that the server update uses (client/train TrainOptions). */
export interface RootTraining {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly optimizer: "sgd" | "adam";
  readonly seed: number;
}

/** The reputation record of a round: parameters, the history it came from, and every committer's score. */
export interface ReportReputation {
  readonly params: { readonly halfLife: number; readonly window: number; readonly prior: number; readonly priorWeight: number };
  /** The rounds read (inclusive, decimal strings); failed rounds in it have no report and count for nothing. */
  readonly window: { readonly from: string; readonly to: string };
  /** The finalized rounds of the window and their report digests, ascending. */
  readonly history: readonly { readonly round: string; readonly report: Hex32 }[];
  /** Whether scores multiplied the rule's sample weights (only sample-weighted rules take them). */
  readonly weighted: boolean;
  /** At most this many accepted updates were aggregated, the top ones by reputation. */
  readonly select?: number;
  /** Every committer in address order: its score (6 significant digits) and whether its update was aggregated. */
  readonly scores: readonly { readonly address: string; readonly reputation: number; readonly aggregated: boolean }[];
}

export class ReportFormatError extends AnchorFLError {}

/** The bytes that are pinned and whose sha-256 goes on-chain. */
export function encodeReport(report: AggregationReport): Uint8Array {
  return canonicalJsonBytes(report);
}

const HEX32 = /^0x[0-9a-f]{64}$/;
const DECIMAL = /^(0|[1-9][0-9]*)$/;
const STATE_NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** Parses report bytes fetched from the store; throws ReportFormatError naming every malformed field. */
export function parseReport(bytes: Uint8Array): AggregationReport {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new ReportFormatError(`report is not UTF-8 JSON: ${(cause as Error).message}`, { cause });
  }
  const problems = reportProblems(value);
  if (problems.length) throw new ReportFormatError(`report fields: ${problems.join("; ")}`, { details: { problems } });
  return value as AggregationReport;
}

function telemetryIsValid(t: unknown): boolean {
  if (typeof t !== "object" || t === null || Array.isArray(t)) return false;
  return Object.entries(t).every(([key, value]) => {
    const kind = Object.hasOwn(TELEMETRY_FIELDS, key) ? TELEMETRY_FIELDS[key as keyof ReportTelemetry] : undefined;
    return kind === "number" ? typeof value === "number" && Number.isFinite(value) && value >= 0 : kind === "string" && typeof value === "string" && value.length <= 32;
  });
}

function reputationIsValid(x: ReportReputation): boolean {
  if (typeof x !== "object" || x === null) return false;
  return (
    typeof x.params === "object" && x.params !== null && [x.params.halfLife, x.params.window, x.params.prior, x.params.priorWeight].every(Number.isFinite) &&
    DECIMAL.test(String(x.window?.from)) && DECIMAL.test(String(x.window?.to)) &&
    Array.isArray(x.history) && x.history.every((h) => DECIMAL.test(String(h?.round)) && HEX32.test(String(h?.report))) &&
    typeof x.weighted === "boolean" && (x.select === undefined || Number.isSafeInteger(x.select)) &&
    Array.isArray(x.scores) &&
    x.scores.every((s) => typeof s?.address === "string" && typeof s.reputation === "number" && s.reputation >= 0 && s.reputation <= 1 && typeof s.aggregated === "boolean")
  );
}

/** Everything wrong with the shape of a parsed report, so that printers and pages can trust its types. */
function reportProblems(value: unknown): string[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return ["the report must be a JSON object"];
  const r = value as AggregationReport;
  const out: string[] = [];
  const check = (ok: boolean, field: string, expected: string) => {
    if (!ok) out.push(`${field} must be ${expected}`);
  };
  const isAddress = (x: unknown) => {
    try {
      getAddress(String(x));
      return true;
    } catch {
      return false;
    }
  };
  const isName = (x: unknown) => typeof x === "object" && x !== null && typeof (x as { name?: unknown }).name === "string";
  check(r.format === REPORT_FORMAT, "format", JSON.stringify(REPORT_FORMAT));
  for (const key of ["chainId", "taskId", "round"] as const) check(DECIMAL.test(String(r[key])), key, "a decimal string");
  for (const key of ["baseModelDigest", "modelSpecDigest"] as const) check(HEX32.test(String(r[key])), key, "0x + 64 lowercase hex digits");
  check(isName(r.rule), "rule", "{name, params}");
  check(isName(r.policy), "policy", "{name, params}");
  check(!!r.model && HEX32.test(String(r.model.digest)) && HEX32.test(String(r.model.contentRoot)), "model", "{digest, contentRoot} as 0x hex");
  if (!Array.isArray(r.participants)) out.push("participants must be an array");
  else
    r.participants.forEach((p, i) => {
      check(VERDICTS.includes(p?.verdict), `participants[${i}].verdict`, VERDICTS.join(" | "));
      check(isAddress(p?.address), `participants[${i}].address`, "an address");
      check(typeof p?.reason === "string", `participants[${i}].reason`, "a string");
      check(p?.score === undefined || Number.isFinite(p.score), `participants[${i}].score`, "a finite number");
      check(p?.numSamples === undefined || DECIMAL.test(String(p.numSamples)), `participants[${i}].numSamples`, "a decimal string");
      check(p?.telemetry === undefined || telemetryIsValid(p.telemetry), `participants[${i}].telemetry`, "an object of known telemetry fields (non-negative finite numbers, a short backend name)");
    });
  if (!r.rewards || !Array.isArray(r.rewards.allocations) || !HEX32.test(String(r.rewards.root))) out.push("rewards must be {budget, total, root, allocations[]}");
  else r.rewards.allocations.forEach((a, i) => check(DECIMAL.test(String(a?.amount)), `rewards.allocations[${i}].amount`, "a decimal string"));
  check(Array.isArray(r.slashes), "slashes", "an array");
  check(r.reputation === undefined || reputationIsValid(r.reputation), "reputation", "{params, window, history[], weighted, scores[{address, reputation in [0, 1], aggregated}]}");
  const state = r.state;
  if (state !== undefined) {
    if (!Array.isArray(state)) out.push("state must be an array of {name, digest, contentRoot}");
    else
      state.forEach((s, i) => {
        check(typeof s?.name === "string" && STATE_NAME.test(s.name), `state[${i}].name`, "lowercase letters, digits and dashes");
        check(HEX32.test(String(s?.digest)) && HEX32.test(String(s?.contentRoot)), `state[${i}]`, "{name, digest, contentRoot} with 0x hex digests");
        check(i === 0 || String(state[i - 1]?.name) < String(s?.name), `state[${i}].name`, "after the previous entry's name (sorted, unique)");
      });
  }
  check(r.optimizer === undefined || isName(r.optimizer), "optimizer", "{name, params}");
  const su = r.serverUpdate;
  const t = su?.training;
  check(
    su === undefined ||
      (typeof su === "object" &&
        typeof su.rootData === "string" &&
        typeof su.backend === "string" &&
        typeof t === "object" &&
        t !== null &&
        [t.epochs, t.batchSize, t.learningRate, t.seed].every(Number.isFinite) &&
        (t.optimizer === "sgd" || t.optimizer === "adam")),
    "serverUpdate",
    "{rootData, training: {epochs, batchSize, learningRate, optimizer, seed}, backend}",
  );
  const e = r.evaluation;
  check(
    e === undefined || (typeof e === "object" && e !== null && typeof e.dataset === "string" && [e.examples, e.accuracy, e.loss].every(Number.isFinite)),
    "evaluation",
    "{dataset, examples, accuracy, loss} with finite numbers",
  );
  return out;
}
