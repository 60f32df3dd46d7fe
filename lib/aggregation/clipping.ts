// Norm clipping: scale every update whose L2 norm exceeds a bound down to that bound (Sun et
// al., "Can you really backdoor federated learning?", 2019). Used on its own (clipped
// sample-weighted mean) and as a pre-step for any other rule. Only the clipped rows are
// copied; rows within the bound are used as they are.
import { RuleParameterError } from "./errors.js";
import type { Prepared } from "./input.js";
import { medianOf } from "./select.js";
import type { ClipOption } from "./types.js";

export interface Clipped {
  /** Rows in canonical order: the caller's vector when within the bound, a scaled copy otherwise. */
  readonly rows: readonly Float32Array[];
  /** Factor each row was scaled by (1 = untouched). */
  readonly factors: Float64Array;
  readonly bound: number;
}

/** Resolves the clip option to a bound: the given number, or the median of the update norms. */
export function clipBound(input: Prepared, clip: ClipOption): number {
  if (clip === "median") return medianOf(input.norms);
  if (typeof clip !== "number" || !Number.isFinite(clip) || clip <= 0) {
    throw new RuleParameterError(`clip: expected a positive finite L2 bound or "median", found ${String(clip)}`, { details: { clip } });
  }
  return clip;
}

/** Clips every row to the bound. Each clipped value is rounded to float32 once, from the float64 product. */
export function clipRows(input: Prepared, clip: ClipOption): Clipped {
  const bound = clipBound(input, clip);
  const factors = new Float64Array(input.n).fill(1);
  const rows = input.rows.map((row, i) => {
    const norm = input.norms[i];
    if (norm <= bound) return row;
    const factor = bound / norm;
    factors[i] = factor;
    const out = new Float32Array(row.length);
    for (let k = 0; k < row.length; k++) out[k] = row[k] * factor;
    return out;
  });
  return { rows, factors, bound };
}

/** The rows a rule should use: clipped when asked (with the factors and bound for the report), the inputs otherwise. */
export function withClip(
  input: Prepared,
  clip: ClipOption | undefined,
): { rows: readonly Float32Array[]; clipFactors?: Float64Array; details: { clipBound?: number } } {
  if (clip === undefined) return { rows: input.rows, details: {} };
  const clipped = clipRows(input, clip);
  return { rows: clipped.rows, clipFactors: clipped.factors, details: { clipBound: clipped.bound } };
}
