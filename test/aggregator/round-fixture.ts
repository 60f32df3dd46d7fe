// A synthetic round for the determinism tests: a small MLP spec, a seeded base model, seeded
// honest updates plus a sign flip, a NaN file, a no-reveal and an unavailable file, built in an
// order chosen by `order` (the arrival order of reveals and files). Run as a script it prints
// the digests of the round's outputs, so another process can be compared with this one.
// Hardhat's mocha loads every .ts file under test/, so the printing runs only when this file is
// the process's entry point.
import { pathToFileURL } from "node:url";
import { getAddress } from "ethers";
import { modelShapes, mlpSpec, modelSpecDigest } from "../../client/model/spec.js";
import { DEFAULT_POLICY } from "../../lib/aggregator/policy.js";
import { DEFAULT_RULE, DEFAULT_RULE_PARAMS, aggregateRound, type Fetched, type RevealFact, type RoundInputs } from "../../lib/aggregator/round.js";
import { encodeUpdate } from "../../lib/codec/update-file.js";
import { sha256Digest } from "../../lib/digest.js";
import { Random } from "../../lib/random.js";
import { ZERO_ROOT } from "../../lib/store/index.js";
import { unflatten } from "../../lib/tensors.js";

export const spec = mlpSpec({ seed: 0, hidden: 8 });
const shapes = modelShapes(spec);
const d = shapes.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
export const COORDINATOR = getAddress("0x5fbdb2315678afecb367f032d93f642f64180aa3");
export const PARTICIPANTS = Array.from({ length: 9 }, (_, i) => getAddress(`0x${(i * 0x1111111 + 0xabc).toString(16).padStart(40, "0")}`));

function vector(seed: number, scale = 0.01): Float32Array {
  const rng = new Random(seed, "fixture");
  const shared = new Random(99, "fixture-direction");
  return Float32Array.from({ length: d }, () => scale * (shared.normal() + 0.5 * rng.normal()));
}

/** The round's base model file (the previous round's model). */
export const baseBytes = encodeUpdate(unflatten(vector(1000, 0.1), shapes), {
  taskId: 3n,
  round: 1n,
  participant: COORDINATOR,
  baseModelDigest: ZERO_ROOT,
  numSamples: 0,
  kind: "model",
  modelSpecDigest: modelSpecDigest(spec),
  extra: {},
});
const BASE_DIGEST = sha256Digest(baseBytes);

/** The round's inputs with reveals, committers and files in the order given (a permutation of 0..8). */
export function roundInputs(order: readonly number[] = PARTICIPANTS.map((_, i) => i)): RoundInputs {
  const reveals: RevealFact[] = [];
  const files = new Map<string, Fetched>();
  for (const i of order) {
    if (i === 8) continue; // committed, never revealed
    const v = i === 6 ? vector(i).map((x) => -x) : vector(i);
    let bytes = encodeUpdate(unflatten(v, shapes), {
      taskId: 3n,
      round: 2n,
      participant: PARTICIPANTS[i],
      baseModelDigest: BASE_DIGEST,
      numSamples: 100 + i,
      kind: "delta",
      modelSpecDigest: modelSpecDigest(spec),
      extra: { note: `client ${i}` },
    });
    if (i === 7) {
      bytes = bytes.slice();
      new DataView(bytes.buffer).setFloat32(bytes.length - 4, Number.NaN, true);
    }
    const digest = sha256Digest(bytes);
    files.set(digest, i === 5 ? { unavailable: `no provider for ${digest} within 2000 ms` } : { bytes });
    reveals.push({ participant: PARTICIPANTS[i], updateDigest: digest, numSamples: BigInt(100 + i), contentRoot: ZERO_ROOT, blockNumber: 40 + i });
  }
  return {
    chainId: 31337n,
    coordinator: COORDINATOR,
    taskId: 3n,
    round: 2n,
    spec,
    specDigest: modelSpecDigest(spec),
    baseModel: { digest: BASE_DIGEST, tensors: unflatten(vector(1000, 0.1), shapes) },
    budget: 10n ** 18n,
    committers: order.map((i) => PARTICIPANTS[i]),
    reveals,
    files,
    earlier: [],
    rule: { name: DEFAULT_RULE, params: DEFAULT_RULE_PARAMS },
    policy: DEFAULT_POLICY,
    softwareVersion: "0.1.0",
  };
}

/** Digests of everything the round produces. */
export async function roundDigests(order?: readonly number[]) {
  const out = await aggregateRound(roundInputs(order));
  return {
    model: sha256Digest(out.modelBytes),
    report: sha256Digest(out.reportBytes),
    result: JSON.stringify(out.result, (_, x) => (typeof x === "bigint" ? x.toString() : x)),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const order = process.argv[2] ? process.argv[2].split(",").map(Number) : undefined;
  console.log(JSON.stringify(await roundDigests(order)));
}
