// Coordinate-wise rules (Yin et al., "Byzantine-robust distributed learning", 2018): for each
// coordinate, the median of the n values, or their mean after dropping the `trim` smallest and
// `trim` largest. Every update counts equally (a Byzantine participant picks its own
// numSamples). Up to SIMD_MAX updates the WebAssembly SIMD kernels of simd.ts compute four
// coordinates at a time with sorting networks; beyond (or on an engine without wasm SIMD),
// blocks of 256 coordinates are transposed into one small reusable buffer so each coordinate's
// n values sit together, then reduced by branch-free selection (select.ts): the reference
// computation, which the kernels match to the bit. Either way no copy of the matrix is made and
// nothing is allocated per coordinate.
//
// Score: L2 distance from the update to the aggregate. Higher = more suspicious.
// Breakdown: median tolerates f < n/2 arbitrary updates; trimmed mean needs 2 * trim < n
// (and tolerates f <= trim).
import { withClip } from "./clipping.js";
import { RuleParameterError } from "./errors.js";
import { buildResult } from "./evidence.js";
import { prepare } from "./input.js";
import { integerAtLeast, numberInRange, requireBreakdown } from "./params.js";
import { insertionSort, medianOfThree, partitionInto, selectInRange } from "./select.js";
import { SIMD_MAX, simdAvailable, simdMedianKernel, simdTrimmedMeanKernel, SORTED_SUM_MAX, type SimdKernel } from "./simd.js";
import type { AggregationResult, ClipOption, Update } from "./types.js";

/** Coordinates per block: the block of every row is transposed into one small column-major buffer. */
const BLOCK = 256;

/**
 * Copies coordinates [start, start + width) of every row into `block`, column-major
 * (block[k * n + i] = rows[i][start + k]), so each coordinate's n values sit together.
 */
export function transposeBlock(rows: readonly Float32Array[], start: number, width: number, block: Float64Array): void {
  const n = rows.length;
  for (let i = 0; i < n; i++) {
    const row = rows[i];
    for (let k = 0; k < width; k++) block[k * n + i] = row[start + k];
  }
}

// The reference computation of one coordinate from its column (in row order at `base`). Columns
// of up to SORTED_SUM_MAX values are sorted outright by insertion (cheaper than selection), and
// the trimmed mean adds their kept values in sorted order. The SIMD kernels compute the same
// order statistics and sums by other means, which agree with these to the bit except in the sign
// of a zero chosen among tied zeros; the kernels hand such coordinates back to these functions,
// so every path returns exactly these bits.

/** The median of block[base, base + n) (reorders it; uses the same range of `scratch`). */
function columnMedian(block: Float64Array, scratch: Float64Array, base: number, n: number, below: Float64Array): number {
  const mid = n >> 1;
  if (n <= SORTED_SUM_MAX) {
    insertionSort(block, base, base + n);
    return n % 2 === 1 ? block[base + mid] : (block[base + mid - 1] + block[base + mid]) / 2;
  }
  // Selection in place: the column's own slots in the block and in the scratch block are the two buffers.
  const upper = selectInRange(block, scratch, base, n, base + mid, below);
  return n % 2 === 1 ? upper : (below[0] + upper) / 2;
}

/** The trimmed mean of block[base, base + n) (uses the same ranges of `scratch` and `spare`). */
function columnTrimmedMean(block: Float64Array, scratch: Float64Array, spare: Float64Array, base: number, n: number, trim: number, cuts: Float64Array): number {
  if (n <= SORTED_SUM_MAX) return sortedMiddleSum(block, base, n, trim) / (n - 2 * trim);
  trimCuts(block, scratch, spare, base, n, trim, cuts);
  return keptSum(block, base, n, trim, cuts[0], cuts[1]) / (n - 2 * trim);
}

/** Buffers for one column, to recompute the coordinates a SIMD kernel hands back. */
class Reference {
  private readonly column: Float64Array;
  private readonly scratch: Float64Array;
  private readonly spare: Float64Array;
  private readonly pair = new Float64Array(2);
  constructor(private readonly rows: readonly Float32Array[]) {
    const n = rows.length;
    this.column = new Float64Array(n);
    this.scratch = new Float64Array(n);
    this.spare = new Float64Array(n);
  }
  private gather(k: number): void {
    for (let i = 0; i < this.rows.length; i++) this.column[i] = this.rows[i][k];
  }
  median(k: number): number {
    this.gather(k);
    return columnMedian(this.column, this.scratch, 0, this.rows.length, this.pair);
  }
  trimmedMean(k: number, trim: number): number {
    this.gather(k);
    return columnTrimmedMean(this.column, this.scratch, this.spare, 0, this.rows.length, trim, this.pair);
  }
}

/** Runs a SIMD kernel over every coordinate, then recomputes the coordinates it handed back (NaN) the reference way. */
function settled(kernel: SimdKernel, rows: readonly Float32Array[], d: number, recompute: (reference: Reference, k: number) => number): Float32Array {
  const out = new Float32Array(d);
  kernel(rows, d, out);
  let reference: Reference | undefined;
  for (let k = 0; k < d; k++) {
    if (out[k] !== out[k]) {
      reference ??= new Reference(rows);
      out[k] = recompute(reference, k);
    }
  }
  return out;
}

/**
 * Median of every coordinate (mean of the two middle values when n is even, in float64),
 * rounded to float32.
 */
export function coordinateMedian(rows: readonly Float32Array[], d: number): Float32Array {
  const n = rows.length;
  if (simdAvailable && n <= SIMD_MAX) return settled(simdMedianKernel(n), rows, d, (reference, k) => reference.median(k));
  return selectionMedian(rows, d);
}

/** coordinateMedian by the reference computation alone (blocks and selection), whatever n is. */
export function selectionMedian(rows: readonly Float32Array[], d: number): Float32Array {
  const n = rows.length;
  const out = new Float32Array(d);
  const block = new Float64Array(BLOCK * n);
  const scratch = new Float64Array(BLOCK * n);
  const below = new Float64Array(1);
  for (let start = 0; start < d; start += BLOCK) {
    const width = Math.min(BLOCK, d - start);
    transposeBlock(rows, start, width, block);
    for (let k = 0; k < width; k++) out[start + k] = columnMedian(block, scratch, k * n, n, below);
  }
  return out;
}

/**
 * Mean of every coordinate after dropping its `trim` smallest and `trim` largest values
 * (2 * trim < n). The kept values are summed in an order that depends only on the values:
 * sorted order for short columns (n <= SORTED_SUM_MAX); otherwise the two cut values are found
 * and the values between them summed in canonical row order (values equal to a cut counted as
 * often as they fall inside the kept ranks), so the sum never depends on how a buffer was
 * arranged.
 */
export function coordinateTrimmedMean(rows: readonly Float32Array[], d: number, trim: number): Float32Array {
  const n = rows.length;
  if (simdAvailable && n <= SIMD_MAX) return settled(simdTrimmedMeanKernel(n, trim), rows, d, (reference, k) => reference.trimmedMean(k, trim));
  return selectionTrimmedMean(rows, d, trim);
}

/** coordinateTrimmedMean by the reference computation alone (blocks and selection), whatever n is. */
export function selectionTrimmedMean(rows: readonly Float32Array[], d: number, trim: number): Float32Array {
  const n = rows.length;
  const out = new Float32Array(d);
  const block = new Float64Array(BLOCK * n);
  const scratch = new Float64Array(BLOCK * n);
  const spare = new Float64Array(BLOCK * n);
  const cuts = new Float64Array(2);
  for (let start = 0; start < d; start += BLOCK) {
    const width = Math.min(BLOCK, d - start);
    transposeBlock(rows, start, width, block);
    for (let k = 0; k < width; k++) out[start + k] = columnTrimmedMean(block, scratch, spare, k * n, n, trim, cuts);
  }
  return out;
}

/** Sum of the kept values of a short column, sorted in place and added in sorted order (which depends only on the values). */
function sortedMiddleSum(block: Float64Array, base: number, n: number, trim: number): number {
  insertionSort(block, base, base + n);
  let sum = 0;
  for (let i = base + trim; i < base + n - trim; i++) sum += block[i];
  return sum;
}

/**
 * Puts the trim-th and (n - trim - 1)-th smallest of the column at `base` into cuts[0] and
 * cuts[1], leaving the column in `block` untouched (keptSum reads it next). The first partition
 * goes from the block into `scratch` and usually splits the two ranks apart; each side is then
 * searched on its own with `spare` as the second buffer (disjoint ranges of the same buffers),
 * which visits far fewer values than two full selections.
 */
function trimCuts(block: Float64Array, scratch: Float64Array, spare: Float64Array, base: number, n: number, trim: number, cuts: Float64Array): void {
  const low = base + trim;
  const high = base + n - trim - 1;
  const split = partitionInto(block, scratch, base, n, medianOfThree(block[base], block[base + (n >> 1)], block[base + n - 1]));
  if (split > low && split <= high) {
    cuts[0] = selectInRange(scratch, spare, base, split - base, low);
    cuts[1] = selectInRange(scratch, spare, split, base + n - split, high);
    return;
  }
  // Rare (or trim = 0): both ranks on one side. Select each from a fresh copy of the column.
  for (let i = base; i < base + n; i++) scratch[i] = block[i];
  cuts[0] = selectInRange(scratch, spare, base, n, low);
  for (let i = base; i < base + n; i++) scratch[i] = block[i];
  cuts[1] = selectInRange(scratch, spare, base, n, high);
}

function keptSum(block: Float64Array, base: number, n: number, trim: number, low: number, high: number): number {
  if (low === high) return (n - 2 * trim) * low;
  let inside = 0;
  let strictlyInside = 0;
  let atOrBelowLow = 0;
  for (let i = base; i < base + n; i++) {
    const x = block[i];
    const isInside = +(x > low) * +(x < high);
    inside += isInside * x;
    strictlyInside += isInside;
    atOrBelowLow += +(x <= low);
  }
  // Copies of `low` fill the kept ranks from `trim` up to atOrBelowLow - 1; copies of `high` fill what is left.
  const lowCopies = atOrBelowLow - trim;
  return inside + lowCopies * low + (n - 2 * trim - strictlyInside - lowCopies) * high;
}

export interface MedianOptions {
  /** Number of Byzantine updates to tolerate; when given, the rule checks f < n/2. */
  readonly f?: number;
  readonly clip?: ClipOption;
}

export function median(updates: readonly Update[], options: MedianOptions = {}): AggregationResult {
  const input = prepare(updates);
  const params: Record<string, number | string> = {};
  if (options.f !== undefined) {
    const f = integerAtLeast("median", "f", options.f, 0);
    requireBreakdown(2 * f < input.n, "median", "f < n/2", { n: input.n, f });
    params.f = f;
  }
  if (options.clip !== undefined) params.clip = options.clip;
  const { rows, clipFactors, details } = withClip(input, options.clip);
  return buildResult("median", params, input, { aggregate: coordinateMedian(rows, input.d), clipFactors, details });
}

export interface TrimmedMeanOptions {
  /** Values dropped at each end of every coordinate (give this or beta). */
  readonly trim?: number;
  /** Fraction dropped at each end, in [0, 0.5): trim = floor(beta * n). Default 0.2 when trim is not given. */
  readonly beta?: number;
  readonly clip?: ClipOption;
}

export function trimmedMean(updates: readonly Update[], options: TrimmedMeanOptions = {}): AggregationResult {
  const input = prepare(updates);
  const trim = resolveTrim(input.n, options);
  requireBreakdown(2 * trim < input.n, "trimmed-mean", "2 * trim < n", { n: input.n, trim });
  const params: Record<string, number | string> = { trim, ...(options.beta !== undefined ? { beta: options.beta } : {}) };
  if (options.clip !== undefined) params.clip = options.clip;
  const { rows, clipFactors, details } = withClip(input, options.clip);
  return buildResult("trimmed-mean", params, input, {
    aggregate: coordinateTrimmedMean(rows, input.d, trim),
    clipFactors,
    details: { trim, kept: input.n - 2 * trim, ...details },
  });
}

function resolveTrim(n: number, options: TrimmedMeanOptions): number {
  if (options.trim !== undefined && options.beta !== undefined) {
    throw new RuleParameterError(`trimmed-mean: expected either trim or beta, found both (trim = ${options.trim}, beta = ${options.beta})`, {
      details: { trim: options.trim, beta: options.beta },
    });
  }
  if (options.trim !== undefined) return integerAtLeast("trimmed-mean", "trim", options.trim, 0);
  const beta = numberInRange("trimmed-mean", "beta", options.beta ?? 0.2, 0, 0.5, false, true);
  return Math.floor(beta * n);
}
