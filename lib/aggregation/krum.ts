// Krum and Multi-Krum (Blanchard et al., NeurIPS 2017) and Bulyan (El Mhamdi et al., ICML
// 2018). All three start from one matrix of pairwise squared distances, each unordered pair
// computed once. Every update counts equally (a Byzantine participant picks its own
// numSamples); ties in selection go to the smaller id.
//
// Score: the Krum score, the sum of squared distances to the update's n - f - 2 nearest
// neighbours (for Bulyan: in the full set, before any update is removed). Higher = more suspicious.
// Breakdown: Krum and Multi-Krum need n >= 2f + 3; Bulyan needs n >= 4f + 3.
import { withClip } from "./clipping.js";
import { transposeBlock } from "./coordinatewise.js";
import { buildResult } from "./evidence.js";
import { prepare } from "./input.js";
import { pairwiseSquaredDistances, weightedMeanFloat32 } from "./kernels.js";
import { integerAtLeast, requireBreakdown } from "./params.js";
import { sortRange } from "./select.js";
import type { AggregationResult, ClipOption, Update } from "./types.js";

/**
 * Krum score of each member (indices into the n x n distance matrix): the sum of its
 * max(1, members - f - 2) smallest squared distances to the other members, added in
 * ascending order. The max(1, ...) only matters in Bulyan's last rounds, where few remain.
 */
export function krumScores(dist: Float64Array, n: number, members: readonly number[], f: number): Float64Array {
  const count = members.length;
  const nearest = Math.max(1, count - f - 2);
  const buf = new Float64Array(Math.max(0, count - 1));
  return Float64Array.from(members, (i) => {
    let m = 0;
    for (const j of members) if (j !== i) buf[m++] = dist[i * n + j];
    sortRange(buf, 0, m);
    let score = 0;
    for (let q = 0; q < Math.min(nearest, m); q++) score += buf[q];
    return score;
  });
}

/** The `m` members with the lowest scores, ties to the lower index (= the smaller id), in ascending index order. */
function lowest(scores: ArrayLike<number>, members: readonly number[], m: number): number[] {
  const order = members.map((_, q) => q).sort((p, q) => scores[p] - scores[q] || members[p] - members[q]);
  return order
    .slice(0, m)
    .map((q) => members[q])
    .sort((x, y) => x - y);
}

export interface KrumOptions {
  /** Number of Byzantine updates to tolerate. */
  readonly f: number;
  readonly clip?: ClipOption;
}

export interface MultiKrumOptions extends KrumOptions {
  /** Number of updates to average, 1 <= m <= n - f (default n - f). */
  readonly m?: number;
}

/** Krum: the single update with the lowest Krum score. */
export function krum(updates: readonly Update[], options: KrumOptions): AggregationResult {
  return runKrum("krum", updates, { ...options, m: 1 });
}

/** Multi-Krum: the plain mean of the m updates with the lowest Krum scores. */
export function multiKrum(updates: readonly Update[], options: MultiKrumOptions): AggregationResult {
  return runKrum("multi-krum", updates, options);
}

function runKrum(rule: string, updates: readonly Update[], options: MultiKrumOptions): AggregationResult {
  const input = prepare(updates);
  const n = input.n;
  const f = integerAtLeast(rule, "f", options.f, 0);
  requireBreakdown(n >= 2 * f + 3, rule, "n >= 2f + 3", { n, f });
  const m = options.m === undefined ? n - f : integerAtLeast(rule, "m", options.m, 1);
  requireBreakdown(m <= n - f, rule, "m <= n - f", { n, f, m });
  const { rows, clipFactors, details } = withClip(input, options.clip);
  const all = rows.map((_, i) => i);
  const scores = krumScores(pairwiseSquaredDistances(rows, input.d), n, all, f);
  const chosen = lowest(scores, all, m);
  const selected = all.map((i) => chosen.includes(i));
  const weights = selected.map((s) => (s ? 1 : 0));
  const params = { f, ...(rule === "multi-krum" ? { m } : {}), ...(options.clip !== undefined ? { clip: options.clip } : {}) };
  return buildResult(rule, params, input, {
    aggregate: weightedMeanFloat32(rows, weights, m, input.d),
    scores,
    selected,
    weights: weights.map((w) => w / m),
    clipFactors,
    details: { nearest: n - f - 2, ...details },
  });
}

export interface BulyanOptions {
  readonly f: number;
  readonly clip?: ClipOption;
}

/**
 * Bulyan: pick theta = n - 2f updates by Krum one at a time (each round re-scores the remaining
 * ones on the same distances), then for every coordinate average the beta = theta - 2f values
 * of the picked updates closest to their median.
 */
export function bulyan(updates: readonly Update[], options: BulyanOptions): AggregationResult {
  const input = prepare(updates);
  const n = input.n;
  const f = integerAtLeast("bulyan", "f", options.f, 0);
  requireBreakdown(n >= 4 * f + 3, "bulyan", "n >= 4f + 3", { n, f });
  const { rows, clipFactors, details } = withClip(input, options.clip);
  const dist = pairwiseSquaredDistances(rows, input.d);
  const all = rows.map((_, i) => i);
  const theta = n - 2 * f;
  const beta = theta - 2 * f;
  let remaining = all;
  const picked: number[] = [];
  while (picked.length < theta) {
    const [best] = lowest(krumScores(dist, n, remaining, f), remaining, 1);
    picked.push(best);
    remaining = remaining.filter((i) => i !== best);
  }
  picked.sort((x, y) => x - y);
  return buildResult("bulyan", { f, ...(options.clip !== undefined ? { clip: options.clip } : {}) }, input, {
    aggregate: closestToMedianMean(
      picked.map((i) => rows[i]),
      input.d,
      beta,
    ),
    scores: krumScores(dist, n, all, f),
    selected: all.map((i) => picked.includes(i)),
    clipFactors,
    details: { theta, beta, ...details },
  });
}

/**
 * For every coordinate: sort the values, then average the `beta` values closest to their
 * median, growing a window outwards from the middle (on a tie, the lower value first). Works
 * on sorted values only, so the result does not depend on row order.
 */
export function closestToMedianMean(rows: readonly Float32Array[], d: number, beta: number): Float32Array {
  const n = rows.length;
  const BLOCK = 256;
  const block = new Float64Array(BLOCK * n);
  const out = new Float32Array(d);
  const mid = n >> 1;
  for (let start = 0; start < d; start += BLOCK) {
    const width = Math.min(BLOCK, d - start);
    transposeBlock(rows, start, width, block);
    for (let k = 0; k < width; k++) {
      const base = k * n;
      sortRange(block, base, base + n);
      const med = n % 2 === 1 ? block[base + mid] : (block[base + mid - 1] + block[base + mid]) / 2;
      let lo = mid - 1;
      let hi = n % 2 === 1 ? mid + 1 : mid;
      let taken = n % 2 === 1 ? 1 : 0;
      while (taken < beta) {
        if (hi >= n || (lo >= 0 && med - block[base + lo] <= block[base + hi] - med)) lo--;
        else hi++;
        taken++;
      }
      let sum = 0;
      for (let i = lo + 1; i < hi; i++) sum += block[base + i];
      out[start + k] = sum / beta;
    }
  }
  return out;
}
