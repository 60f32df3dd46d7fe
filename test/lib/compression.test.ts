import { expect } from "chai";
import {
  compressTensors,
  dequantizeI8,
  f16BitsToNumber,
  f32ToF16Bits,
  quantizeI8,
  SCALE_SUFFIX,
  selectTopk,
  TOPK_INDICES,
  TOPK_VALUES,
  topkCount,
} from "../../lib/codec/compression.js";
import { encodeStoredSafetensors, type StoredTensor } from "../../lib/codec/safetensors.js";
import { decodeUpdate, encodeUpdate } from "../../lib/codec/update-file.js";
import { formatUpdateMetadata, UpdateMetadataError, type CompressionScheme } from "../../lib/codec/update-metadata.js";
import { parseCompression, TaskOptionsError } from "../../lib/protocol/options.js";
import { Random } from "../../lib/random.js";
import { flatten, type Tensor, type TensorShape } from "../../lib/tensors.js";
import { craft, expectReason, sampleMetadata, seededTensor } from "./safetensors.fixtures.js";

const shapesOf = (tensors: readonly Tensor[]): TensorShape[] => tensors.map(({ name, shape }) => ({ name, shape }));

/** A small model's delta: two kernels and a bias, canonical order "a/bias", "a/kernel", "b/kernel". */
function delta(seed = 1): Tensor[] {
  return [seededTensor("a/bias", [5], seed), seededTensor("a/kernel", [6, 5], seed), seededTensor("b/kernel", [5, 3], seed)];
}
const SHAPES = shapesOf(delta());

/** A file with hand-made stored tensors and metadata naming `scheme`, bypassing the compressing encoder. */
const storedFile = (stored: StoredTensor[], scheme?: CompressionScheme) =>
  encodeStoredSafetensors(stored, formatUpdateMetadata({ ...sampleMetadata, ...(scheme ? { compression: scheme } : {}) }));

/** The magnitude bit patterns next to `bits` that are finite halves. */
const neighbours = (bits: number) => [bits - 1, bits + 1].filter((m) => m >= 0 && m < 0x7c00);

describe("update compression", () => {
  describe("float16", () => {
    it("reads every finite half exactly and writes it back to the same bits", () => {
      const wrong: string[] = [];
      for (let bits = 0; bits < 0x10000; bits++) {
        if ((bits & 0x7c00) === 0x7c00) continue;
        const value = f16BitsToNumber(bits);
        if (Math.fround(value) !== value || f32ToF16Bits(value) !== bits) wrong.push(bits.toString(16));
      }
      expect(wrong).to.deep.equal([]);
    });

    it("rounds float32 to the nearest half, ties to even, overflowing only past 65520", () => {
      const random = new Random(3, "f16");
      const wrong: string[] = [];
      for (let i = 0; i < 20_000; i++) {
        // Magnitudes from 2^-30 to 2^16: subnormal, normal and near-overflow halves.
        const x = Math.fround((random.float() < 0.5 ? -1 : 1) * 2 ** (random.float() * 46 - 30));
        const bits = f32ToF16Bits(x);
        const magnitude = bits & 0x7fff;
        if (magnitude === 0x7c00) {
          if (Math.abs(x) < 65520) wrong.push(`${x} overflowed`);
          continue;
        }
        if ((bits & 0x8000) !== (x < 0 ? 0x8000 : 0)) wrong.push(`${x} lost its sign`);
        const error = Math.abs(Math.abs(x) - f16BitsToNumber(magnitude));
        for (const other of neighbours(magnitude)) {
          const otherError = Math.abs(Math.abs(x) - f16BitsToNumber(other));
          if (otherError < error || (otherError === error && (magnitude & 1) === 1)) wrong.push(`${x} -> ${f16BitsToNumber(magnitude)}, not ${f16BitsToNumber(other)}`);
        }
      }
      expect(wrong).to.deep.equal([]);
      expect(f16BitsToNumber(f32ToF16Bits(65519.99))).to.equal(65504);
      expect(f32ToF16Bits(65520)).to.equal(0x7c00);
      expect(f32ToF16Bits(2 ** -25)).to.equal(0, "half the smallest subnormal ties to zero");
      expect(f32ToF16Bits(Math.fround(2 ** -25 * 1.001))).to.equal(1);
      expect(f32ToF16Bits(-0)).to.equal(0x8000);
    });

    it("round-trips an update of f16-representable values exactly, in half the bytes", () => {
      const tensors = delta().map((t) => ({ ...t, data: t.data.map((x) => f16BitsToNumber(f32ToF16Bits(x))) }));
      const bytes = encodeUpdate(tensors, sampleMetadata, { scheme: "f16" });
      const file = decodeUpdate(bytes, { expected: SHAPES, compression: { scheme: "f16" } });
      expect(file.metadata.compression).to.equal("f16");
      expect(file.tensors).to.deep.equal(tensors);
      const big = [seededTensor("w", [100, 100], 2)];
      expect(encodeUpdate(big, sampleMetadata, { scheme: "f16" }).length).to.be.below(encodeUpdate(big, sampleMetadata).length * 0.51);
    });

    it("refuses a value beyond float16 at encoding, and infinities or NaN in a file", () => {
      const big = delta();
      big[1].data[7] = 70_000;
      expectReason(() => encodeUpdate(big, sampleMetadata, { scheme: "f16" }), "f16-overflow", '"a/kernel"', "index 7");
      for (const [bits, shown] of [[0x7c00, "Infinity"], [0xfc00, "-Infinity"], [0x7e00, "NaN"]] as const) {
        const data = new Uint16Array([0x3c00, bits]);
        const file = craft(
          { __metadata__: formatUpdateMetadata({ ...sampleMetadata, compression: "f16" }), w: { dtype: "F16", shape: [2], data_offsets: [0, 4] } },
          new Uint8Array(data.buffer),
        );
        expectReason(() => decodeUpdate(file), "non-finite", '"w"', shown, "index 1");
      }
    });
  });

  describe("int8", () => {
    it("quantises symmetrically, rounding half to even, within scale / 2 of every value", () => {
      const exact = quantizeI8(new Float32Array([127, 2.5, -2.5, 3.5, 0.5, -127]));
      expect(exact.scale).to.equal(1);
      expect([...exact.q]).to.deep.equal([127, 2, -2, 4, 0, -127]);
      const zeros = quantizeI8(new Float32Array(4));
      expect(zeros.scale).to.equal(1, "an all-zero tensor gets scale 1, not the refused 0");
      expect([...zeros.q]).to.deep.equal([0, 0, 0, 0]);

      const tensors = delta(5);
      const bytes = encodeUpdate(tensors, sampleMetadata, { scheme: "i8" });
      const file = decodeUpdate(bytes, { expected: SHAPES, compression: { scheme: "i8" } });
      tensors.forEach((t, k) => {
        const { scale } = quantizeI8(t.data);
        expect(scale).to.equal(Math.fround(Math.max(...t.data.map(Math.abs)) / 127));
        t.data.forEach((x, i) => expect(Math.abs(x - file.tensors[k].data[i]), `${t.name}[${i}]`).to.be.at.most((scale / 2) * (1 + 1e-6)));
      });
      expect(encodeUpdate(tensors, sampleMetadata, { scheme: "i8" })).to.deep.equal(bytes, "one delta, one encoding");
    });

    it("stores each tensor as I8 with an F32 scalar scale, in about a quarter of the bytes", () => {
      const big = [seededTensor("w", [100, 100], 2)];
      const stored = compressTensors(big, { scheme: "i8" });
      expect(stored.map((t) => [t.name, t.dtype, t.shape])).to.deep.equal([
        ["w", "I8", [100, 100]],
        [`w${SCALE_SUFFIX}`, "F32", []],
      ]);
      const ratio = encodeUpdate(big, sampleMetadata).length / encodeUpdate(big, sampleMetadata, { scheme: "i8" }).length;
      expect(ratio).to.be.above(3.7);
    });

    it("refuses bad scales, -128, overflowing products, missing or extra scales and wrong dtypes", () => {
      const q = (name: string, values: number[]): StoredTensor => ({ name, shape: [values.length], dtype: "I8", data: Int8Array.from(values) });
      const scale = (name: string, value: number): StoredTensor => ({ name: name + SCALE_SUFFIX, shape: [], dtype: "F32", data: Float32Array.of(value) });
      const expected = [{ name: "w", shape: [2] }];
      const read = (stored: StoredTensor[]) => () => decodeUpdate(storedFile(stored, "i8"), { expected });
      expect(decodeUpdate(storedFile([q("w", [1, -127]), scale("w", 0.5)], "i8"), { expected }).tensors[0].data).to.deep.equal(new Float32Array([0.5, -63.5]));
      expectReason(read([q("w", [1, 2]), scale("w", 0)]), "bad-scale", '"w/scale"', "> 0");
      expectReason(read([q("w", [1, 2]), scale("w", -1)]), "bad-scale", "-1");
      expectReason(read([q("w", [1, -128]), scale("w", 1)]), "out-of-range", '"w"', "index 1");
      expectReason(read([q("w", [1, 127]), scale("w", 3e38)]), "non-finite", "dequantises to Infinity");
      expectReason(read([q("w", [1, 2])]), "compression-layout", 'missing "w/scale"');
      expectReason(read([q("w", [1, 2]), scale("w", 1), scale("w/scale", 1)]), "compression-layout", "extra tensors");
      expectReason(read([q("w", [1, 2]), { ...scale("w", 1), shape: [1] }]), "compression-layout", "F32 scalar");
      expectReason(read([{ name: "w", shape: [2], dtype: "F32", data: Float32Array.of(1, 2) }, scale("w", 1)]), "compression-layout", "is F32", "as I8");
      expectReason(read([q("v", [1, 2]), scale("v", 1)]), "spec-mismatch", 'missing "w"', 'unexpected "v"');
      const nanScale = craft(
        {
          __metadata__: formatUpdateMetadata({ ...sampleMetadata, compression: "i8" }),
          w: { dtype: "I8", shape: [2], data_offsets: [0, 2] },
          "w/scale": { dtype: "F32", shape: [], data_offsets: [2, 6] },
        },
        Uint8Array.of(1, 2, ...new Uint8Array(Float32Array.of(NaN).buffer)),
      );
      expectReason(() => decodeUpdate(nanScale, { expected }), "non-finite", '"w/scale"', "NaN");
      expect(dequantizeI8(Int8Array.of(-127, 127), 0.25)).to.deep.equal(new Float32Array([-31.75, 31.75]));
    });
  });

  describe("top-k", () => {
    it("keeps the largest magnitudes (ties to the lower index) as ascending indices and values", () => {
      const { indices, values } = selectTopk(new Float32Array([0.1, -5, 3, 5, -3, 0]), 3);
      expect([...indices]).to.deep.equal([1, 2, 3], "|-5| and |5| first, then the tie 3 / -3 goes to index 2");
      expect([...values]).to.deep.equal([-5, 3, 5]);
      expect(topkCount(101_770, 0.1)).to.equal(10_177);
      expect(topkCount(10, 0.01)).to.equal(1);
      expect(topkCount(10, 1)).to.equal(10);
    });

    it("decodes to the dense delta with the kept values and zeros elsewhere", () => {
      const tensors = delta(7);
      const option = { scheme: "topk" as const, fraction: 0.2 };
      const bytes = encodeUpdate(tensors, sampleMetadata, option);
      const file = decodeUpdate(bytes, { expected: SHAPES, compression: option });
      const original = flatten(tensors);
      const decoded = flatten(file.tensors);
      const k = topkCount(original.length, 0.2);
      const threshold = [...original].map(Math.abs).sort((a, b) => b - a)[k - 1];
      let kept = 0;
      decoded.forEach((x, i) => {
        if (x !== 0) {
          kept++;
          expect(x).to.equal(original[i]);
          expect(Math.abs(x)).to.be.at.least(threshold);
        } else expect(Math.abs(original[i])).to.be.at.most(threshold);
      });
      expect(kept).to.equal(k);
      const all = decodeUpdate(encodeUpdate(tensors, sampleMetadata, { scheme: "topk", fraction: 1 }), { expected: SHAPES });
      expect(all.tensors).to.deep.equal(tensors, "fraction 1 keeps everything exactly");
    });

    it("refuses indices out of range, unsorted or repeated, mismatched lengths, wrong dtypes and missing shapes", () => {
      const idx = (values: number[]): StoredTensor => ({ name: TOPK_INDICES, shape: [values.length], dtype: "I32", data: Int32Array.from(values) });
      const val = (values: number[]): StoredTensor => ({ name: TOPK_VALUES, shape: [values.length], dtype: "F32", data: Float32Array.from(values) });
      const read = (stored: StoredTensor[]) => () => decodeUpdate(storedFile(stored, "topk"), { expected: SHAPES });
      expect(flatten(read([idx([0, 49]), val([1, 2])])().tensors)[49]).to.equal(2);
      expectReason(read([idx([0, 50]), val([1, 2])]), "bad-indices", `${TOPK_INDICES}[1] is 50`, "outside the model's 50 values");
      expectReason(read([idx([-1, 3]), val([1, 2])]), "bad-indices", "is -1");
      expectReason(read([idx([4, 3]), val([1, 2])]), "bad-indices", "below the previous index 4");
      expectReason(read([idx([3, 3]), val([1, 2])]), "bad-indices", "a duplicate");
      expectReason(read([idx([1, 2, 3]), val([1, 2])]), "compression-layout", "one length");
      expectReason(read([{ ...val([1, 2]), name: TOPK_INDICES }, val([1, 2])]), "compression-layout", "as I32");
      expectReason(read([idx([1]), val([1]), { ...val([1]), name: "extra" }]), "compression-layout", "exactly");
      expectReason(() => decodeUpdate(storedFile([idx([1]), val([1])], "topk")), "compression-layout", "needs the task's model spec");
    });
  });

  describe("the task's option", () => {
    it("holds a file to the task's scheme and topk budget", () => {
      const tensors = delta();
      const f16 = encodeUpdate(tensors, sampleMetadata, { scheme: "f16" });
      const plain = encodeUpdate(tensors, sampleMetadata);
      const topk = encodeUpdate(tensors, sampleMetadata, { scheme: "topk", fraction: 0.5 });
      expectReason(() => decodeUpdate(f16, { expected: SHAPES, compression: { scheme: "i8" } }), "compression-mismatch", "stored as f16", "compression is i8");
      expectReason(() => decodeUpdate(plain, { expected: SHAPES, compression: { scheme: "f16" } }), "compression-mismatch", "stored as float32");
      expectReason(() => decodeUpdate(f16, { expected: SHAPES, compression: "none" }), "compression-mismatch", "task's compression is float32");
      expectReason(() => decodeUpdate(topk, { expected: SHAPES, compression: { scheme: "topk", fraction: 0.1 } }), "compression-mismatch", "keeps 25 values", "allows 5 of 50");
      expect(decodeUpdate(plain, { expected: SHAPES, compression: "none" }).metadata.compression).to.equal(undefined);
      expect(decodeUpdate(topk, { expected: SHAPES, compression: { scheme: "topk", fraction: 0.5 } }).tensors).to.have.length(3);
    });

    it("is named in the metadata of deltas only, with one spelling, and the dense reader refuses compressed dtypes", () => {
      const meta = formatUpdateMetadata({ ...sampleMetadata, compression: "i8" });
      expect(() => formatUpdateMetadata({ ...sampleMetadata, compression: "zip" as CompressionScheme })).to.throw(UpdateMetadataError, /"compression" must be one of f16, i8, topk/);
      expect(() => formatUpdateMetadata({ ...sampleMetadata, kind: "model", compression: "f16" })).to.throw(UpdateMetadataError, /models are always float32/);
      expect(() => formatUpdateMetadata({ ...sampleMetadata, extra: { compression: "f16" } })).to.throw(UpdateMetadataError, /its own field/);
      expect(() => encodeUpdate(delta(), { ...sampleMetadata, compression: "f16" })).to.throw(/metadata says compression f16/);
      const f16WithoutMetadata = craft({ __metadata__: { ...meta, compression: undefined }, w: { dtype: "F16", shape: [1], data_offsets: [0, 2] } }, Uint8Array.of(0, 0x3c));
      expectReason(() => decodeUpdate(f16WithoutMetadata), "unsupported-dtype", "F32 only");
    });

    it("parses the command-line form", () => {
      expect(parseCompression("f16")).to.deep.equal({ scheme: "f16" });
      expect(parseCompression("topk:0.1")).to.deep.equal({ scheme: "topk", fraction: 0.1 });
      expect(parseCompression("topk:0.05:no-ef")).to.deep.equal({ scheme: "topk", fraction: 0.05, errorFeedback: false });
      for (const bad of ["zip", "topk", "topk:2", "i8:0.5", "topk:0.1:ef", "topk:0.1:no-ef:x"]) expect(() => parseCompression(bad), bad).to.throw(TaskOptionsError);
    });
  });
});
