// The tight loops every rule is built from. Each works on the rows as given (no copies of the
// n x d matrix), accumulates in float64, and visits values in a fixed order, so results are
// bit-identical on any machine that runs the same code.

/** Coordinates per block of the weighted mean: the block's float64 accumulator (32 KiB) stays in L1. */
const MEAN_BLOCK = 4096;

/**
 * Sum of weights[i] * rows[i] over the rows, divided by `divisor`, in float64 (the caller
 * rounds to float32 once). Rows with weight 0 are skipped; the others are taken four at a
 * time in the order given (acc += (w0 x0 + w1 x1) + (w2 x2 + w3 x3)), so the accumulator is
 * loaded and stored once per four rows, and coordinates go in blocks that keep it in L1.
 * The grouping depends only on the weights, so the sums are reproducible.
 */
export function weightedMean(rows: readonly Float32Array[], weights: ArrayLike<number>, divisor: number, d: number): Float64Array {
  const used = usedRows(rows, weights);
  const acc = new Float64Array(d);
  for (let start = 0; start < d; start += MEAN_BLOCK) {
    const end = Math.min(d, start + MEAN_BLOCK);
    accumulateBlock(rows, weights, used, start, end, acc, 0);
    for (let k = start; k < end; k++) acc[k] /= divisor;
  }
  return acc;
}

/**
 * toFloat32(weightedMean(...)) to the bit, without the d-long float64 vector: up to FUSED_MAX
 * rows, a compiled loop forms each coordinate's whole sum in a register (the same additions in
 * the same order) and stores it once, divided and rounded; beyond, each block is summed in one
 * reused L1-sized accumulator and rounded while it is hot. Either way the only allocation the
 * size of the model is the float32 result.
 */
export function weightedMeanFloat32(rows: readonly Float32Array[], weights: ArrayLike<number>, divisor: number, d: number): Float32Array {
  const used = usedRows(rows, weights);
  const out = new Float32Array(d);
  if (used.length <= FUSED_MAX) {
    fusedMean(used.length)(used.map((i) => rows[i]), used.map((i) => weights[i]), divisor, d, out);
    return out;
  }
  const acc = new Float64Array(Math.min(d, MEAN_BLOCK));
  for (let start = 0; start < d; start += MEAN_BLOCK) {
    const end = Math.min(d, start + MEAN_BLOCK);
    acc.fill(0);
    accumulateBlock(rows, weights, used, start, end, acc, start);
    for (let k = start; k < end; k++) out[k] = acc[k - start] / divisor;
  }
  return out;
}

/** Most rows whose weighted mean is one compiled loop (the rows and weights stay in registers). */
const FUSED_MAX = 16;

type FusedMean = (rows: readonly Float32Array[], weights: readonly number[], divisor: number, d: number, out: Float32Array) => void;

const fusedMeans: FusedMean[] = [];

/**
 * out[k] = sum / divisor for m rows, with the sum formed exactly as accumulateBlock forms it:
 * from 0, each group of four rows added as (w0 x0 + w1 x1) + (w2 x2 + w3 x3), then the rest
 * one by one. The source is built from m alone, never from data.
 */
function fusedMean(m: number): FusedMean {
  let kernel = fusedMeans[m];
  if (!kernel) {
    const rowsIn = Array.from({ length: m }, (_, i) => `const r${i} = rows[${i}]; const w${i} = weights[${i}];`);
    const terms: string[] = [];
    let q = 0;
    for (; q + 3 < m; q += 4) terms.push(`a += w${q} * r${q}[k] + w${q + 1} * r${q + 1}[k] + (w${q + 2} * r${q + 2}[k] + w${q + 3} * r${q + 3}[k]);`);
    for (; q < m; q++) terms.push(`a += w${q} * r${q}[k];`);
    const body = [...rowsIn, "for (let k = 0; k < d; k++) {", "let a = 0;", ...terms, "out[k] = a / divisor;", "}"].join("\n");
    kernel = new Function("rows", "weights", "divisor", "d", "out", body) as FusedMean;
    fusedMeans[m] = kernel;
  }
  return kernel;
}

/** Indices of the rows with a non-zero weight, in the order given. */
function usedRows(rows: readonly Float32Array[], weights: ArrayLike<number>): number[] {
  const used: number[] = [];
  for (let i = 0; i < rows.length; i++) if (weights[i] !== 0) used.push(i);
  return used;
}

/** Adds the used rows' coordinates [start, end) into acc[start - shift, end - shift), four rows per pass, then one at a time. */
function accumulateBlock(
  rows: readonly Float32Array[],
  weights: ArrayLike<number>,
  used: readonly number[],
  start: number,
  end: number,
  acc: Float64Array,
  shift: number,
): void {
  let q = 0;
  for (; q + 3 < used.length; q += 4) {
    accumulate4(acc, rows[used[q]], rows[used[q + 1]], rows[used[q + 2]], rows[used[q + 3]], weights[used[q]], weights[used[q + 1]], weights[used[q + 2]], weights[used[q + 3]], start, end, shift);
  }
  for (; q < used.length; q++) {
    const row = rows[used[q]];
    const w = weights[used[q]];
    for (let k = start; k < end; k++) acc[k - shift] += w * row[k];
  }
}

function accumulate4(
  acc: Float64Array,
  r0: Float32Array,
  r1: Float32Array,
  r2: Float32Array,
  r3: Float32Array,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
  start: number,
  end: number,
  shift: number,
): void {
  for (let k = start; k < end; k++) acc[k - shift] += w0 * r0[k] + w1 * r1[k] + (w2 * r2[k] + w3 * r3[k]);
}

/** Rounds a float64 vector to float32, once, at the end of a rule. */
export function toFloat32(values: Float64Array): Float32Array {
  return new Float32Array(values);
}

/** Coordinates per block in the pairwise loop: a pure function of n (never of the machine), sized so n blocks fit in L2. */
function pairwiseBlock(n: number): number {
  const fit = Math.floor(262144 / Math.max(1, n)); // 1 MiB of float32 values across the n rows
  return Math.max(256, Math.min(16384, fit - (fit % 16)));
}

/**
 * Squared L2 distances between every pair of rows, as a symmetric n x n matrix (row-major,
 * zero diagonal). Each unordered pair is computed once. Coordinates go in blocks so a block
 * of every row stays in cache while all pairs use it, and each row is compared with four
 * others at a time, so every value loaded from it serves four pairs. Block size, grouping
 * and accumulator order depend only on n and d, so the sums are reproducible.
 */
export function pairwiseSquaredDistances(rows: readonly Float32Array[], d: number): Float64Array {
  const n = rows.length;
  const dist = new Float64Array(n * n);
  const quad = new Float64Array(4);
  const block = pairwiseBlock(n);
  for (let start = 0; start < d; start += block) {
    const end = Math.min(d, start + block);
    for (let i = 0; i < n; i++) {
      const a = rows[i];
      let j = i + 1;
      for (; j + 3 < n; j += 4) {
        blockSquaredDistances4(a, rows[j], rows[j + 1], rows[j + 2], rows[j + 3], start, end, quad);
        dist[i * n + j] += quad[0];
        dist[i * n + j + 1] += quad[1];
        dist[i * n + j + 2] += quad[2];
        dist[i * n + j + 3] += quad[3];
      }
      for (; j < n; j++) dist[i * n + j] += blockSquaredDistance(a, rows[j], start, end);
    }
  }
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) dist[j * n + i] = dist[i * n + j];
  }
  return dist;
}

/** Squared distances from `a` to b0..b3 over [start, end), two accumulators per pair (even and odd coordinates). */
function blockSquaredDistances4(
  a: Float32Array,
  b0: Float32Array,
  b1: Float32Array,
  b2: Float32Array,
  b3: Float32Array,
  start: number,
  end: number,
  out: Float64Array,
): void {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let t0 = 0;
  let t1 = 0;
  let t2 = 0;
  let t3 = 0;
  let k = start;
  for (; k + 1 < end; k += 2) {
    const x = a[k];
    const y = a[k + 1];
    const d0 = x - b0[k];
    const d1 = x - b1[k];
    const d2 = x - b2[k];
    const d3 = x - b3[k];
    const e0 = y - b0[k + 1];
    const e1 = y - b1[k + 1];
    const e2 = y - b2[k + 1];
    const e3 = y - b3[k + 1];
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
    t0 += e0 * e0;
    t1 += e1 * e1;
    t2 += e2 * e2;
    t3 += e3 * e3;
  }
  if (k < end) {
    const x = a[k];
    const d0 = x - b0[k];
    const d1 = x - b1[k];
    const d2 = x - b2[k];
    const d3 = x - b3[k];
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  out[0] = s0 + t0;
  out[1] = s1 + t1;
  out[2] = s2 + t2;
  out[3] = s3 + t3;
}

/** Squared distance between two rows over [start, end), with the same accumulator order as blockSquaredDistances4. */
function blockSquaredDistance(a: Float32Array, b: Float32Array, start: number, end: number): number {
  let s0 = 0;
  let t0 = 0;
  let k = start;
  for (; k + 1 < end; k += 2) {
    const d0 = a[k] - b[k];
    const e0 = a[k + 1] - b[k + 1];
    s0 += d0 * d0;
    t0 += e0 * e0;
  }
  if (k < end) {
    const d0 = a[k] - b[k];
    s0 += d0 * d0;
  }
  return s0 + t0;
}

/** Squared L2 distance between a float64 point and a row (float64 accumulation). */
export function squaredDistanceTo(point: Float64Array, row: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let k = 0;
  for (; k + 1 < row.length; k += 2) {
    const d0 = point[k] - row[k];
    const d1 = point[k + 1] - row[k + 1];
    s0 += d0 * d0;
    s1 += d1 * d1;
  }
  if (k < row.length) {
    const d0 = point[k] - row[k];
    s0 += d0 * d0;
  }
  return s0 + s1;
}

/** Dot product and squared distance of a row against the aggregate, in one pass. */
export function dotAndSquaredDistance(row: Float32Array, aggregate: Float32Array): { dot: number; squaredDistance: number } {
  let dot = 0;
  let sq = 0;
  for (let k = 0; k < row.length; k++) {
    const x = row[k];
    const a = aggregate[k];
    dot += x * a;
    const diff = x - a;
    sq += diff * diff;
  }
  return { dot, squaredDistance: sq };
}

/** Sum of squares of a float32 vector, float64 accumulation. */
export function sumOfSquares(row: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let k = 0;
  for (; k + 1 < row.length; k += 2) {
    s0 += row[k] * row[k];
    s1 += row[k + 1] * row[k + 1];
  }
  if (k < row.length) s0 += row[k] * row[k];
  return s0 + s1;
}

/** Dot product of two float32 vectors, float64 accumulation. */
export function dot(a: Float32Array, b: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let k = 0;
  for (; k + 1 < a.length; k += 2) {
    s0 += a[k] * b[k];
    s1 += a[k + 1] * b[k + 1];
  }
  if (k < a.length) s0 += a[k] * b[k];
  return s0 + s1;
}
