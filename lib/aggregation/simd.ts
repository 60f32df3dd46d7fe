// WebAssembly SIMD kernels for the coordinate-wise median and trimmed mean (coordinatewise.ts
// uses them for up to SIMD_MAX updates). Four coordinates at a time: the
// n rows' values for coordinates k..k+3 are four-lane vectors, put in order by a pruned Batcher
// network of lane-wise min/max (no branch, no data-dependent memory access), then reduced in
// float64 exactly as the reference (coordinatewise.ts) reduces: the median's two middle values
// added and halved, the trimmed mean's kept values summed in row order from the two cut values.
//
// The rows are copied block by block into the module's memory (a few hundred KiB, reused), so
// there is never a copy of the n x d matrix. pmin/pmax order finite values exactly as the
// reference does except among tied zeros of opposite sign, which can only change the sign of a
// zero result; a lane whose result is zero while some input is not +0 is written as NaN (never a
// result: inputs are finite) and recomputed by the caller the reference way. So every output is
// bit-identical to the reference's.
import { prune, sortingNetwork } from "./networks.js";
import { I32, lanes32, moduleBytes, op, V128, type WasmFunction } from "./wasm.js";

/** Longest column given to a SIMD network; longer ones go through selection (select.ts). */
export const SIMD_MAX = 256;

/** Fills out[0, d) with the rule's value per coordinate, NaN where the caller must recompute it. */
export type SimdKernel = (rows: readonly Float32Array[], d: number, out: Float32Array) => void;

const HIGH_HALF_TWICE = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
/** The low halves of two vectors, joined (two demoted f64x2 results into one f32x4). */
const JOIN_LOW_HALVES = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
const NAN = lanes32(0x7fc00000);
const ZERO = lanes32(0);

/** Whether this engine runs wasm SIMD (V8 needs SSE4.1 on x86); without it the scalar paths run. */
export const simdAvailable: boolean = (() => {
  try {
    return WebAssembly.validate(moduleBytes(1, [{ name: "probe", params: [], locals: [{ count: 1, type: V128 }], body: [op.localGet(0), op.localGet(0), op.f32x4Pmin, op.localSet(0)] }]));
  } catch {
    return false;
  }
})();

/**
 * Coordinates per block: a multiple of 4 sized so one block of every row (n x block float32)
 * is about 256 KiB and stays in cache. A function of n only; results never depend on it.
 */
function blockWidth(n: number): number {
  const fit = Math.floor(65536 / n);
  return Math.max(64, Math.min(4096, fit - (fit % 16)));
}

/** Locals of the kernel function: param 0 = end (bytes), then the byte cursor, then v128 values. */
class Frame {
  static readonly END = 0;
  static readonly CURSOR = 1;
  private next = 2;
  private vectors = 0;
  v128(): number {
    this.vectors++;
    return this.next++;
  }
  locals(): { count: number; type: number }[] {
    return [
      { count: 1, type: I32 },
      { count: this.vectors, type: V128 },
    ];
  }
}

/** The code of a network over locals `wires`: after it, the pruned network's wanted wires hold their ranks. */
function networkCode(n: number, wanted: readonly number[], wires: readonly number[]): number[][] {
  return prune(sortingNetwork(n), n, wanted).flatMap(({ lo, hi, needLo, needHi }) => {
    const a = wires[lo];
    const b = wires[hi];
    // pmin(a, b) = b < a ? b : a; pmax(a, b) = a < b ? b : a: the smaller and the larger of two finite values.
    const min = [op.localGet(a), op.localGet(b), op.f32x4Pmin];
    const max = [op.localGet(a), op.localGet(b), op.f32x4Pmax];
    if (needLo && needHi) return [...min, ...max, op.localSet(b), op.localSet(a)];
    return needLo ? [...min, op.localSet(a)] : [...max, op.localSet(b)];
  });
}

/** Pushes the float64 values of lanes 0-1 (upper = false) or 2-3 (upper = true) of the f32x4 in `local`. */
function promote(local: number, upper: boolean): number[][] {
  return upper ? [op.localGet(local), op.localGet(local), op.i8x16Shuffle(HIGH_HALF_TWICE), op.f64x2PromoteLowF32x4] : [op.localGet(local), op.f64x2PromoteLowF32x4];
}

/** Pushes the int32 lanes 2-3 of `local` moved to lanes 0-1 (or the vector as is), for f64x2.convert_low_i32x4_s. */
function lowOrHighInts(local: number, upper: boolean): number[][] {
  return upper ? [op.localGet(local), op.localGet(local), op.i8x16Shuffle(HIGH_HALF_TWICE)] : [op.localGet(local)];
}

const f64Splat = (value: number): number[] => {
  const bytes = new Uint8Array(new Float64Array([value, value]).buffer);
  return op.v128Const([...bytes]);
};

/**
 * The kernel function: loads the n rows' vectors at the cursor, runs `compute` (which leaves
 * the f32x4 result on the stack), replaces a zero result by NaN unless every input was +0,
 * stores it, and moves on four coordinates until the cursor reaches `end`.
 */
function kernelFunction(n: number, stride: number, frame: Frame, wires: readonly number[], compute: number[][]): WasmFunction {
  const bits = frame.v128();
  const result = frame.v128();
  const load = wires.flatMap((x, i) => [op.localGet(Frame.CURSOR), op.v128Load(i * stride), op.localTee(x), ...(i === 0 ? [] : [op.localGet(bits), op.v128Or]), op.localSet(bits)]);
  const settle = [
    op.v128Const(NAN),
    op.localGet(result),
    op.localGet(result),
    op.v128Const(ZERO),
    op.f32x4Eq,
    op.localGet(bits),
    op.v128Const(ZERO),
    op.i32x4Ne,
    op.v128And,
    op.v128Bitselect,
    op.localSet(result),
  ];
  const store = [op.localGet(Frame.CURSOR), op.localGet(result), op.v128Store(n * stride)];
  const advance = [op.localGet(Frame.CURSOR), op.i32Const(16), op.i32Add, op.localTee(Frame.CURSOR), op.localGet(Frame.END), op.i32LtU, op.brIf(0)];
  const body = [op.loop, ...load, ...compute, op.localSet(result), ...settle, ...store, ...advance, op.end];
  return { name: "run", params: [I32], locals: frame.locals(), body };
}

interface Instance {
  readonly run: (end: number) => void;
  readonly heap: Float32Array;
}

function instantiate(bytes: Uint8Array): Instance {
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes));
  return { run: exports.run as (end: number) => void, heap: new Float32Array((exports.memory as WebAssembly.Memory).buffer) };
}

/** Runs an instance block by block over the rows' coordinates. */
function blockRunner(n: number, width: number, instance: Instance): SimdKernel {
  const { run, heap } = instance;
  return (rows, d, out) => {
    for (let from = 0; from < d; from += width) {
      const to = Math.min(d, from + width);
      for (let i = 0; i < n; i++) heap.set(rows[i].subarray(from, to), i * width);
      run(Math.ceil((to - from) / 4) * 16);
      out.set(heap.subarray(n * width, n * width + (to - from)), from);
    }
  };
}

function build(n: number, compute: (frame: Frame, wires: readonly number[], stride: number) => number[][]): SimdKernel {
  const width = blockWidth(n);
  const stride = width * 4;
  const frame = new Frame();
  const wires = Array.from({ length: n }, () => frame.v128());
  const fn = kernelFunction(n, stride, frame, wires, compute(frame, wires, stride));
  const pages = Math.ceil(((n + 1) * stride) / 65536);
  return blockRunner(n, width, instantiate(moduleBytes(pages, [fn])));
}

const kernels = new Map<string, SimdKernel>();

function cached(key: string, make: () => SimdKernel): SimdKernel {
  let kernel = kernels.get(key);
  if (!kernel) {
    kernel = make();
    kernels.set(key, kernel);
  }
  return kernel;
}

/** Median of n values per coordinate (for even n the two middle ones added and halved in float64). */
export function simdMedianKernel(n: number): SimdKernel {
  const mid = n >> 1;
  return cached(`median:${n}`, () =>
    build(n, (frame, wires) => {
      if (n % 2 === 1) return [...networkCode(n, [mid], wires), op.localGet(wires[mid])];
      const a = wires[mid - 1];
      const b = wires[mid];
      const half = (upper: boolean) => [...promote(a, upper), ...promote(b, upper), op.f64x2Add, f64Splat(2), op.f64x2Div, op.f32x4DemoteF64x2Zero];
      return [...networkCode(n, [mid - 1, mid], wires), ...half(false), ...half(true), op.i8x16Shuffle(JOIN_LOW_HALVES)];
    }),
  );
}

/** Columns up to this long are summed in sorted order by the reference (coordinatewise.ts), longer ones in row order. */
export const SORTED_SUM_MAX = 16;

/** The kept wires (ranks trim .. n - trim - 1) added in sorted order from +0 in float64, divided by their count. */
function sortedSum(wires: readonly number[], trim: number): number[][] {
  const n = wires.length;
  const kept = wires.slice(trim, n - trim);
  const half = (upper: boolean) => [
    op.v128Const(ZERO),
    ...kept.flatMap((w) => [...promote(w, upper), op.f64x2Add]),
    f64Splat(kept.length),
    op.f64x2Div,
    op.f32x4DemoteF64x2Zero,
  ];
  return [...networkCode(n, Array.from({ length: kept.length }, (_, i) => trim + i), wires), ...half(false), ...half(true), op.i8x16Shuffle(JOIN_LOW_HALVES)];
}

/**
 * Trimmed mean of n values per coordinate, as the reference computes it: for columns of up to
 * SORTED_SUM_MAX, the kept values added in sorted order; for longer ones, the cut values (ranks
 * trim and n - trim - 1) from the network, then the values strictly between them summed in row
 * order from +0 in float64, plus the copies of the cut values that fill the kept ranks; divided
 * by n - 2 * trim.
 */
export function simdTrimmedMeanKernel(n: number, trim: number): SimdKernel {
  const kept = n - 2 * trim;
  return cached(`trimmed:${n}:${trim}`, () =>
    build(n, (frame, wires, stride) => {
      if (n <= SORTED_SUM_MAX) return sortedSum(wires, trim);
      const low = wires[trim];
      const high = wires[n - trim - 1];
      const x = frame.v128();
      const insideLow = frame.v128();
      const insideHigh = frame.v128();
      const strictly = frame.v128();
      const atOrBelow = frame.v128();
      const copies = frame.v128();
      const rest = frame.v128();
      const zeroAll = [op.v128Const(ZERO), op.localTee(insideLow), op.localTee(insideHigh), op.localTee(strictly), op.localSet(atOrBelow)];
      // Row order, as the reference's keptSum: x inside (low, high) adds x, else +0 (the same sum).
      const rows = Array.from({ length: n }, (_, i) => [
        op.localGet(Frame.CURSOR),
        op.v128Load(i * stride),
        op.localTee(x),
        op.localGet(low),
        op.f32x4Gt,
        op.localGet(x),
        op.localGet(high),
        op.f32x4Lt,
        op.v128And,
        op.localTee(rest), // the inside mask, reused as scratch
        op.localGet(strictly),
        op.localGet(rest),
        op.i32x4Sub,
        op.localSet(strictly),
        ...[op.localGet(atOrBelow), op.localGet(x), op.localGet(low), op.f32x4Le, op.i32x4Sub, op.localSet(atOrBelow)],
        op.localGet(x),
        op.v128And,
        op.localSet(x),
        ...[op.localGet(insideLow), ...promote(x, false), op.f64x2Add, op.localSet(insideLow)],
        ...[op.localGet(insideHigh), ...promote(x, true), op.f64x2Add, op.localSet(insideHigh)],
      ]).flat();
      // lowCopies = atOrBelow - trim; rest = kept - strictly - lowCopies (int32 lanes).
      const counts = [
        ...[op.localGet(atOrBelow), op.i32Const(trim), op.i32x4Splat, op.i32x4Sub, op.localSet(copies)],
        ...[op.i32Const(kept), op.i32x4Splat, op.localGet(strictly), op.i32x4Sub, op.localGet(copies), op.i32x4Sub, op.localSet(rest)],
      ];
      const half = (upper: boolean, sum: number) => [
        // low == high ? kept * low : (inside + copies * low) + rest * high
        f64Splat(kept),
        ...promote(low, upper),
        op.f64x2Mul,
        op.localGet(sum),
        ...lowOrHighInts(copies, upper),
        op.f64x2ConvertLowI32x4S,
        ...promote(low, upper),
        op.f64x2Mul,
        op.f64x2Add,
        ...lowOrHighInts(rest, upper),
        op.f64x2ConvertLowI32x4S,
        ...promote(high, upper),
        op.f64x2Mul,
        op.f64x2Add,
        ...promote(low, upper),
        ...promote(high, upper),
        op.f64x2Eq,
        op.v128Bitselect,
        f64Splat(kept),
        op.f64x2Div,
        op.f32x4DemoteF64x2Zero,
      ];
      return [...networkCode(n, [trim, n - trim - 1], wires), ...zeroAll, ...rows, ...counts, ...half(false, insideLow), ...half(true, insideHigh), op.i8x16Shuffle(JOIN_LOW_HALVES)];
    }),
  );
}
