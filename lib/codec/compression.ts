// Update compression (a task option, see lib/protocol/options.ts): how a participant's delta is
// stored in fewer bytes, and the strict decoder that turns any such file back into the dense
// float32 delta, so aggregation, the verdict policy and verify see exactly what they always saw.
// Pure functions, no I/O; every choice below is deterministic so that one delta has one encoding.
//
// Layouts (safetensors; the metadata key `compression` names the scheme):
//   f16   every weight tensor as F16 under its own name and shape; float32 -> float16 rounds to
//         nearest, ties to even (IEEE 754), subnormals kept; a value that would round to
//         infinity (|x| >= 65520) is refused at encoding, an F16 infinity or NaN at decoding.
//   i8    every weight tensor as I8 under its own name and shape, plus `<name>/scale`, an F32
//         scalar: value = q x scale, symmetric, scale = float32(maxabs / 127),
//         q = round-half-to-even(x / scale) in [-127, 127] (numpy's rint, so a Python writer
//         gives the same bytes); an all-zero tensor gets scale 1. Decoding refuses a scale
//         that is not finite and > 0, q = -128 (never written), and products that overflow.
//   topk  per model, over the canonical flat vector (tensors sorted by name, row-major):
//         `topk/indices` I32 [k], strictly ascending, in range, and `topk/values` F32 [k];
//         k = max(1, round(fraction x n)); kept = the k largest |values|, ties to the lower
//         index. The dense length comes from the task's model spec, so decoding needs it.
import type { CompressionOption } from "../protocol/options.js";
import { canonicalOrder, elementCount, flatten, unflatten, type Tensor, type TensorShape } from "../tensors.js";
import { SafetensorsError } from "./errors.js";
import { checkExpected, checkFinite, type StoredTensor } from "./safetensors.js";
import type { CompressionScheme } from "./update-metadata.js";

export const SCALE_SUFFIX = "/scale";
export const TOPK_INDICES = "topk/indices";
export const TOPK_VALUES = "topk/values";

// ---------------------------------------------------------------------------------------------
// float16

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float16 bit pattern nearest to a float32 value (ties to even); infinity when it overflows. */
export function f32ToF16Bits(value: number): number {
  f32[0] = value;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): value = m x 2^-24 with m = the 24-bit significand >> (14 - e).
    if (e < -10) return sign;
    return sign | roundShift(mantissa | 0x800000, 14 - e);
  }
  // A carry out of the mantissa moves into the exponent: still the right (possibly infinite) half.
  return sign | ((e << 10) + roundShift(mantissa, 13));
}

/** value >> shift, rounded to nearest with ties to even. */
function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

/** The exact value of a float16 bit pattern (every half is a float32, so no rounding). */
export function f16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

function toF16(t: Tensor): StoredTensor {
  const data = new Uint16Array(t.data.length);
  for (let i = 0; i < data.length; i++) {
    data[i] = f32ToF16Bits(t.data[i]);
    if ((data[i] & 0x7fff) === 0x7c00) {
      throw new SafetensorsError("f16-overflow", `tensor ${JSON.stringify(t.name)} has ${t.data[i]} at index ${i}, beyond float16's range (|x| < 65520)`, {
        hint: "use i8 or topk compression for this task, or float32",
        details: { name: t.name, index: i, value: t.data[i] },
      });
    }
  }
  return { name: t.name, shape: t.shape, dtype: "F16", data };
}

// ---------------------------------------------------------------------------------------------
// int8

/** Symmetric int8 quantisation with one scale (see the header comment for the exact rules). */
export function quantizeI8(data: Float32Array): { q: Int8Array; scale: number } {
  let maxAbs = 0;
  for (const x of data) maxAbs = Math.max(maxAbs, Math.abs(x));
  // A scale that underflows to 0 (all zeros, or only tiny subnormals) would be refused: 1 then.
  const scale = Math.fround(maxAbs / 127) || 1;
  const q = new Int8Array(data.length);
  for (let i = 0; i < data.length; i++) q[i] = Math.max(-127, Math.min(127, roundHalfEven(data[i] / scale)));
  return { q, scale };
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round sends ties up; a tie that landed on an odd integer goes to its even neighbour.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** value = q x scale, in float32. */
export function dequantizeI8(q: Int8Array, scale: number): Float32Array {
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i] * scale;
  return out;
}

// ---------------------------------------------------------------------------------------------
// top-k

/** How many coordinates a top-k update of an n-value model keeps: max(1, round(fraction x n)), at most n. */
export function topkCount(n: number, fraction: number): number {
  return Math.min(n, Math.max(1, Math.round(fraction * n)));
}

/** The k largest |values| (ties: lower index first), indices ascending. */
export function selectTopk(vector: Float32Array, k: number): { indices: Int32Array; values: Float32Array } {
  const magnitudes = new Float32Array(vector.length);
  for (let i = 0; i < vector.length; i++) magnitudes[i] = Math.abs(vector[i]);
  // The k-th largest magnitude; a typed-array sort is numeric and far faster than a comparator sort.
  const threshold = k > 0 ? magnitudes.slice().sort()[vector.length - k] : Infinity;
  let ties = k;
  for (let i = 0; i < vector.length; i++) if (magnitudes[i] > threshold) ties--;
  const indices = new Int32Array(k);
  let j = 0;
  for (let i = 0; i < vector.length && j < k; i++) {
    if (magnitudes[i] > threshold || (magnitudes[i] === threshold && ties-- > 0)) indices[j++] = i;
  }
  const values = new Float32Array(k);
  for (let m = 0; m < k; m++) values[m] = vector[indices[m]];
  return { indices, values };
}

// ---------------------------------------------------------------------------------------------
// Encoding and decoding a delta

/** The stored tensors of a delta under the option; throws SafetensorsError for a value the scheme cannot hold. */
export function compressTensors(tensors: readonly Tensor[], option: CompressionOption): StoredTensor[] {
  const ordered = canonicalOrder(tensors);
  // Checked before compressing: top-k could otherwise drop a NaN unseen, i8 would spread it.
  ordered.forEach(checkFinite);
  if (option.scheme === "f16") return ordered.map(toF16);
  if (option.scheme === "i8") {
    checkScaleNames(ordered);
    return ordered.flatMap((t): StoredTensor[] => {
      const { q, scale } = quantizeI8(t.data);
      return [
        { name: t.name, shape: t.shape, dtype: "I8", data: q },
        { name: t.name + SCALE_SUFFIX, shape: [], dtype: "F32", data: Float32Array.of(scale) },
      ];
    });
  }
  const vector = flatten(ordered);
  const { indices, values } = selectTopk(vector, topkCount(vector.length, option.fraction ?? 1));
  return [
    { name: TOPK_INDICES, shape: [indices.length], dtype: "I32", data: indices },
    { name: TOPK_VALUES, shape: [values.length], dtype: "F32", data: values },
  ];
}

/**
 * The dense float32 tensors (canonical order) of a compressed file's stored tensors; strict:
 * anything the encoder could not have written is a SafetensorsError naming it. `expected` (the
 * model spec's shapes) is required for topk, whose file holds no shapes.
 */
export function decompressTensors(stored: readonly StoredTensor[], scheme: CompressionScheme, expected?: readonly TensorShape[]): Tensor[] {
  if (scheme === "f16") return decodeF16(stored, expected);
  if (scheme === "i8") return decodeI8(stored, expected);
  return decodeTopk(stored, expected);
}

function decodeF16(stored: readonly StoredTensor[], expected?: readonly TensorShape[]): Tensor[] {
  requireDtype(stored, "F16", "f16");
  if (expected) checkExpected(stored, expected);
  return stored.map((t) => {
    const bits = t.data as Uint16Array;
    return { name: t.name, shape: t.shape, data: Float32Array.from(bits, f16BitsToNumber) };
  });
}

function decodeI8(stored: readonly StoredTensor[], expected?: readonly TensorShape[]): Tensor[] {
  const byName = new Map(stored.map((t) => [t.name, t]));
  // A weight is every tensor that is not the scale of another tensor of the file.
  const isScale = (t: StoredTensor) => t.name.endsWith(SCALE_SUFFIX) && byName.has(t.name.slice(0, -SCALE_SUFFIX.length));
  const weights = stored.filter((t) => !isScale(t));
  if (expected) checkExpected(weights, expected);
  requireDtype(weights, "I8", "i8");
  const missing = weights.filter((t) => !byName.has(t.name + SCALE_SUFFIX)).map((t) => JSON.stringify(t.name + SCALE_SUFFIX));
  if (missing.length > 0 || weights.length * 2 !== stored.length) {
    throw layout(`an i8 update holds each weight tensor and its ${SCALE_SUFFIX} tensor, nothing else; ${missing.length > 0 ? `missing ${missing.join(", ")}` : "found extra tensors"}`);
  }
  return weights.map((t) => {
    const scaleTensor = byName.get(t.name + SCALE_SUFFIX)!;
    if (scaleTensor.dtype !== "F32" || scaleTensor.shape.length !== 0) {
      throw layout(`tensor ${JSON.stringify(scaleTensor.name)} must be an F32 scalar (shape []), found ${scaleTensor.dtype} [${scaleTensor.shape.join(", ")}]`);
    }
    const scale = scaleTensor.data[0];
    if (!(scale > 0)) {
      throw new SafetensorsError("bad-scale", `tensor ${JSON.stringify(scaleTensor.name)} is ${scale}; an i8 scale must be finite and > 0`, { details: { name: scaleTensor.name, value: scale } });
    }
    const q = t.data as Int8Array;
    const low = q.indexOf(-128);
    if (low >= 0) {
      throw new SafetensorsError("out-of-range", `tensor ${JSON.stringify(t.name)} has -128 at index ${low}; symmetric i8 values lie in [-127, 127]`, { details: { name: t.name, index: low } });
    }
    const data = dequantizeI8(q, scale);
    const overflow = data.findIndex((x) => !Number.isFinite(x));
    if (overflow >= 0) {
      throw new SafetensorsError("non-finite", `tensor ${JSON.stringify(t.name)} dequantises to ${data[overflow]} at index ${overflow} (scale ${scale}); values must be finite`, {
        details: { name: t.name, index: overflow },
      });
    }
    return { name: t.name, shape: t.shape, data };
  });
}

function decodeTopk(stored: readonly StoredTensor[], expected?: readonly TensorShape[]): Tensor[] {
  if (!expected) throw layout("a topk update holds no shapes: decoding it needs the task's model spec");
  const names = stored.map((t) => t.name).join(", ");
  if (stored.length !== 2 || stored[0].name !== TOPK_INDICES || stored[1].name !== TOPK_VALUES) {
    throw layout(`a topk update holds exactly ${TOPK_INDICES} and ${TOPK_VALUES}; found ${names || "no tensors"}`);
  }
  const [indices, values] = stored;
  if (indices.dtype !== "I32" || values.dtype !== "F32") {
    throw layout(`a topk update stores ${TOPK_INDICES} as I32 and ${TOPK_VALUES} as F32; found ${indices.dtype} and ${values.dtype}`);
  }
  if (indices.shape.length !== 1 || values.shape.length !== 1 || indices.data.length !== values.data.length) {
    throw layout(`${TOPK_INDICES} and ${TOPK_VALUES} must be vectors of one length; found [${indices.shape.join(", ")}] and [${values.shape.join(", ")}]`);
  }
  const n = expected.reduce((sum, s) => sum + elementCount(s.shape), 0);
  const dense = new Float32Array(n);
  let previous = -1;
  for (let j = 0; j < indices.data.length; j++) {
    const at = indices.data[j];
    if (at <= previous || at >= n) {
      const why = at >= n ? `outside the model's ${n} values` : at === previous ? "a duplicate" : `below the previous index ${previous}`;
      throw new SafetensorsError("bad-indices", `${TOPK_INDICES}[${j}] is ${at}: ${why}; indices must be strictly ascending and in [0, ${n})`, {
        details: { position: j, index: at, n },
      });
    }
    dense[at] = values.data[j];
    previous = at;
  }
  return unflatten(dense, expected);
}

function requireDtype(stored: readonly StoredTensor[], dtype: StoredTensor["dtype"], scheme: CompressionScheme): void {
  const wrong = stored.find((t) => t.dtype !== dtype);
  if (wrong) throw layout(`tensor ${JSON.stringify(wrong.name)} is ${wrong.dtype}; a ${scheme} update stores its weights as ${dtype}`);
}

function checkScaleNames(ordered: readonly Tensor[]): void {
  const names = new Set(ordered.map((t) => t.name));
  const clash = ordered.find((t) => names.has(t.name + SCALE_SUFFIX));
  if (clash) throw new SafetensorsError("bad-tensor", `tensor ${JSON.stringify(clash.name + SCALE_SUFFIX)} would be both a weight and the scale of ${JSON.stringify(clash.name)}; i8 cannot encode this model`);
}

const layout = (message: string) => new SafetensorsError("compression-layout", message);

// ---------------------------------------------------------------------------------------------
// Error feedback (top-k): the client side, pure; the participant keeps the residual on disk.

/** The corrected delta a client encodes: this round's delta plus the carried residual (float32). */
export function addResidual(delta: readonly Tensor[], residual: Float32Array | undefined): Tensor[] {
  const flat = flatten(delta);
  if (residual) for (let i = 0; i < flat.length; i++) flat[i] += residual[i];
  return unflatten(flat, delta);
}

/** What stays behind: the corrected delta minus what the aggregator decodes from the file (float32). */
export function residualAfter(corrected: readonly Tensor[], sent: readonly Tensor[]): Float32Array {
  const out = flatten(corrected);
  const decoded = flatten(sent);
  for (let i = 0; i < out.length; i++) out[i] -= decoded[i];
  return out;
}

/**
 * Why a decoded update does not follow the task's compression option (undefined when it does):
 * the file must use exactly the task's scheme (none: float32), and a topk file may keep at most
 * topkCount(n, fraction) coordinates.
 */
export function compressionMismatch(fileScheme: CompressionScheme | undefined, stored: readonly StoredTensor[], option: CompressionOption | undefined, n: number): string | undefined {
  const name = (s: string | undefined) => s ?? "float32 (no compression)";
  if (fileScheme !== option?.scheme) return `the update is stored as ${name(fileScheme)}, but the task's compression is ${name(option?.scheme)}`;
  if (option?.scheme !== "topk") return undefined;
  const kept = stored.find((t) => t.name === TOPK_INDICES)?.data.length ?? 0;
  const budget = topkCount(n, option.fraction ?? 1);
  return kept > budget ? `the topk update keeps ${kept} values; the task's fraction ${option.fraction} allows ${budget} of ${n}` : undefined;
}
