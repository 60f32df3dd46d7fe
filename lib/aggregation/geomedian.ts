// Geometric median by the smoothed Weiszfeld iteration, as in RFA (Pillutla, Kakade and
// Harchaoui, "Robust aggregation for federated learning", 2022): z <- sum(b_i x_i) / sum(b_i)
// with b_i = 1 / max(nu, |z - x_i|), started from the mean, stopped after maxIterations or
// when the objective sum |z - x_i| improves by less than tolerance (relative). Every update
// counts equally (a Byzantine participant picks its own numSamples). The iterate stays in
// float64 and is rounded to float32 once; the number of iterations depends only on the data.
//
// Score: L2 distance from the update to the geometric median. Higher = more suspicious.
// Breakdown: tolerates f < n/2 arbitrary updates (checked when f is given).
import { withClip } from "./clipping.js";
import { buildResult } from "./evidence.js";
import { prepare } from "./input.js";
import { squaredDistanceTo, toFloat32, weightedMean } from "./kernels.js";
import { integerAtLeast, numberInRange, requireBreakdown } from "./params.js";
import type { AggregationResult, ClipOption, Update } from "./types.js";

export interface GeometricMedianOptions {
  /** Upper bound on Weiszfeld steps (default 100). */
  readonly maxIterations?: number;
  /** Stop when the objective improves by less than this fraction (default 1e-6). */
  readonly tolerance?: number;
  /** Smoothing: distances below nu count as nu, so no weight is infinite (default 1e-6). */
  readonly nu?: number;
  /** Number of Byzantine updates to tolerate; when given, the rule checks f < n/2. */
  readonly f?: number;
  readonly clip?: ClipOption;
}

export interface WeiszfeldResult {
  readonly point: Float64Array;
  /** Final Weiszfeld weights, normalised to sum to 1. */
  readonly weights: Float64Array;
  readonly distances: Float64Array;
  readonly objective: number;
  readonly iterations: number;
}

/** The smoothed Weiszfeld iteration over the rows (uniform weights). */
export function weiszfeld(rows: readonly Float32Array[], d: number, maxIterations: number, tolerance: number, nu: number): WeiszfeldResult {
  const n = rows.length;
  const weights = new Float64Array(n).fill(1 / n);
  let point = weightedMean(rows, new Float64Array(n).fill(1), n, d);
  let distances = distancesTo(point, rows);
  let objective = sum(distances);
  let iterations = 0;
  while (iterations < maxIterations) {
    const beta = Float64Array.from(distances, (dist) => 1 / Math.max(nu, dist));
    const next = weightedMean(rows, beta, sum(beta), d);
    const nextDistances = distancesTo(next, rows);
    const nextObjective = sum(nextDistances);
    iterations++;
    const total = sum(beta);
    beta.forEach((b, i) => (weights[i] = b / total));
    point = next;
    distances = nextDistances;
    const improvement = objective - nextObjective;
    objective = nextObjective;
    if (improvement <= tolerance * nextObjective) break;
  }
  return { point, weights, distances, objective, iterations };
}

export function geometricMedian(updates: readonly Update[], options: GeometricMedianOptions = {}): AggregationResult {
  const input = prepare(updates);
  const maxIterations = integerAtLeast("geometric-median", "maxIterations", options.maxIterations ?? 100, 0);
  const tolerance = numberInRange("geometric-median", "tolerance", options.tolerance ?? 1e-6, 0, 1);
  const nu = numberInRange("geometric-median", "nu", options.nu ?? 1e-6, 0, Number.MAX_VALUE, true);
  const params: Record<string, number | string> = { maxIterations, tolerance, nu };
  if (options.f !== undefined) {
    const f = integerAtLeast("geometric-median", "f", options.f, 0);
    requireBreakdown(2 * f < input.n, "geometric-median", "f < n/2", { n: input.n, f });
    params.f = f;
  }
  if (options.clip !== undefined) params.clip = options.clip;
  const { rows, clipFactors, details } = withClip(input, options.clip);
  const result = weiszfeld(rows, input.d, maxIterations, tolerance, nu);
  return buildResult("geometric-median", params, input, {
    aggregate: toFloat32(result.point),
    weights: result.weights,
    clipFactors,
    details: { iterations: result.iterations, objective: result.objective, ...details },
  });
}

function distancesTo(point: Float64Array, rows: readonly Float32Array[]): Float64Array {
  return Float64Array.from(rows, (row) => Math.sqrt(squaredDistanceTo(point, row)));
}

function sum(values: Float64Array): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}
