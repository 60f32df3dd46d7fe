// Task options: the off-chain settings every party of a task must agree on beyond the model
// itself — how updates are compressed, which training telemetry is plausible, whether the
// reputation of participants weights aggregation, whether the anomaly detector feeds the
// verdict policy. They live in the model spec's `options` field, and the spec's digest is
// on-chain, so agreeing on the task's spec digest is agreeing on its options. Every option is
// off when absent, so a spec without options means exactly what it meant before they existed.
//
// Each option has one section below: its type, its defaults and its validator. Validators
// return every problem they find, named by path, so a spec received from others is refused
// with all its faults at once.
import { COMPRESSION_SCHEMES, type CompressionScheme } from "../codec/update-metadata.js";
import { AnchorFLError } from "../errors.js";

export class TaskOptionsError extends AnchorFLError {}

// ---- compression -------------------------------------------------------------------------

/** How participants encode their update files (absent: float32, uncompressed). */
export interface CompressionOption {
  readonly scheme: CompressionScheme;
  /** topk only: the fraction of coordinates each update keeps, in (0, 1]. */
  readonly fraction?: number;
  /**
   * topk only (default true): each client carries what it did not send (its residual) into its
   * next round's update, so nothing is dropped for good. Client-side, so the aggregator cannot
   * check it; the option says what honest clients of the task do.
   */
  readonly errorFeedback?: boolean;
}

/** Whether clients of a task with this compression keep an error-feedback residual. */
export const usesErrorFeedback = (c: CompressionOption | undefined): boolean => c?.scheme === "topk" && c.errorFeedback !== false;

/** Parses the command-line form f16 | i8 | topk:FRACTION[:no-ef] (no-ef: without error feedback). */
export function parseCompression(text: string): CompressionOption {
  const [scheme, fraction, flag, ...rest] = text.split(":");
  const option: CompressionOption =
    scheme === "topk" ? { scheme, fraction: Number(fraction), ...(flag === "no-ef" ? { errorFeedback: false } : {}) } : { scheme: scheme as CompressionOption["scheme"] };
  const extra = scheme === "topk" ? (flag !== undefined && flag !== "no-ef") || rest.length > 0 : fraction !== undefined;
  const problems = [...sectionProblems("compression", option), ...(extra ? [`unexpected ":" parts`] : [])];
  if (problems.length) throw new TaskOptionsError(`compression "${text}": ${problems.join("; ")}`, { hint: "write f16, i8, topk:FRACTION or topk:FRACTION:no-ef (e.g. topk:0.1)" });
  return option;
}

const SCHEME_LIST = COMPRESSION_SCHEMES.map((x) => `"${x}"`).join(", ").replace(/, ([^,]*)$/, " or $1");

const COMPRESSION_KEYS = ["scheme", "fraction", "errorFeedback"];

function compressionProblems(v: Record<string, unknown>): string[] {
  const out: string[] = [];
  if (v.errorFeedback !== undefined && (v.scheme !== "topk" || typeof v.errorFeedback !== "boolean")) {
    out.push(`options.compression.errorFeedback must be a boolean, for topk only, found ${JSON.stringify(v.errorFeedback)}`);
  }
  if (!(COMPRESSION_SCHEMES as readonly unknown[]).includes(v.scheme)) out.push(`options.compression.scheme must be ${SCHEME_LIST}, found ${JSON.stringify(v.scheme)}`);
  if (v.scheme === "topk" && !(typeof v.fraction === "number" && v.fraction > 0 && v.fraction <= 1)) {
    out.push(`options.compression.fraction must be a number in (0, 1] for topk, found ${JSON.stringify(v.fraction)}`);
  }
  if (v.scheme !== "topk" && v.fraction !== undefined) out.push(`options.compression.fraction applies to topk only`);
  return out;
}

// ---- telemetry -----------------------------------------------------------------------------

/**
 * Which training telemetry is plausible for this task. Claimed samples outside the bounds make
 * the update invalid (the count is revealed on-chain and weights rewards); the other findings
 * are flagged in the report without slashing, because telemetry is self-reported.
 */
export interface TelemetryOption {
  /** Fewest samples a participant may claim (default 1). */
  readonly minSamples?: number;
  /** Most samples a participant may claim (default: no bound). */
  readonly maxSamples?: number;
  /** Most local epochs a participant may report (default: no bound). */
  readonly maxEpochs?: number;
  /** Flag when loss_after exceeds this x loss_before (default 2: training that doubles its own loss did not train). */
  readonly maxLossRatio?: number;
}

const TELEMETRY_KEYS = ["minSamples", "maxSamples", "maxEpochs", "maxLossRatio"];

function telemetryProblems(v: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const key of ["minSamples", "maxSamples", "maxEpochs"]) {
    const n = v[key];
    if (n !== undefined && !(Number.isSafeInteger(n) && (n as number) >= (key === "minSamples" ? 0 : 1))) {
      out.push(`options.telemetry.${key} must be a ${key === "minSamples" ? "non-negative" : "positive"} integer, found ${JSON.stringify(n)}`);
    }
  }
  if (typeof v.minSamples === "number" && typeof v.maxSamples === "number" && v.minSamples > v.maxSamples) {
    out.push(`options.telemetry.minSamples (${v.minSamples}) exceeds maxSamples (${v.maxSamples})`);
  }
  if (v.maxLossRatio !== undefined && !(typeof v.maxLossRatio === "number" && Number.isFinite(v.maxLossRatio) && v.maxLossRatio >= 1)) {
    out.push(`options.telemetry.maxLossRatio must be a finite number >= 1, found ${JSON.stringify(v.maxLossRatio)}`);
  }
  return out;
}

// ---- anomaly -------------------------------------------------------------------------------

/** The learned anomaly detector (lib/aggregator/anomaly.ts) feeding the verdict policy. */
export interface AnomalyOption {
  /** Robust z-score above which an update is flagged in the report (default 6, measured: see lib/aggregator/anomaly.ts). */
  readonly threshold?: number;
  /** Dimensions of the seeded random projection, 1 to 32 (default 16). */
  readonly dims?: number;
  /** Robust z-score above which a flagged update is also an outlier, slashed, when a second signal agrees (default: never). */
  readonly slashThreshold?: number;
}

const ANOMALY_KEYS = ["threshold", "dims", "slashThreshold"];

function anomalyProblems(v: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const key of ["threshold", "slashThreshold"]) {
    const n = v[key];
    if (n !== undefined && !(typeof n === "number" && Number.isFinite(n) && n > 0)) out.push(`options.anomaly.${key} must be a positive finite number, found ${JSON.stringify(n)}`);
  }
  if (v.dims !== undefined && !(Number.isInteger(v.dims) && (v.dims as number) >= 1 && (v.dims as number) <= 32)) {
    out.push(`options.anomaly.dims must be an integer from 1 to 32, found ${JSON.stringify(v.dims)}`);
  }
  if (typeof v.threshold === "number" && typeof v.slashThreshold === "number" && v.slashThreshold < v.threshold) {
    out.push(`options.anomaly.slashThreshold (${v.slashThreshold}) is below threshold (${v.threshold})`);
  }
  return out;
}

// ---- reputation ----------------------------------------------------------------------------

/**
 * Reputation of participants from the task's own history of verdicts (lib/aggregator/reputation.ts
 * has the formula). With the section present every report records each committer's score; the
 * flags below say what the scores do.
 */
export interface ReputationOption {
  /** Multiply the rule's sample weights by reputation (sample-weighted rules only: fedavg, norm-clipping). */
  readonly weighting?: boolean;
  /** When more than this many updates are accepted, aggregate only the top ones by reputation (ties by address). */
  readonly select?: number;
  /** Rounds after which a verdict's weight halves (default 4). */
  readonly halfLife?: number;
  /** Finalized rounds of history read, the last `window` before the round, 1 to 64 (default 16). */
  readonly window?: number;
  /** A newcomer's score, in [0, 1] (default 0.5). */
  readonly prior?: number;
  /** How many rounds the prior counts as, > 0 (default 1). */
  readonly priorWeight?: number;
}

const REPUTATION_KEYS = ["weighting", "select", "halfLife", "window", "prior", "priorWeight"];

function reputationProblems(v: Record<string, unknown>): string[] {
  const out: string[] = [];
  const finite = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);
  if (v.weighting !== undefined && typeof v.weighting !== "boolean") out.push(`options.reputation.weighting must be true or false, found ${JSON.stringify(v.weighting)}`);
  if (v.select !== undefined && !(Number.isSafeInteger(v.select) && (v.select as number) >= 1)) out.push(`options.reputation.select must be a positive integer, found ${JSON.stringify(v.select)}`);
  if (v.halfLife !== undefined && !(finite(v.halfLife) && v.halfLife > 0)) out.push(`options.reputation.halfLife must be a positive number of rounds, found ${JSON.stringify(v.halfLife)}`);
  if (v.window !== undefined && !(Number.isInteger(v.window) && (v.window as number) >= 1 && (v.window as number) <= 64)) {
    out.push(`options.reputation.window must be an integer from 1 to 64, found ${JSON.stringify(v.window)}`);
  }
  if (v.prior !== undefined && !(finite(v.prior) && v.prior >= 0 && v.prior <= 1)) out.push(`options.reputation.prior must be a number in [0, 1], found ${JSON.stringify(v.prior)}`);
  if (v.priorWeight !== undefined && !(finite(v.priorWeight) && v.priorWeight > 0)) out.push(`options.reputation.priorWeight must be a positive number, found ${JSON.stringify(v.priorWeight)}`);
  return out;
}

/**
 * Reads a command-line flag's `key=value,key=value` (numbers) into an option section, e.g.
 * `--anomaly threshold=6,dims=16`; a bare flag (true) or "" is the section with its defaults.
 * The section is validated with the others when the spec is built (checkTaskOptions).
 */
export function optionFromPairs(flag: string, text: string | boolean): Record<string, number> {
  const out: Record<string, number> = {};
  if (typeof text === "boolean" || text.trim() === "") return out;
  for (const pair of text.split(",")) {
    const [key, value, ...rest] = pair.split("=");
    const n = Number(value);
    if (!key?.trim() || value === undefined || value.trim() === "" || rest.length > 0 || !Number.isFinite(n)) {
      throw new TaskOptionsError(`${flag} expects key=number pairs separated by commas, found "${pair}"`);
    }
    out[key.trim()] = n;
  }
  return out;
}

// ---- the options object --------------------------------------------------------------------

export interface TaskOptions {
  readonly compression?: CompressionOption;
  readonly reputation?: ReputationOption;
  readonly telemetry?: TelemetryOption;
  readonly anomaly?: AnomalyOption;
}

/** Each section's known keys and the checks of its fields (the object shape and unknown keys are checked once, by sectionProblems). */
const SECTIONS: Readonly<Record<keyof TaskOptions, { readonly keys: readonly string[]; readonly problems: (v: Record<string, unknown>) => string[] }>> = {
  compression: { keys: COMPRESSION_KEYS, problems: compressionProblems },
  reputation: { keys: REPUTATION_KEYS, problems: reputationProblems },
  telemetry: { keys: TELEMETRY_KEYS, problems: telemetryProblems },
  anomaly: { keys: ANOMALY_KEYS, problems: anomalyProblems },
};

function sectionProblems(name: keyof TaskOptions, value: unknown): string[] {
  const path = `options.${name}`;
  if (!isObject(value)) return [`${path} must be an object`];
  const v = value as Record<string, unknown>;
  return [...unknownKeys(v, SECTIONS[name].keys, path), ...SECTIONS[name].problems(v)];
}

/** Every problem of a spec's `options` value (empty when it is well-formed or absent). */
export function taskOptionsProblems(value: unknown): string[] {
  if (value === undefined) return [];
  if (!isObject(value)) return ["options must be an object"];
  const v = value as Record<string, unknown>;
  const out = unknownKeys(v, Object.keys(SECTIONS), "options");
  for (const key of Object.keys(SECTIONS) as (keyof TaskOptions)[]) if (v[key] !== undefined) out.push(...sectionProblems(key, v[key]));
  return out;
}

/** Throws TaskOptionsError naming every problem; returns the options (or {} when absent). */
export function checkTaskOptions(value: unknown): TaskOptions {
  const problems = taskOptionsProblems(value);
  if (problems.length) throw new TaskOptionsError(`task options: ${problems.join("; ")}`, { details: { problems } });
  return (value ?? {}) as TaskOptions;
}

function isObject(value: unknown): value is object {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function unknownKeys(v: Record<string, unknown>, known: readonly string[], path: string): string[] {
  return Object.keys(v)
    .filter((k) => !known.includes(k))
    .map((k) => `${path}.${k} is not a known option (known: ${known.join(", ")})`);
}
