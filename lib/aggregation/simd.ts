// WebAssembly SIMD kernels for the coordinate-wise median and trimmed mean (coordinatewise.ts
// uses them for up to SIMD_MAX updates). Four coordinates at a time: the n rows' values for
// coordinates k..k+3 are four-lane vectors, put in order by a pruned Batcher network of
// lane-wise min/max (no branch, no data-dependent memory access), then reduced in float64
// exactly as the reference (coordinatewise.ts) reduces: the median's two middle values added and
// halved, the trimmed mean's kept values summed in sorted order (short columns) or in row order
// from the two cut values.
//
// The rows are copied block by block into the module's memory (a few hundred KiB, reused), so
// there is never a copy of the n x d matrix. pmin/pmax order finite values exactly as the
// reference does except among tied zeros of opposite sign, which can only change the sign of a
// zero result; a lane whose result is zero while some input is -0 is written as NaN (never a
// result: inputs are finite) and recomputed by the caller the reference way. Without a -0 every
// zero is +0, so the values ordered and added are the reference's bit for bit; sparse updates
// (top-k compression: mostly +0) thus stay in the kernel. So every output is bit-identical to
// the reference's.
import { prune, sortingNetwork } from "./networks.js";
import { Code, I32, lanes32, lanesF64, moduleBytes, V128 } from "./wasm.js";

/** Longest column given to a SIMD network; longer ones go through selection (select.ts). */
export const SIMD_MAX = 256;

/** Columns up to this long are summed in sorted order by the reference (coordinatewise.ts), longer ones in row order. */
export const SORTED_SUM_MAX = 16;

/** Fills out[0, d) with the rule's value per coordinate, NaN where the caller must recompute it. */
export type SimdKernel = (rows: readonly Float32Array[], d: number, out: Float32Array) => void;

const HIGH_HALF_TWICE = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
/** The low halves of two vectors, joined (two demoted f64x2 results into one f32x4). */
const JOIN_LOW_HALVES = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
const NAN = lanes32(0x7fc00000);
const ZERO = lanes32(0);
const NEGATIVE_ZERO = lanes32(0x80000000);

/** Whether this engine runs wasm SIMD (V8 needs SSE4.1 on x86); without it the scalar paths run. */
export const simdAvailable: boolean = (() => {
  try {
    const body = new Code().localGet(0).localGet(0).f32x4Pmin().localSet(0);
    return WebAssembly.validate(moduleBytes(1, [{ name: "probe", params: [], locals: [{ count: 1, type: V128 }], body }]));
  } catch {
    return false;
  }
})();

/**
 * Coordinates per block: a multiple of 16 sized so one block of every row (n x block float32)
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

/** A kernel's code generator: the wires (one v128 local per row) and where row i's vector is. */
interface Kernel {
  readonly code: Code;
  readonly frame: Frame;
  readonly wires: readonly number[];
  readonly stride: number;
}

/** After this code, the pruned network's wanted wires hold their ranks. */
function emitNetwork({ code, wires }: Kernel, wanted: readonly number[]): void {
  for (const { lo, hi, needLo, needHi } of prune(sortingNetwork(wires.length), wires.length, wanted)) {
    const a = wires[lo];
    const b = wires[hi];
    if (needLo) code.localGet(a).localGet(b).f32x4Pmin();
    if (needHi) code.localGet(a).localGet(b).f32x4Pmax().localSet(b);
    if (needLo) code.localSet(a);
  }
}

/** Pushes the float64 values of lanes 0-1 (upper = false) or 2-3 (upper = true) of the f32x4 in `local`. */
function emitPromote(code: Code, local: number, upper: boolean): void {
  code.localGet(local);
  if (upper) code.localGet(local).i8x16Shuffle(HIGH_HALF_TWICE);
  code.f64x2PromoteLowF32x4();
}

/** Pushes the float64 values of int32 lanes 0-1 (upper = false) or 2-3 (upper = true) of `local`. */
function emitConvert(code: Code, local: number, upper: boolean): void {
  code.localGet(local);
  if (upper) code.localGet(local).i8x16Shuffle(HIGH_HALF_TWICE);
  code.f64x2ConvertLowI32x4S();
}

/** Turns the two float64 halves on the stack (lanes 0-1, then 2-3) into one f32x4. */
function emitJoin(code: Code): void {
  code.i8x16Shuffle(JOIN_LOW_HALVES);
}

/**
 * The kernel function: loads the n rows' vectors at the cursor, runs `compute` (which leaves
 * the f32x4 result on the stack), replaces a zero result by NaN where some input is -0,
 * stores it, and moves on four coordinates until the cursor reaches `end`.
 */
function build(n: number, compute: (kernel: Kernel) => void): SimdKernel {
  const width = blockWidth(n);
  const stride = width * 4;
  const frame = new Frame();
  const code = new Code();
  const kernel: Kernel = { code, frame, wires: Array.from({ length: n }, () => frame.v128()), stride };
  const negativeZero = frame.v128(); // all ones in a lane where some input is -0
  const result = frame.v128();
  code.loop();
  kernel.wires.forEach((x, i) => {
    code.localGet(Frame.CURSOR).v128Load(i * stride).localTee(x).v128Const(NEGATIVE_ZERO).i32x4Eq();
    if (i > 0) code.localGet(negativeZero).v128Or();
    code.localSet(negativeZero);
  });
  compute(kernel);
  code.localSet(result);
  // result = (result == 0 && negativeZero) ? NaN : result
  code.v128Const(NAN).localGet(result).localGet(result).v128Const(ZERO).f32x4Eq().localGet(negativeZero).v128And().v128Bitselect().localSet(result);
  code.localGet(Frame.CURSOR).localGet(result).v128Store(n * stride);
  code.localGet(Frame.CURSOR).i32Const(16).i32Add().localTee(Frame.CURSOR).localGet(Frame.END).i32LtU().brIf(0).end();
  const pages = Math.ceil(((n + 1) * stride) / 65536);
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes(pages, [{ name: "run", params: [I32], locals: frame.locals(), body: code }])));
  const run = exports.run as (end: number) => void;
  const heap = new Float32Array((exports.memory as WebAssembly.Memory).buffer);
  return (rows, d, out) => {
    for (let from = 0; from < d; from += width) {
      const to = Math.min(d, from + width);
      for (let i = 0; i < n; i++) heap.set(rows[i].subarray(from, to), i * width);
      run(Math.ceil((to - from) / 4) * 16);
      out.set(heap.subarray(n * width, n * width + (to - from)), from);
    }
  };
}

/**
 * Built kernels, most recently used last. Each holds a few hundred KiB of wasm memory, and an
 * aggregator whose number of updates changes from round to round would otherwise keep one per n
 * (and per trim) for good.
 */
const kernels = new Map<string, SimdKernel>();
const KEPT_KERNELS = 32;

function cached(key: string, make: () => SimdKernel): SimdKernel {
  const kernel = kernels.get(key) ?? make();
  kernels.delete(key);
  kernels.set(key, kernel);
  if (kernels.size > KEPT_KERNELS) kernels.delete(kernels.keys().next().value!);
  return kernel;
}

/** Median of n values per coordinate (for even n the two middle ones added and halved in float64). */
export function simdMedianKernel(n: number): SimdKernel {
  const mid = n >> 1;
  return cached(`median:${n}`, () =>
    build(n, (kernel) => {
      const { code, wires } = kernel;
      if (n % 2 === 1) {
        emitNetwork(kernel, [mid]);
        code.localGet(wires[mid]);
        return;
      }
      emitNetwork(kernel, [mid - 1, mid]);
      for (const upper of [false, true]) {
        emitPromote(code, wires[mid - 1], upper);
        emitPromote(code, wires[mid], upper);
        code.f64x2Add().v128Const(lanesF64(2)).f64x2Div().f32x4DemoteF64x2Zero();
      }
      emitJoin(code);
    }),
  );
}

/**
 * Trimmed mean of n values per coordinate, as the reference computes it: for columns of up to
 * SORTED_SUM_MAX, the kept values added in sorted order; for longer ones, the cut values (ranks
 * trim and n - trim - 1) from the network, then the values strictly between them summed in row
 * order from +0 in float64, plus the copies of the cut values that fill the kept ranks; divided
 * by n - 2 * trim.
 */
export function simdTrimmedMeanKernel(n: number, trim: number): SimdKernel {
  return cached(`trimmed:${n}:${trim}`, () => build(n, (kernel) => (n <= SORTED_SUM_MAX ? emitSortedSum(kernel, trim) : emitKeptSum(kernel, trim))));
}

/** The kept wires (ranks trim .. n - trim - 1) added in sorted order from +0 in float64, divided by their count. */
function emitSortedSum(kernel: Kernel, trim: number): void {
  const { code, wires } = kernel;
  const kept = wires.slice(trim, wires.length - trim);
  emitNetwork(kernel, Array.from(kept, (_, i) => trim + i));
  for (const upper of [false, true]) {
    code.v128Const(ZERO);
    for (const w of kept) {
      emitPromote(code, w, upper);
      code.f64x2Add();
    }
    code.v128Const(lanesF64(kept.length)).f64x2Div().f32x4DemoteF64x2Zero();
  }
  emitJoin(code);
}

/** The reference's keptSum for columns longer than SORTED_SUM_MAX, lane-wise (see simdTrimmedMeanKernel). */
function emitKeptSum(kernel: Kernel, trim: number): void {
  const { code, frame, wires, stride } = kernel;
  const n = wires.length;
  const kept = n - 2 * trim;
  emitNetwork(kernel, [trim, n - trim - 1]);
  const low = wires[trim];
  const high = wires[n - trim - 1];
  const [x, mask, strictly, atOrBelow, copies, rest] = [frame.v128(), frame.v128(), frame.v128(), frame.v128(), frame.v128(), frame.v128()];
  const sums = [frame.v128(), frame.v128()];
  code.v128Const(ZERO).localTee(sums[0]).localTee(sums[1]).localTee(strictly).localSet(atOrBelow);
  // Row order, as the reference: x strictly inside (low, high) adds x, any other adds +0 (the same sum).
  for (let i = 0; i < n; i++) {
    code.localGet(Frame.CURSOR).v128Load(i * stride).localTee(x).localGet(low).f32x4Gt().localGet(x).localGet(high).f32x4Lt().v128And().localSet(mask);
    code.localGet(strictly).localGet(mask).i32x4Sub().localSet(strictly); // a true lane is -1
    code.localGet(atOrBelow).localGet(x).localGet(low).f32x4Le().i32x4Sub().localSet(atOrBelow);
    code.localGet(x).localGet(mask).v128And().localSet(x);
    for (const upper of [false, true]) {
      code.localGet(sums[+upper]);
      emitPromote(code, x, upper);
      code.f64x2Add().localSet(sums[+upper]);
    }
  }
  // copies of low in the kept ranks = atOrBelow - trim; copies of high = kept - strictly - copies of low.
  code.localGet(atOrBelow).i32Const(trim).i32x4Splat().i32x4Sub().localSet(copies);
  code.i32Const(kept).i32x4Splat().localGet(strictly).i32x4Sub().localGet(copies).i32x4Sub().localSet(rest);
  for (const upper of [false, true]) {
    // low == high ? kept * low : (sum + copies * low) + rest * high
    code.v128Const(lanesF64(kept));
    emitPromote(code, low, upper);
    code.f64x2Mul().localGet(sums[+upper]);
    emitConvert(code, copies, upper);
    emitPromote(code, low, upper);
    code.f64x2Mul().f64x2Add();
    emitConvert(code, rest, upper);
    emitPromote(code, high, upper);
    code.f64x2Mul().f64x2Add();
    emitPromote(code, low, upper);
    emitPromote(code, high, upper);
    code.f64x2Eq().v128Bitselect().v128Const(lanesF64(kept)).f64x2Div().f32x4DemoteF64x2Zero();
  }
  emitJoin(code);
}
