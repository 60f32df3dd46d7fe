// Validation and canonical ordering of a round's updates. Every rule starts here, so every
// rule sees participants sorted by id (whatever order the caller had), refuses the same
// hostile inputs with the same errors, and gets the update norms for free.
import { compareNames } from "../tensors.js";
import { AggregationInputError } from "./errors.js";
import { sumOfSquares } from "./kernels.js";
import type { Update } from "./types.js";

/** The updates in canonical order: references to the callers' vectors, never copies. */
export interface Prepared {
  readonly ids: readonly string[];
  readonly numSamples: readonly number[];
  readonly rows: readonly Float32Array[];
  /** L2 norm of each row (float64 accumulation). */
  readonly norms: Float64Array;
  readonly n: number;
  readonly d: number;
}

/** Sorts, validates and measures the updates. Throws AggregationInputError on anything unusable. */
export function prepare(updates: readonly Update[]): Prepared {
  if (updates.length === 0) {
    throw new AggregationInputError("expected at least one update, found none");
  }
  const ordered = [...updates].sort((a, b) => compareNames(a.id, b.id));
  const d = ordered[0].vector?.length;
  ordered.forEach((u, i) => checkUpdate(u, i > 0 ? ordered[i - 1].id : undefined, d));
  const rows = ordered.map((u) => u.vector);
  const norms = new Float64Array(rows.length);
  rows.forEach((row, i) => {
    const sq = sumOfSquares(row);
    // Float32 values squared cannot overflow float64, so a non-finite sum means a non-finite value.
    if (!Number.isFinite(sq)) {
      throw new AggregationInputError(`update ${ordered[i].id}: expected finite values, found ${describeNonFinite(row)}`, {
        details: { id: ordered[i].id },
        hint: "reject non-finite updates before aggregation (the codec does)",
      });
    }
    norms[i] = Math.sqrt(sq);
  });
  return { ids: ordered.map((u) => u.id), numSamples: ordered.map((u) => u.numSamples), rows, norms, n: rows.length, d };
}

function checkUpdate(u: Update, previousId: string | undefined, d: number): void {
  if (typeof u.id !== "string" || u.id.length === 0 || u.id !== u.id.toLowerCase()) {
    throw new AggregationInputError(`expected a non-empty lowercase participant id, found ${JSON.stringify(u.id)}`, {
      details: { id: u.id },
      hint: "pass addresses in lowercase so every aggregator sorts them the same way",
    });
  }
  if (u.id === previousId) {
    throw new AggregationInputError(`expected one update per participant, found two for ${u.id}`, { details: { id: u.id } });
  }
  if (!(u.vector instanceof Float32Array)) {
    throw new AggregationInputError(`update ${u.id}: expected a Float32Array vector, found ${describeType(u.vector)}`, { details: { id: u.id } });
  }
  if (u.vector.length !== d) {
    throw new AggregationInputError(`update ${u.id}: expected ${d} values (like the first update), found ${u.vector.length}`, {
      details: { id: u.id, expected: d, found: u.vector.length },
    });
  }
  if (!Number.isSafeInteger(u.numSamples) || u.numSamples < 1) {
    throw new AggregationInputError(`update ${u.id}: expected numSamples to be a positive integer, found ${u.numSamples}`, {
      details: { id: u.id, numSamples: u.numSamples },
    });
  }
}

function describeNonFinite(row: Float32Array): string {
  const k = row.findIndex((x) => !Number.isFinite(x));
  return `${row[k]} at index ${k}`;
}

function describeType(value: unknown): string {
  return value === null ? "null" : typeof value === "object" ? (value.constructor?.name ?? "object") : typeof value;
}
