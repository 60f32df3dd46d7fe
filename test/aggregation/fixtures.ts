// Shared inputs for the aggregation tests: participant addresses, a seeded generator of
// honest-looking updates, and the digest of every rule's output on a fixed fixture. Run as a
// script (npx tsx test/aggregation/fixtures.ts) it prints those digests as JSON, which the
// determinism test compares with the ones computed in its own process.
import { createHash } from "node:crypto";
import path from "node:path";
import { aggregate, rules, type Update } from "../../lib/aggregation/index.js";

/** A lowercase 20-byte address whose canonical position follows i. */
export function address(i: number): string {
  return `0x${i.toString(16).padStart(40, "0")}`;
}

export function update(i: number, values: readonly number[] | Float32Array, numSamples = 1): Update {
  return { id: address(i), numSamples, vector: Float32Array.from(values) };
}

/** mulberry32: a tiny seeded generator, so fixtures are the same on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n updates of length d scattered around a common direction (like honest clients), ids 0..n-1. */
export function honestUpdates(n: number, d: number, seed: number, spread = 0.1): Update[] {
  const random = seededRandom(seed);
  const centre = Float32Array.from({ length: d }, () => random() - 0.5);
  return Array.from({ length: n }, (_, i) =>
    update(
      i,
      centre.map((c) => c + spread * (random() - 0.5)),
      10 + Math.floor(random() * 90),
    ),
  );
}

export function copyOf(updates: readonly Update[]): Update[] {
  return updates.map((u) => ({ ...u, vector: u.vector.slice() }));
}

/** A stand-in for the aggregator's root-data update: a seeded vector. */
export function serverUpdateFor(d: number): Float32Array {
  const random = seededRandom(99);
  return Float32Array.from({ length: d }, () => random() - 0.5);
}

/** Parameters that make every rule run on the fixture (n = 11). */
export const fixtureParams: Readonly<Record<string, Record<string, string | number>>> = {
  fedavg: {},
  median: { f: 5 },
  "trimmed-mean": { beta: 0.2 },
  krum: { f: 2 },
  "multi-krum": { f: 2, m: 5 },
  bulyan: { f: 2 },
  "geometric-median": { maxIterations: 50 },
  "norm-clipping": {},
  fltrust: { clip: "median" },
};

export function fixtureUpdates(): Update[] {
  const updates = honestUpdates(11, 2000, 7, 0.2);
  // Two attackers: one scaled up, one sign-flipped, so selections and trims have work to do.
  updates[3] = { ...updates[3], vector: updates[3].vector.map((x) => 50 * x) };
  updates[8] = { ...updates[8], vector: updates[8].vector.map((x) => -x) };
  return updates;
}

export function sha256(bytes: Float32Array): string {
  return createHash("sha256").update(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).digest("hex");
}

/** sha-256 of every rule's aggregate on the fixture. */
export function ruleDigests(updates: readonly Update[] = fixtureUpdates()): Record<string, string> {
  const serverUpdate = serverUpdateFor(updates[0].vector.length);
  return Object.fromEntries(Object.keys(rules).map((name) => [name, sha256(aggregate(name, updates, fixtureParams[name], { serverUpdate }).aggregate)]));
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  console.log(JSON.stringify(ruleDigests()));
}
