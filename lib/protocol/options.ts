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
import { AnchorFLError } from "../errors.js";

export class TaskOptionsError extends AnchorFLError {}

// ---- compression -------------------------------------------------------------------------

/** How participants encode their update files (absent: float32, uncompressed). */
export interface CompressionOption {
  readonly scheme: "f16" | "i8" | "topk";
  /** topk only: the fraction of coordinates each update keeps, in (0, 1]. */
  readonly fraction?: number;
}

function compressionProblems(value: unknown): string[] {
  if (!isObject(value)) return ["options.compression must be an object"];
  const v = value as Record<string, unknown>;
  const out = unknownKeys(v, ["scheme", "fraction"], "options.compression");
  if (!["f16", "i8", "topk"].includes(v.scheme as string)) out.push(`options.compression.scheme must be "f16", "i8" or "topk", found ${JSON.stringify(v.scheme)}`);
  if (v.scheme === "topk" && !(typeof v.fraction === "number" && v.fraction > 0 && v.fraction <= 1)) {
    out.push(`options.compression.fraction must be a number in (0, 1] for topk, found ${JSON.stringify(v.fraction)}`);
  }
  if (v.scheme !== "topk" && v.fraction !== undefined) out.push(`options.compression.fraction applies to topk only`);
  return out;
}

// ---- the options object --------------------------------------------------------------------

export interface TaskOptions {
  readonly compression?: CompressionOption;
}

const SECTIONS: Readonly<Record<keyof TaskOptions, (value: unknown) => string[]>> = {
  compression: compressionProblems,
};

/** Every problem of a spec's `options` value (empty when it is well-formed or absent). */
export function taskOptionsProblems(value: unknown): string[] {
  if (value === undefined) return [];
  if (!isObject(value)) return ["options must be an object"];
  const v = value as Record<string, unknown>;
  const out = unknownKeys(v, Object.keys(SECTIONS), "options");
  for (const [key, problems] of Object.entries(SECTIONS)) if (v[key] !== undefined) out.push(...problems(v[key]));
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
