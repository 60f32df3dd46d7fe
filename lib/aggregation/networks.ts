// Sorting networks for short columns (n <= NETWORK_MAX updates), compiled once per shape into
// straight-line code: each coordinate's n values are read from the rows (as float32 bits) into
// locals, turned into integer keys that order exactly as the floats do, put in order by a fixed
// sequence of compare-exchanges (bit operations, no data-dependent branch, so random data costs
// no mispredictions; no transposed copy of the block), and reduced in float64. Only the
// comparators that lead to the wanted ranks are emitted. About 5x faster than insertion sort or
// selection at n = 10; past ~24 values the locals no longer fit in registers.
//
// Inputs are finite (prepare refuses others). Keys order -0 below +0 where the reference sees
// ties, which only matters for the sign of a zero median: a coordinate whose median is zero is
// handed to `exact`, which computes it the reference way, so the output is bit-identical to it.

/** Longest column handled by a compiled network; longer ones go through selection (select.ts). */
export const NETWORK_MAX = 24;

/** A compare-exchange: after it, wire `lo` holds the smaller of the two values and `hi` the larger. */
export interface Comparator {
  readonly lo: number;
  readonly hi: number;
}

/**
 * Batcher's odd-even merge sort for n wires: the network for the next power of two with every
 * comparator that touches a wire >= n dropped. Those wires stand for +Infinity, which a
 * comparator never moves below a real value, so the rest still sorts n values.
 */
export function sortingNetwork(n: number): Comparator[] {
  const size = 2 ** Math.ceil(Math.log2(Math.max(1, n)));
  const out: Comparator[] = [];
  for (let p = 1; p < size; p *= 2) {
    for (let k = p; k >= 1; k = Math.floor(k / 2)) {
      for (let j = k % p; j + k < size; j += 2 * k) {
        for (let i = 0; i < Math.min(k, size - j - k); i++) {
          const lo = i + j;
          const hi = i + j + k;
          if (Math.floor(lo / (2 * p)) === Math.floor(hi / (2 * p)) && hi < n) out.push({ lo, hi });
        }
      }
    }
  }
  return out;
}

/** A comparator that survives pruning, and which of its two outputs are read later. */
interface Step extends Comparator {
  readonly needLo: boolean;
  readonly needHi: boolean;
}

/** Keeps only the comparators whose outputs reach the `wanted` wires (walking back from the end). */
export function prune(network: readonly Comparator[], n: number, wanted: readonly number[]): Step[] {
  const needed = new Array<boolean>(n).fill(false);
  for (const w of wanted) needed[w] = true;
  const steps: Step[] = [];
  for (let c = network.length - 1; c >= 0; c--) {
    const { lo, hi } = network[c];
    if (!needed[lo] && !needed[hi]) continue;
    steps.push({ lo, hi, needLo: needed[lo], needHi: needed[hi] });
    needed[lo] = true;
    needed[hi] = true;
  }
  return steps.reverse();
}

/**
 * Straight-line body that orders locals x0..x{n-1} as far as the steps go. The locals hold
 * integer keys (see KEY), so a compare-exchange is a flag and a few bit operations with no
 * branch: m = 0 when a < b, else -1, and the xor picks the smaller value.
 */
function networkCode(steps: readonly Step[]): string {
  return steps
    .map(({ lo, hi, needLo, needHi }) => {
      const a = `x${lo}`;
      const b = `x${hi}`;
      const m = `m = +(${a} < ${b}) - 1; t = ${a} ^ ((${a} ^ ${b}) & m);`;
      if (needLo && needHi) return `${m} ${b} = ${a} ^ ${b} ^ t; ${a} = t;`;
      return needLo ? `${m} ${a} = t;` : `${m} ${b} = ${a} ^ ${b} ^ t;`;
    })
    .join("\n");
}

/**
 * The order-preserving integer key of a float32's bits (and, applied again, the bits of a key):
 * negative values have their magnitude bits flipped, so keys compare as signed integers exactly
 * as the floats compare, with -0 just below +0.
 */
const KEY = (x: string) => `(${x} ^ ((${x} >> 31) & 0x7fffffff))`;

/** The float32 value of key x, through the one-value scratch `bits` / `f` (float64, exact). */
const VALUE = (x: string) => `(bits[0] = ${KEY(x)}, f[0])`;

/**
 * Fills out[start, end) from the rows (the bits of the float32 rows, as Int32Array views); calls
 * exact(k) for a coordinate the network cannot settle.
 */
export type ColumnKernel = (bitRows: readonly Int32Array[], start: number, end: number, out: Float32Array, exact?: (k: number) => void) => void;

/**
 * Compiles a kernel for columns of n values: `reduce` is the code that computes the result `r`
 * (a float32 value) from the ordered keys. Where the condition `unsettled` (if any) holds for r,
 * `exact` recomputes the coordinate.
 */
function compile(n: number, wanted: readonly number[], reduce: string, unsettled?: string): ColumnKernel {
  const wires = Array.from({ length: n }, (_, i) => i);
  const body = [
    "const bits = new Int32Array(1);",
    "const f = new Float32Array(bits.buffer);",
    ...wires.map((i) => `const r${i} = bitRows[${i}];`),
    "for (let k = start; k < end; k++) {",
    ...wires.map((i) => `let x${i} = r${i}[k]; x${i} = ${KEY(`x${i}`)};`),
    "let m = 0;",
    "let t = 0;",
    networkCode(prune(sortingNetwork(n), n, wanted)),
    reduce,
    "out[k] = r;",
    unsettled ? `if (${unsettled}) exact(k);` : "",
    "}",
  ].join("\n");
  // The source is built from integers only (n, ranks), never from data.
  return new Function("bitRows", "start", "end", "out", "exact", body) as ColumnKernel;
}

// The median hands a zero back to `exact` (which of the tied zeros is in the middle decides its
// sign). The trimmed mean needs no such check: a sum that starts from +0 is never -0, whatever
// order its zeros come in.
const ZERO = "r === 0";

const kernels = new Map<string, ColumnKernel>();

function cached(key: string, build: () => ColumnKernel): ColumnKernel {
  let kernel = kernels.get(key);
  if (!kernel) {
    kernel = build();
    kernels.set(key, kernel);
  }
  return kernel;
}

/** Median of n <= NETWORK_MAX values per coordinate (mean of the two middle ones for even n, in float64). */
export function medianKernel(n: number): ColumnKernel {
  const mid = n >> 1;
  return cached(`median:${n}`, () =>
    n % 2 === 1
      ? compile(n, [mid], `const r = ${VALUE(`x${mid}`)};`, ZERO)
      : compile(n, [mid - 1, mid], `const r = (${VALUE(`x${mid - 1}`)} + ${VALUE(`x${mid}`)}) / 2;`, ZERO),
  );
}

/**
 * Trimmed mean of n <= NETWORK_MAX values per coordinate: the kept values added in sorted
 * order starting from 0, then divided by their count (exactly the reference's arithmetic).
 */
export function trimmedMeanKernel(n: number, trim: number): ColumnKernel {
  const kept = Array.from({ length: n - 2 * trim }, (_, i) => trim + i);
  return cached(`trimmed:${n}:${trim}`, () =>
    compile(n, kept, `let s = 0;\n${kept.map((i) => `s += ${VALUE(`x${i}`)};`).join("\n")}\nconst r = s / ${kept.length};`),
  );
}

