// Training telemetry: what a participant says about its local training, carried as strings in
// its update file's metadata (`extra`): loss before and after, epochs, wall time, backend and,
// with local DP, the privacy budget. The sample count is not here: it is the file's
// num_samples, bound to the on-chain reveal. Everything here is self-reported and unverifiable,
// so it is parsed strictly (a hostile value becomes a named problem, never a crash or a NaN in
// the report) and checked for plausibility against the task's telemetry option.
import { AnchorFLError } from "../errors.js";
import type { TelemetryOption } from "../protocol/options.js";
import type { ReportTelemetry } from "../protocol/report.js";

export class TelemetryError extends AnchorFLError {}

/** Parsed telemetry; a key is absent when the file did not carry it or carried it malformed. */
export type Telemetry = ReportTelemetry;

/** Default for TelemetryOption.maxLossRatio. */
const DEFAULT_MAX_LOSS_RATIO = 2;

const NUMBER = /^[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?$/i;
const INTEGER = /^(0|[1-9][0-9]*)$/;
const BACKEND = /^[a-z0-9][a-z0-9._-]{0,31}$/;

type Reader = (text: string) => number | string | undefined;
/** A non-negative finite decimal (losses, DP budget): no sign, no hex, no Infinity, no NaN. */
const real: Reader = (t) => (NUMBER.test(t) && Number.isFinite(Number(t)) ? Number(t) : undefined);
const count =
  (min: number): Reader =>
  (t) =>
    INTEGER.test(t) && Number.isSafeInteger(Number(t)) && Number(t) >= min ? Number(t) : undefined;

/** Metadata key -> report key, how it is read, and what a valid value is. */
const KEYS: readonly (readonly [string, keyof Telemetry, Reader, string])[] = [
  ["loss_before", "lossBefore", real, "a non-negative finite decimal number"],
  ["loss_after", "lossAfter", real, "a non-negative finite decimal number"],
  ["epochs", "epochs", count(1), "a positive integer"],
  ["wall_ms", "wallMs", count(0), "a non-negative integer"],
  ["backend", "backend", (t) => (BACKEND.test(t) ? t : undefined), "a short lowercase name"],
  ["dp_epsilon", "dpEpsilon", real, "a non-negative finite decimal number"],
  ["dp_delta", "dpDelta", real, "a non-negative finite decimal number"],
];

/** Reads the telemetry keys of a file's metadata `extra`; other keys are ignored. Never throws. */
export function readTelemetry(extra: Readonly<Record<string, string>>): { readonly telemetry: Telemetry; readonly problems: readonly string[] } {
  const telemetry: Record<string, number | string> = {};
  const problems: string[] = [];
  for (const [key, field, read, expected] of KEYS) {
    if (!Object.hasOwn(extra, key)) continue;
    const text = String(extra[key]);
    const value = read(text);
    if (value === undefined) problems.push(`telemetry ${key} must be ${expected}, found ${JSON.stringify(text.slice(0, 40))}${text.length > 40 ? "…" : ""}`);
    else telemetry[field] = value;
  }
  return { telemetry: telemetry as Telemetry, problems };
}

/** Strict form of readTelemetry, for tools that must refuse bad telemetry: throws TelemetryError naming every problem. */
export function parseTelemetry(extra: Readonly<Record<string, string>>): Telemetry {
  const { telemetry, problems } = readTelemetry(extra);
  if (problems.length) throw new TelemetryError(problems.join("; "), { details: { problems } });
  return telemetry;
}

export interface TelemetryFindings {
  /** Why the update is invalid (a sample claim outside the task's bounds), or undefined. */
  readonly invalid?: string;
  /** Implausible but unverifiable claims: recorded, never slashed. */
  readonly flags: readonly string[];
}

/** Checks a valid update's claims against the task's telemetry option. */
export function telemetryFindings(numSamples: number, extra: Readonly<Record<string, string>>, option: TelemetryOption): TelemetryFindings {
  const min = option.minSamples ?? 1;
  const max = option.maxSamples ?? Number.MAX_SAFE_INTEGER;
  const invalid =
    numSamples < min || numSamples > max
      ? `it claims ${numSamples} training samples, outside the task's bounds of ${min} to ${option.maxSamples ?? "any number"}`
      : undefined;
  const { telemetry: t, problems } = readTelemetry(extra);
  const flags = [...problems];
  if (t.lossBefore === undefined && t.lossAfter === undefined && t.epochs === undefined) flags.push("no training telemetry (loss, epochs)");
  if (option.maxEpochs !== undefined && t.epochs !== undefined && t.epochs > option.maxEpochs) flags.push(`${t.epochs} epochs, above the task's ${option.maxEpochs}`);
  const ratio = option.maxLossRatio ?? DEFAULT_MAX_LOSS_RATIO;
  if (t.lossBefore !== undefined && t.lossAfter !== undefined && t.lossAfter > ratio * t.lossBefore) {
    flags.push(`local loss rose from ${t.lossBefore} to ${t.lossAfter}, more than ${ratio} x`);
  }
  return { ...(invalid ? { invalid } : {}), flags };
}
