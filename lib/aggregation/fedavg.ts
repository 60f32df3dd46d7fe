// FedAvg (McMahan et al., 2017): the sample-weighted mean of the updates; and norm clipping
// as a rule of its own: FedAvg over the updates clipped to a bound. These are the only rules
// that weight by the claimed sample count; the robust rules weigh every update equally, since
// a Byzantine participant chooses its own numSamples.
//
// Score: L2 distance from the update to the aggregate (for norm clipping: norm / bound, so
// anything above 1 was clipped). Higher = more suspicious.
import { clipRows, withClip } from "./clipping.js";
import { buildResult } from "./evidence.js";
import { prepare, type Prepared } from "./input.js";
import { weightedMeanFloat32 } from "./kernels.js";
import type { AggregationResult, ClipOption, Update } from "./types.js";

export interface FedAvgOptions {
  /** Clip every update first (to this L2 bound, or to the median norm). */
  readonly clip?: ClipOption;
}

export function fedAvg(updates: readonly Update[], options: FedAvgOptions = {}): AggregationResult {
  const input = prepare(updates);
  const { rows, clipFactors, details } = withClip(input, options.clip);
  const { aggregate, weights } = sampleWeightedMean(input, rows);
  return buildResult("fedavg", { ...(options.clip !== undefined ? { clip: options.clip } : {}) }, input, {
    aggregate,
    weights,
    clipFactors,
    details: { totalSamples: sumSamples(input), ...details },
  });
}

export interface NormClippingOptions {
  /** L2 bound for every update, or "median" for the median update norm (the default). */
  readonly bound?: ClipOption;
}

export function normClipping(updates: readonly Update[], options: NormClippingOptions = {}): AggregationResult {
  const input = prepare(updates);
  const bound = options.bound ?? "median";
  const clipped = clipRows(input, bound);
  const { aggregate, weights } = sampleWeightedMean(input, clipped.rows);
  const scores = Array.from(input.norms, (norm) => (clipped.bound === 0 ? (norm === 0 ? 0 : Infinity) : norm / clipped.bound));
  return buildResult("norm-clipping", { bound }, input, {
    aggregate,
    scores,
    weights,
    clipFactors: clipped.factors,
    details: { clipBound: clipped.bound, clipped: clipped.factors.filter((x) => x < 1).length, totalSamples: sumSamples(input) },
  });
}

function sampleWeightedMean(input: Prepared, rows: readonly Float32Array[]): { aggregate: Float32Array; weights: number[] } {
  const total = sumSamples(input);
  return {
    aggregate: weightedMeanFloat32(rows, input.numSamples, total, input.d),
    weights: input.numSamples.map((s) => s / total),
  };
}

function sumSamples(input: Prepared): number {
  return input.numSamples.reduce((a, b) => a + b, 0);
}
