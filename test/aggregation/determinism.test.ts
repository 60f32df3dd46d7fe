// Determinism: the same updates give the same aggregate bytes whatever order they arrive in,
// and in another process (what `verify` relies on).
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { aggregate, rules, type Update } from "../../lib/aggregation/index.js";
import { fixtureParams, fixtureUpdates, ruleDigests, seededRandom, serverUpdateFor, sha256 } from "./fixtures.js";

function shuffled(updates: readonly Update[], seed: number): Update[] {
  const random = seededRandom(seed);
  const out = [...updates];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe("aggregation determinism", () => {
  it("permuted inputs give bit-identical aggregates and identical evidence, for every rule", () => {
    const updates = fixtureUpdates();
    const serverUpdate = serverUpdateFor(updates[0].vector.length);
    const orders = [updates, [...updates].reverse(), shuffled(updates, 1), shuffled(updates, 2)];
    for (const name of Object.keys(rules)) {
      const [first, ...rest] = orders.map((order) => aggregate(name, order, fixtureParams[name], { serverUpdate }));
      for (const other of rest) {
        expect(sha256(other.aggregate), name).to.equal(sha256(first.aggregate));
        expect(JSON.stringify(other.participants), name).to.equal(JSON.stringify(first.participants));
        expect(other.selected, name).to.deep.equal(first.selected);
      }
    }
  });

  it("the fixture actually separates the rules (so the digest comparison can fail)", () => {
    const digests = Object.values(ruleDigests());
    expect(new Set(digests).size).to.equal(digests.length);
  });

  it("another process computes the same bytes", async function () {
    this.timeout(60_000);
    const script = path.join(import.meta.dirname, "fixtures.ts");
    const { stdout } = await promisify(execFile)("npx", ["tsx", script], { cwd: path.join(import.meta.dirname, "..", "..") });
    expect(JSON.parse(stdout)).to.deep.equal(ruleDigests());
  });
});
