import { expect } from "chai";
import { decodeSafetensors, encodeSafetensors, MAX_HEADER_BYTES, SafetensorsError } from "../../lib/codec/safetensors.js";
import { decodeUpdate, encodeUpdate } from "../../lib/codec/update-file.js";
import { sha256Digest } from "../../lib/digest.js";
import type { Tensor } from "../../lib/tensors.js";
import { craft, expectReason, floatBytes, sampleMetadata, sampleTensors, seededTensor } from "./safetensors.fixtures.js";

/** A reader written from the format description alone, sharing no code with the codec. */
function independentRead(bytes: Uint8Array) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
  const header = JSON.parse(headerText) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const tensors: Record<string, { dtype: string; shape: number[]; values: number[] }> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [begin, end] = info.data_offsets;
    const values: number[] = [];
    for (let at = 8 + headerLength + begin; at < 8 + headerLength + end; at += 4) values.push(view.getFloat32(at, true));
    tensors[name] = { dtype: info.dtype, shape: info.shape, values };
  }
  return { headerLength, headerText, header, tensors };
}

function bitsOf(t: Tensor): number[] {
  return [...new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)];
}

const W_ENTRY = { dtype: "F32", shape: [2], data_offsets: [0, 8] };

describe("safetensors codec", () => {
  describe("encoding", () => {
    it("round-trips tensors (including a scalar and an empty tensor) and metadata bit for bit", () => {
      const tensors = sampleTensors();
      tensors[0].data[1] = -0;
      // Built with fromEntries: a "__proto__" key in an object literal would set the prototype instead.
      const metadata = Object.fromEntries([["a", "1"], ["__proto__", "x"]]);
      const decoded = decodeSafetensors(encodeSafetensors(tensors, metadata));
      expect(Object.entries(decoded.metadata)).to.deep.equal([["__proto__", "x"], ["a", "1"]]);
      expect(decoded.tensors.map((t) => t.name)).to.deep.equal(["dense1/bias", "dense1/kernel", "empty", "out/kernel", "scalar"]);
      for (const t of decoded.tensors) {
        const original = tensors.find((o) => o.name === t.name)!;
        expect(t.shape).to.deep.equal(original.shape);
        expect(t.data).to.be.instanceOf(Float32Array);
        expect(bitsOf(t), t.name).to.deep.equal(bitsOf(original));
      }
      expect(Object.is(decoded.tensors[1].data[1], -0)).to.equal(true);
    });

    it("lays the file out as the format specifies, checked by an independent reader", () => {
      const tensors = sampleTensors();
      const bytes = encodeSafetensors(tensors, { b: "2", a: "1" });
      const read = independentRead(bytes);
      expect(read.headerLength % 8).to.equal(0);
      expect(bytes.length).to.equal(8 + read.headerLength + tensors.reduce((n, t) => n + 4 * t.data.length, 0));
      expect(read.header.__metadata__).to.deep.equal({ a: "1", b: "2" });
      for (const t of tensors) {
        expect(read.tensors[t.name].dtype).to.equal("F32");
        expect(read.tensors[t.name].shape).to.deep.equal(t.shape);
        expect(read.tensors[t.name].values).to.deep.equal([...t.data]);
      }
    });

    it("writes the canonical header text: metadata first, sorted keys, no whitespace, space padding to 8", () => {
      const bytes = encodeSafetensors([{ name: "w", shape: [2], data: new Float32Array([1, -2]) }], { z: "26", a: "1" });
      const read = independentRead(bytes);
      const json = '{"__metadata__":{"a":"1","z":"26"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
      expect(read.headerText).to.equal(json + " ".repeat(read.headerLength - json.length));
      expect(read.headerLength - json.length).to.be.within(0, 7);
      expect([...bytes.subarray(8 + read.headerLength)]).to.deep.equal([...floatBytes([1, -2])]);
    });

    it("gives identical bytes and digest whatever the input order, metadata order or array views", () => {
      const tensors = sampleTensors(5);
      const a = encodeSafetensors(tensors, { x: "1", y: "2" });
      // Same values held at odd offsets of a larger buffer, tensors and metadata in another order.
      const moved = [...tensors].reverse().map((t) => {
        const host = new Float32Array(t.data.length + 3);
        host.set(t.data, 1);
        return { name: t.name, shape: [...t.shape], data: host.subarray(1, 1 + t.data.length) };
      });
      const b = encodeSafetensors(moved, { y: "2", x: "1" });
      expect(Buffer.from(b).equals(Buffer.from(a))).to.equal(true);
      expect(sha256Digest(b)).to.equal(sha256Digest(a));
      // ...and a different value gives a different digest.
      moved.find((t) => t.name === "out/kernel")!.data[0] += 1;
      expect(sha256Digest(encodeSafetensors(moved, { x: "1", y: "2" }))).to.not.equal(sha256Digest(a));
    });

    it("decodes from a buffer at an unaligned offset into fresh, aligned arrays", () => {
      const bytes = encodeSafetensors(sampleTensors(), {});
      const host = new Uint8Array(bytes.length + 3);
      host.set(bytes, 3);
      const view = host.subarray(3);
      const decoded = decodeSafetensors(view);
      for (const t of decoded.tensors) expect(t.data.byteOffset).to.equal(0);
      decoded.tensors[0].data[0] = 42;
      expect(Buffer.from(view).equals(Buffer.from(bytes))).to.equal(true);
    });

    it("decodes from a Node Buffer inside a larger pool into arrays of exactly the tensor's size", () => {
      const tensors = sampleTensors();
      const bytes = encodeSafetensors(tensors, {});
      const pool = Buffer.alloc(bytes.length + 1000, 0xff);
      pool.set(bytes, 500);
      const decoded = decodeSafetensors(pool.subarray(500, 500 + bytes.length));
      for (const t of decoded.tensors) {
        expect(t.data.buffer.byteLength, t.name).to.equal(4 * t.data.length);
        expect(bitsOf(t), t.name).to.deep.equal(bitsOf(tensors.find((o) => o.name === t.name)!));
      }
    });

    it("refuses to write what it would refuse to read", () => {
      const ok = seededTensor("w", [2, 2], 1);
      expectReason(() => encodeSafetensors([ok, { ...ok }], {}), "duplicate-name", '"w"');
      expectReason(() => encodeSafetensors([{ ...ok, shape: [3, 2] }], {}), "bad-tensor", "shape [3, 2] (6 values) but 4 values");
      expectReason(() => encodeSafetensors([{ ...ok, shape: [2, -2] }], {}), "bad-tensor", "dimension 1");
      expectReason(() => encodeSafetensors([{ ...ok, name: "__metadata__" }], {}), "bad-tensor", "reserves");
      expectReason(() => encodeSafetensors([{ ...ok, data: new Float32Array([1, 2, NaN, 4]) }], {}), "non-finite", '"w"', "index 2", "[1, 0]");
      expectReason(() => encodeSafetensors([ok], { n: 1 as unknown as string }), "bad-metadata", '"n"');
      expectReason(() => encodeSafetensors([ok], { big: "x".repeat(MAX_HEADER_BYTES) }), "header-too-large");
    });
  });

  describe("decoding rejects, naming the cause", () => {
    const twoFloats = floatBytes([1, 2]);

    it("files too short for the length prefix, and header lengths that are too large or past the end", () => {
      expectReason(() => decodeSafetensors(new Uint8Array(7)), "too-short", "7 bytes");
      expectReason(() => decodeSafetensors(craft({}, new Uint8Array(0), BigInt(MAX_HEADER_BYTES + 1))), "header-too-large", `${MAX_HEADER_BYTES + 1}`);
      expectReason(() => decodeSafetensors(craft({ w: W_ENTRY }, twoFloats), { maxHeaderBytes: 16 }), "header-too-large", "at most 16");
      expectReason(() => decodeSafetensors(craft({}, new Uint8Array(0), 2n ** 64n - 1n)), "header-too-large", "18446744073709551615");
      expectReason(() => decodeSafetensors(craft("{}", new Uint8Array(0), 3n)), "header-out-of-bounds", "only 2 bytes");
    });

    it("headers that are not UTF-8 or not a JSON object", () => {
      const bad = craft('{"w":1}');
      bad[11] = 0xff;
      expectReason(() => decodeSafetensors(bad), "header-not-utf8");
      expectReason(() => decodeSafetensors(craft("[]")), "header-not-object", '"[]"');
      expectReason(() => decodeSafetensors(craft(" {}")), "header-not-object");
      expectReason(() => decodeSafetensors(craft('{"w":')), "header-syntax", "a JSON value", "end of the header");
      expectReason(() => decodeSafetensors(craft("{} x")), "header-syntax", "end of the header", '"x"');
      expectReason(() => decodeSafetensors(craft('{"w":tru}')), "header-syntax");
      expectReason(() => decodeSafetensors(craft('{"a\u0001":1}')), "header-syntax", "control character");
      expectReason(() => decodeSafetensors(craft('{"\\ud800":1}')), "header-syntax", "unpaired surrogate");
      expectReason(() => decodeSafetensors(craft('{"\\x":1}')), "header-syntax", "escape");
    });

    it("headers nested deeper than the format needs, even when otherwise harmless", () => {
      expectReason(() => decodeSafetensors(craft('{"w":{"shape":[[2]]}}')), "header-too-deep", "4 levels", "at most 3");
      expectReason(() => decodeSafetensors(craft('{"a":' + "[".repeat(100_000))), "header-too-deep");
    });

    it("duplicate keys, which other readers would resolve differently", () => {
      const entry = JSON.stringify(W_ENTRY);
      expectReason(() => decodeSafetensors(craft(`{"w":${entry},"w":${entry}}`, twoFloats)), "duplicate-key", '"w"');
      expectReason(() => decodeSafetensors(craft('{"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', twoFloats)), "duplicate-key", '"dtype"');
    });

    it("numbers that are not plain integers", () => {
      expectReason(() => decodeSafetensors(craft('{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', twoFloats)), "non-integer", "2.0");
      expectReason(() => decodeSafetensors(craft('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8e0]}}', twoFloats)), "non-integer");
      expectReason(() => decodeSafetensors(craft('{"w":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}}', twoFloats)), "non-integer");
    });

    it("tensor entries of the wrong form", () => {
      expectReason(() => decodeSafetensors(craft({ w: [1] })), "bad-entry", '"w" must be an object');
      expectReason(() => decodeSafetensors(craft({ w: { dtype: "F32", data_offsets: [0, 8] } }, twoFloats)), "bad-entry", "data_offsets, dtype");
      expectReason(() => decodeSafetensors(craft({ w: { ...W_ENTRY, extra: 1 } }, twoFloats)), "bad-entry", "extra");
      expectReason(() => decodeSafetensors(craft({ w: { ...W_ENTRY, dtype: 4 } }, twoFloats)), "bad-entry", "dtype must be a string");
      expectReason(() => decodeSafetensors(craft({ w: { ...W_ENTRY, dtype: "BF16" } }, twoFloats)), "unsupported-dtype", '"BF16"', "F32");
      expectReason(() => decodeSafetensors(craft({ w: { ...W_ENTRY, dtype: "__proto__" } }, twoFloats)), "unsupported-dtype");
    });

    it("shapes that are malformed or larger than the data", () => {
      expectReason(() => decodeSafetensors(craft({ w: { ...W_ENTRY, shape: 2 } }, twoFloats)), "bad-shape", "must be an array");
      expectReason(() => decodeSafetensors(craft({ w: { ...W_ENTRY, shape: [-2] } }, twoFloats)), "bad-shape", "dimension 0", "-2");
      expectReason(() => decodeSafetensors(craft({ w: { ...W_ENTRY, shape: [1, "2"] } }, twoFloats)), "bad-shape", "dimension 1");
      expectReason(() => decodeSafetensors(craft({ w: { ...W_ENTRY, shape: [2 ** 53] } }, twoFloats)), "bad-shape");
      expectReason(() => decodeSafetensors(craft({ w: { ...W_ENTRY, shape: new Array(17).fill(1) } }, twoFloats)), "bad-shape", "rank 17");
      expectReason(() => decodeSafetensors(craft({ w: { ...W_ENTRY, shape: [2 ** 26, 2 ** 26, 2 ** 26] } }, twoFloats)), "too-many-elements", "2 the data can hold");
    });

    it("offsets that are malformed, mis-sized, past the data, overlapping, gapped or short of the end", () => {
      const entry = (data_offsets: unknown, shape = [2]) => ({ dtype: "F32", shape, data_offsets });
      expectReason(() => decodeSafetensors(craft({ w: entry([8, 0]) }, twoFloats)), "bad-offsets", "[8,0]");
      expectReason(() => decodeSafetensors(craft({ w: entry([0]) }, twoFloats)), "bad-offsets");
      expectReason(() => decodeSafetensors(craft({ w: entry([0, 4]) }, twoFloats)), "offsets-length", "spans 4 bytes", "needs 8");
      expectReason(() => decodeSafetensors(craft({ w: entry([4, 12]) }, twoFloats)), "bad-offsets", "past the 8-byte data region");
      const four = floatBytes([1, 2, 3, 4]);
      expectReason(() => decodeSafetensors(craft({ a: entry([0, 8]), b: entry([0, 8]) }, four)), "offsets-overlap", '"b" starts at byte 0', '"a" ends at byte 8');
      expectReason(() => decodeSafetensors(craft({ a: entry([0, 4], [1]), b: entry([8, 16]) }, four)), "offsets-gap", '"b" starts at byte 8');
      expectReason(() => decodeSafetensors(craft({ a: entry([4, 12]) }, four)), "offsets-gap", "the start of the data");
      expectReason(() => decodeSafetensors(craft({ a: entry([0, 8]) }, four)), "data-size", "8 trailing bytes");
    });

    it("metadata that is not an object of strings", () => {
      expectReason(() => decodeSafetensors(craft({ __metadata__: { a: 1 } })), "bad-metadata", '"a"', "a number");
      expectReason(() => decodeSafetensors(craft({ __metadata__: ["a"] })), "bad-metadata", "an array");
    });

    it("NaN and infinities, naming the tensor and index", () => {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const bytes = craft({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [2, 2], data_offsets: [4, 20] } }, floatBytes([0, 1, 2, 3, bad]));
        expectReason(() => decodeSafetensors(bytes), "non-finite", `tensor "b" has ${bad} at index 3 (position [1, 1])`);
      }
    });

    it("tensors that do not match the model spec, naming each missing, unexpected and mis-shaped one", () => {
      const bytes = encodeSafetensors(sampleTensors(), {});
      const expected = [
        { name: "dense1/kernel", shape: [4, 3] },
        { name: "dense1/bias", shape: [1, 3] },
        { name: "out/kernel", shape: [2, 3] },
        { name: "scalar", shape: [] },
        { name: "dense2/kernel", shape: [3, 3] },
      ];
      const error = expectReason(
        () => decodeSafetensors(bytes, { expected }),
        "spec-mismatch",
        'missing "dense2/kernel"',
        'unexpected "empty"',
        '"dense1/bias" has shape [3], expected [1, 3]',
        '"out/kernel" has shape [3, 2], expected [2, 3]',
      );
      expect(error.details).to.deep.include({ missing: ["dense2/kernel"], unexpected: ["empty"] });
      const exact = sampleTensors().map((t) => ({ name: t.name, shape: t.shape }));
      expect(decodeSafetensors(bytes, { expected: exact }).tensors).to.have.length(5);
    });

    it("accepts an unpadded header and spaces after the JSON, as other writers produce", () => {
      const unpadded = craft({ w: W_ENTRY }, twoFloats);
      expect([...decodeSafetensors(unpadded).tensors[0].data]).to.deep.equal([1, 2]);
      const padded = craft(JSON.stringify({ w: W_ENTRY }) + "   ", twoFloats);
      expect([...decodeSafetensors(padded).tensors[0].data]).to.deep.equal([1, 2]);
    });
  });

  describe("update files", () => {
    it("round-trip weights and typed metadata, keeping extra keys", () => {
      const bytes = encodeUpdate(sampleTensors(), sampleMetadata);
      const { tensors, metadata } = decodeUpdate(bytes, { expected: sampleTensors() });
      expect(metadata).to.deep.equal(sampleMetadata);
      expect(tensors.map((t) => t.name)).to.deep.equal(["dense1/bias", "dense1/kernel", "empty", "out/kernel", "scalar"]);
      expect(independentRead(bytes).header.__metadata__).to.deep.equal({
        anchorfl_format: "anchorfl/1",
        task_id: "7",
        round: "3",
        participant: sampleMetadata.participant,
        base_model_digest: sampleMetadata.baseModelDigest,
        num_samples: "600",
        kind: "delta",
        model_spec_digest: sampleMetadata.modelSpecDigest,
        train_loss: "0.25",
      });
    });

    it("normalise the address and digests they write, so one update has one encoding", () => {
      const loose = { ...sampleMetadata, participant: sampleMetadata.participant.toLowerCase(), baseModelDigest: sampleMetadata.baseModelDigest.toUpperCase().replace("0X", "0x") as `0x${string}` };
      expect(sha256Digest(encodeUpdate(sampleTensors(), loose))).to.equal(sha256Digest(encodeUpdate(sampleTensors(), sampleMetadata)));
    });

    it("are refused when a required metadata value is missing or spelled any other way", () => {
      const strings = independentRead(encodeUpdate(sampleTensors(), sampleMetadata)).header.__metadata__ as unknown as Record<string, string>;
      const withMetadata = (changes: Record<string, string | undefined>) =>
        encodeSafetensors(sampleTensors(), Object.fromEntries(Object.entries({ ...strings, ...changes }).filter(([, v]) => v !== undefined)) as Record<string, string>);
      const cases: [string, string | undefined][] = [
        ["anchorfl_format", "anchorfl/2"],
        ["task_id", undefined],
        ["task_id", (2n ** 256n).toString()],
        ["round", "03"],
        ["round", "-1"],
        ["round", " 3"],
        ["participant", sampleMetadata.participant.toLowerCase()],
        ["participant", "0x1234"],
        ["base_model_digest", sampleMetadata.baseModelDigest.toUpperCase()],
        ["base_model_digest", "0xabab"],
        ["num_samples", "1.5"],
        ["num_samples", (2 ** 53).toString()],
        ["kind", "Delta"],
        ["model_spec_digest", undefined],
      ];
      for (const [key, value] of cases) {
        expectReason(() => decodeUpdate(withMetadata({ [key]: value })), "bad-metadata", `"${key}"`);
      }
      expect(decodeUpdate(withMetadata({ round: (2n ** 256n - 1n).toString(), kind: "model" })).metadata.round).to.equal(2n ** 256n - 1n);
    });

    it("are refused at encoding when metadata is invalid or extra keys shadow required ones", () => {
      expectReason(() => encodeUpdate(sampleTensors(), { ...sampleMetadata, round: -1n }), "bad-metadata", '"round"');
      expectReason(() => encodeUpdate(sampleTensors(), { ...sampleMetadata, numSamples: 1.5 }), "bad-metadata", '"num_samples"');
      expectReason(() => encodeUpdate(sampleTensors(), { ...sampleMetadata, extra: { round: "4" } }), "bad-metadata", '"round"', "own field");
      expect(() => encodeUpdate(sampleTensors(), { ...sampleMetadata, participant: "0xnope" })).to.throw(SafetensorsError, "participant");
    });
  });
});
