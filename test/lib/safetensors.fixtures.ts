// Shared inputs for the safetensors tests: seeded tensors, valid metadata, a hand-built file
// writer (for headers the encoder would never produce) and a typed-error assertion.
import { expect } from "chai";
import { SafetensorsError, type SafetensorsReason } from "../../lib/codec/safetensors.js";
import type { UpdateMetadata } from "../../lib/codec/update-metadata.js";
import { Random } from "../../lib/random.js";
import type { Tensor } from "../../lib/tensors.js";

export function seededTensor(name: string, shape: number[], seed: number): Tensor {
  const random = new Random(seed, name);
  const data = new Float32Array(shape.reduce((n, d) => n * d, 1));
  for (let i = 0; i < data.length; i++) data[i] = random.normal();
  return { name, shape, data };
}

export function sampleTensors(seed = 1): Tensor[] {
  return [
    seededTensor("dense1/kernel", [4, 3], seed),
    seededTensor("dense1/bias", [3], seed),
    seededTensor("out/kernel", [3, 2], seed),
    seededTensor("scalar", [], seed),
    seededTensor("empty", [0, 5], seed),
  ];
}

export const sampleMetadata: UpdateMetadata = {
  taskId: 7n,
  round: 3n,
  participant: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  baseModelDigest: `0x${"ab".repeat(32)}`,
  numSamples: 600,
  kind: "delta",
  modelSpecDigest: `0x${"0c".repeat(32)}`,
  extra: { train_loss: "0.25" },
};

/** A file with the given header text (unpadded unless the text is) and data, length prefix computed or forced. */
export function craft(header: string | object, data: Uint8Array = new Uint8Array(0), headerLength?: bigint): Uint8Array {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

export function floatBytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

/** Asserts that `run` throws a SafetensorsError with this reason whose message contains each fragment. */
export function expectReason(run: () => unknown, reason: SafetensorsReason, ...fragments: string[]): SafetensorsError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught, "expected a SafetensorsError").to.be.instanceOf(SafetensorsError);
  const error = caught as SafetensorsError;
  expect(error.reason, error.message).to.equal(reason);
  for (const fragment of fragments) expect(error.message).to.contain(fragment);
  return error;
}
