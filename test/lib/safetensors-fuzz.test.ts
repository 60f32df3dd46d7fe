// Hostile-input fuzzing of the decoder: whatever the bytes, the only possible outcomes are a
// valid decoded file or a SafetensorsError, quickly and without large allocations.
import { expect } from "chai";
import { decodeSafetensors, encodeSafetensors, MAX_HEADER_BYTES, SafetensorsError, type SafetensorsReason } from "../../lib/codec/safetensors.js";
import { decodeUpdate, encodeUpdate } from "../../lib/codec/update-file.js";
import { Random } from "../../lib/random.js";
import { elementCount, type TensorShape } from "../../lib/tensors.js";
import { craft, sampleMetadata, sampleTensors } from "./safetensors.fixtures.js";

type Outcome = "ok" | SafetensorsReason;

const spec: TensorShape[] = sampleTensors().map((t) => ({ name: t.name, shape: t.shape }));
const valid = encodeUpdate(sampleTensors(), sampleMetadata);

let peakArrayBuffers = 0;

/** Decodes; returns "ok" (after checking the result is coherent) or the typed error's reason; rethrows anything else. */
function outcome(bytes: Uint8Array, withSpec = true): Outcome {
  try {
    const { tensors } = withSpec ? decodeUpdate(bytes, { expected: spec }) : decodeSafetensors(bytes);
    for (const t of tensors) {
      expect(t.data.length).to.equal(elementCount(t.shape));
      expect(t.data.every(Number.isFinite)).to.equal(true);
    }
    return "ok";
  } catch (error) {
    if (error instanceof SafetensorsError) return error.reason;
    throw new Error(`decoder threw ${(error as Error)?.name}: ${(error as Error)?.message} for ${Buffer.from(bytes).toString("hex").slice(0, 400)}`);
  } finally {
    peakArrayBuffers = Math.max(peakArrayBuffers, process.memoryUsage().arrayBuffers);
  }
}

function tally(outcomes: Outcome[]): Map<Outcome, number> {
  const counts = new Map<Outcome, number>();
  for (const o of outcomes) counts.set(o, (counts.get(o) ?? 0) + 1);
  return counts;
}

function withHeaderLength(bytes: Uint8Array, n: bigint): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setBigUint64(0, n, true);
  return copy;
}

describe("safetensors decoder under hostile input", function () {
  this.timeout(60_000);
  const baseline = process.memoryUsage().arrayBuffers;

  it("rejects the file truncated at every length", () => {
    const counts = tally(Array.from({ length: valid.length }, (_, n) => outcome(valid.subarray(0, n))));
    expect(counts.has("ok")).to.equal(false);
    for (const reason of ["too-short", "header-out-of-bounds", "bad-offsets"] as const) expect(counts.get(reason), reason).to.be.greaterThan(0);
    expect([...counts.values()].reduce((a, b) => a + b)).to.equal(valid.length);
  });

  it("survives random bit flips anywhere in the file", () => {
    const random = new Random(2024, "bit flips");
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 4000; i++) {
      const bytes = valid.slice();
      for (let k = 1 + random.int(3); k > 0; k--) bytes[random.int(bytes.length)] ^= 1 << random.int(8);
      outcomes.push(outcome(bytes, i % 2 === 0));
    }
    const counts = tally(outcomes);
    // Flips in the float data usually still decode; flips in the header usually do not.
    expect(counts.get("ok") ?? 0).to.be.greaterThan(100);
    expect(counts.size).to.be.greaterThan(5);
  });

  it("rejects oversize header lengths and lengths pointing past the file", () => {
    const cases: [bigint, Outcome][] = [
      [2n ** 64n - 1n, "header-too-large"],
      [2n ** 53n, "header-too-large"],
      [2n ** 53n + 1n, "header-too-large"],
      [2n ** 32n, "header-too-large"],
      [2n ** 31n, "header-too-large"],
      [BigInt(MAX_HEADER_BYTES) + 1n, "header-too-large"],
      [BigInt(valid.length - 7), "header-out-of-bounds"],
      [BigInt(valid.length), "header-out-of-bounds"],
      [0n, "header-not-object"],
    ];
    for (const [n, reason] of cases) expect(outcome(withHeaderLength(valid, n)), String(n)).to.equal(reason);
  });

  it("rejects random garbage, with or without a plausible length prefix", () => {
    const random = new Random(7, "garbage");
    for (let i = 0; i < 2000; i++) {
      const bytes = new Uint8Array(random.int(300));
      for (let k = 0; k < bytes.length; k++) bytes[k] = random.int(256);
      if (bytes.length >= 8 && i % 2 === 0) new DataView(bytes.buffer).setBigUint64(0, BigInt(random.int(bytes.length - 7)), true);
      expect(outcome(bytes)).to.not.equal("ok");
    }
  });

  it("survives header edits: numbers replaced by extreme values, characters deleted, inserted or repeated", () => {
    const headerLength = Number(new DataView(valid.buffer).getBigUint64(0, true));
    const header = new TextDecoder().decode(valid.subarray(8, 8 + headerLength));
    const data = valid.subarray(8 + headerLength);
    const extremes = ["0", "1", "-1", "4", "2147483648", "4294967296", "9007199254740992", "18446744073709551616", "1e3", "1" + "0".repeat(500), '"4"', "null", "[]", "{}"];
    const random = new Random(11, "header edits");
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 3000; i++) {
      let text = header;
      const edit = random.int(4);
      if (edit === 0) {
        const numbers = [...text.matchAll(/\d+/g)];
        const hit = numbers[random.int(numbers.length)];
        text = text.slice(0, hit.index) + extremes[random.int(extremes.length)] + text.slice(hit.index + hit[0].length);
      } else {
        const at = random.int(text.length);
        const span = 1 + random.int(20);
        if (edit === 1) text = text.slice(0, at) + text.slice(at + span);
        else if (edit === 2) text = text.slice(0, at) + String.fromCharCode(random.int(128)) + text.slice(at);
        else text = text.slice(0, at) + text.slice(at, at + span) + text.slice(at);
      }
      outcomes.push(outcome(craft(text, data), i % 2 === 0));
    }
    const counts = tally(outcomes);
    expect(counts.size).to.be.greaterThan(8);
  });

  it("never allocated more than a few MiB for any of the inputs above", () => {
    // arrayBuffers is process-wide: in the full suite, buffers other tests left for the garbage
    // collector count too. A decoder that trusted one hostile length would ask for gigabytes.
    expect(peakArrayBuffers - baseline).to.be.lessThan(64 * 1024 * 1024);
  });

  it("rejects huge claimed shapes and offsets without trying to allocate them", () => {
    const huge = craft({ w: { dtype: "F32", shape: [2 ** 20, 2 ** 20], data_offsets: [0, 2 ** 42] } }, new Uint8Array(16));
    expect(outcome(huge, false)).to.equal("too-many-elements");
    const beyond = craft({ w: { dtype: "F32", shape: [0], data_offsets: [2 ** 40, 2 ** 40] } }, new Uint8Array(0));
    expect(outcome(beyond, false)).to.equal("bad-offsets");
    // And a valid file still decodes, so these outcomes are not the decoder refusing everything.
    expect(outcome(encodeSafetensors(sampleTensors(), {}), false)).to.equal("ok");
  });
});
