// The anomaly detector, on a small real MNIST round (10 honest clients trained one epoch on IID
// and Dirichlet(0.5) shards) with gross and subtle attackers, then its pure properties: the same
// scores bit for bit on every run, whatever order the updates arrive in; a projection drawn
// from task and round; no spread handled; and the policy's use of it (flag, and slash only when
// above slashThreshold with two views agreeing).
import { expect } from "chai";
import { getAddress } from "ethers";
import type { Behaviour } from "../../client/attacks/behaviours.js";
import { trainAs } from "../../client/attacks/train-as.js";
import { subset } from "../../client/data/dataset.js";
import { loadMnist } from "../../client/data/mnist.js";
import { partition, type PartitionSpec } from "../../client/data/partition.js";
import { initBackend } from "../../client/model/backend.js";
import { genesisWeights } from "../../client/model/build.js";
import { mlpSpec } from "../../client/model/spec.js";
import { coordinateMedian } from "../../lib/aggregation/index.js";
import { DEFAULT_ANOMALY, MIN_ANOMALY_UPDATES, anomalyScores, project, robustZ } from "../../lib/aggregator/anomaly.js";
import { DEFAULT_POLICY, judge, type Candidate, type Judgement } from "../../lib/aggregator/policy.js";
import { Random } from "../../lib/random.js";
import { flatten } from "../../lib/tensors.js";

const spec = mlpSpec({ seed: 0 });
const HONEST = 10;
const address = (i: number) => getAddress(`0x${(i * 0x9e3779b1 + 0x1234).toString(16).padStart(40, "0")}`);
const valid = (vector: Float32Array, revealBlock = 1) => ({ status: "valid", vector, revealBlock }) as const;
const candidatesOf = (vectors: readonly Float32Array[]): Candidate[] => vectors.map((v, i) => ({ address: address(i), submission: valid(v, i) }));
const detector = (extra: object = {}) => ({ options: { anomaly: { ...extra } }, taskId: 7n, round: 3n });
const byAddress = (js: readonly Judgement[]) => new Map(js.map((j) => [j.address, j]));

describe("anomaly detector: real round, determinism, permutation invariance, policy use", function () {
  this.timeout(120_000);
  let pool: Awaited<ReturnType<typeof loadMnist>>["train"];
  let base: Awaited<ReturnType<typeof genesisWeights>>;

  before(async () => {
    await initBackend("wasm", { log: () => {} });
    base = await genesisWeights(spec);
    pool = subset((await loadMnist()).train, Array.from({ length: 1800 }, (_, i) => i));
  });

  async function round(split: PartitionSpec, attackers: readonly Behaviour[]): Promise<Float32Array[]> {
    const parts = partition(pool.labels, HONEST + attackers.length, split, 11);
    const train = (i: number, b: Behaviour) =>
      trainAs(b, { spec, globalWeights: base, data: subset(pool, parts[i]), epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: i }, { seed: i });
    const out: Float32Array[] = [];
    for (let i = 0; i < HONEST; i++) out.push(flatten((await train(i, { kind: "honest" })).update));
    for (const [k, b] of attackers.entries()) out.push(flatten((await train(HONEST + k, b)).update));
    return out;
  }

  const ATTACKERS: readonly Behaviour[] = [{ kind: "sign-flip" }, { kind: "scale", lambda: 10 }, { kind: "gaussian", sigma: 0.01, mode: "replace" }];
  // On Dirichlet(0.5) shards honest updates point their own ways and differ in size, so here a
  // sign flip and small noise sit within the honest spread (as in bench/detection.ts): the
  // detector is expected to see the x10 scaling only there, and still no honest client.
  for (const [label, split, caught] of [
    ["IID", { kind: "iid" }, ["sign-flip", "scale", "gaussian"]],
    ["Dirichlet(0.5)", { kind: "dirichlet", alpha: 0.5, minPerClient: 20 }, ["scale"]],
  ] as const) {
    it(`${label}: flags ${caught.join(", ")} and none of ${HONEST} honest clients`, async () => {
      const vectors = await round(split, ATTACKERS);
      const judged = byAddress(judge(candidatesOf(vectors), [], DEFAULT_POLICY, "", detector()));
      const scores = vectors.map((_, i) => Number(judged.get(address(i))!.evidence.anomalyScore));
      const honest = scores.slice(0, HONEST);
      const lines = vectors.map((_, i) => `${i < HONEST ? "honest" : "attacker"} ${JSON.stringify(judged.get(address(i))!.evidence)}`).join("\n");
      for (let i = 0; i < HONEST; i++) expect(judged.get(address(i))!.evidence.anomalyFlagged, `honest ${i}\n${lines}`).to.equal(false);
      for (let k = 0; k < ATTACKERS.length; k++) {
        if (!(caught as readonly string[]).includes(ATTACKERS[k].kind)) continue;
        const j = judged.get(address(HONEST + k))!;
        expect(j.evidence.anomalyFlagged, `${ATTACKERS[k].kind}\n${lines}`).to.equal(true);
        expect(j.evidence.anomalyScore as number).to.be.greaterThan(DEFAULT_ANOMALY.threshold);
      }
      console.log(`      ${label}: honest scores ${Math.min(...honest).toFixed(2)}..${Math.max(...honest).toFixed(2)}, attackers ${scores.slice(HONEST).map((s) => s.toFixed(1)).join(", ")}`);
    });
  }

  describe("pure properties", () => {
    const d = 4000;
    const shared = new Random(5, "direction");
    const direction = Float32Array.from({ length: d }, () => shared.normal());
    const honestVector = (i: number) => {
      const rng = new Random(i, "honest");
      return Float32Array.from(direction, (x) => 0.01 * (x + 1.5 * rng.normal()));
    };
    const vectors = [...Array.from({ length: 9 }, (_, i) => honestVector(i)), honestVector(9).map((x) => -x)];
    const scoreOf = (vs: readonly Float32Array[], order: readonly number[], seed = ["7", "3"]) => {
      const inputs = order.map((i) => ({ address: address(i), vector: vs[i] }));
      return anomalyScores(inputs, coordinateMedian(vs as Float32Array[], d), DEFAULT_ANOMALY, seed);
    };

    it("gives the same scores bit for bit on two runs and for any arrival order", () => {
      const first = scoreOf(vectors, [...vectors.keys()]);
      const again = scoreOf(vectors, [...vectors.keys()]);
      const shuffled = scoreOf(vectors, new Random(1, "order").permutation(vectors.length));
      expect(first).to.have.length(vectors.length);
      for (const other of [again, shuffled]) {
        other.forEach((s, i) => {
          for (const key of ["score", "normZ", "cosineZ", "projectionZ"] as const) expect(Object.is(s[key], first[i][key]), `${key} of ${s.address}`).to.equal(true);
          expect(s.address).to.equal(first[i].address);
        });
      }
      // Canonical (address) order, whatever the input order.
      const sorted = [...first].map((s) => s.address.toLowerCase());
      expect(sorted).to.deep.equal([...sorted].sort());
      // And the policy's judgements, evidence included, do not depend on arrival order either.
      const candidates = candidatesOf(vectors);
      const forward = judge(candidates, [], DEFAULT_POLICY, "", detector());
      const backward = judge([...candidates].reverse(), [], DEFAULT_POLICY, "", detector());
      expect(backward).to.deep.equal(forward);
    });

    it("draws its projection from task and round: same seed same axes, another round other axes", () => {
      const a = project(vectors.slice(0, 2), 8, ["7", "3"]);
      const b = project(vectors.slice(0, 2), 8, ["7", "3"]);
      const c = project(vectors.slice(0, 2), 8, ["7", "4"]);
      expect(Array.from(a[0])).to.deep.equal(Array.from(b[0]));
      expect(Array.from(a[0])).to.not.deep.equal(Array.from(c[0]));
      // A projection of the direction only: scaling an update leaves it unchanged.
      const scaled = project([vectors[0].map((x) => 10 * x)], 8, ["7", "3"]);
      Array.from(scaled[0]).forEach((x, k) => expect(Math.abs(x - a[0][k])).to.be.lessThan(1e-6));
    });

    it("robust z-scores survive no spread and score too few updates not at all", () => {
      expect(robustZ([1, 1, 1, 1, 2])).to.deep.equal([0, 0, 0, 0, 1e6]);
      expect(robustZ([3, 3, 3])).to.deep.equal([0, 0, 0]);
      expect(scoreOf(vectors, [0, 1, 2, 3].slice(0, MIN_ANOMALY_UPDATES - 1))).to.deep.equal([]);
    });

    it("flags without slashing by default; slashes only above slashThreshold when two views agree", () => {
      // Norm 2x the crowd's: within the policy's 4x limit, and only the norm view sees it.
      const scaled = [...vectors.slice(0, 9), honestVector(9).map((x) => 2 * x)];
      // Random noise of a similar norm: cosine ~0 passes the policy's -0.2, but cosine and projection both see it.
      const rng = new Random(3, "noise");
      const noise = [...vectors.slice(0, 9), Float32Array.from({ length: d }, () => 0.02 * rng.normal())];
      for (const [name, vs, slashed] of [
        ["scaled x2", scaled, false],
        ["noise", noise, true],
      ] as const) {
        const flagOnly = judge(candidatesOf(vs), [], DEFAULT_POLICY, "", detector()).find((j) => j.address === address(9))!;
        expect(flagOnly.verdict, name).to.equal("accepted");
        expect(flagOnly.evidence.anomalyFlagged, name).to.equal(true);
        expect(flagOnly.reason, name).to.match(/flagged by the anomaly detector/);
        const strict = judge(candidatesOf(vs), [], DEFAULT_POLICY, "", detector({ slashThreshold: 5 })).find((j) => j.address === address(9))!;
        expect(strict.verdict, `${name}: ${strict.reason} ${JSON.stringify(strict.evidence)}`).to.equal(slashed ? "outlier" : "accepted");
        if (slashed) expect(strict.reason).to.match(/anomaly detector .* 3 views beyond 3/);
      }
      // Without the option the policy records no detector evidence at all.
      const plain = judge(candidatesOf(noise), [], DEFAULT_POLICY, "");
      expect(plain.every((j) => j.evidence.anomalyScore === undefined)).to.equal(true);
    });
  });
});
