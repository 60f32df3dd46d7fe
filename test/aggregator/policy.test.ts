// The default verdict policy against real training: 8 honest clients train the MLP for one
// epoch on real MNIST shards (IID and Dirichlet 0.5) next to gross attackers built with
// client/attacks (sign flip, scaling, Gaussian noise, zero free rider, malformed file, withheld
// reveal). No honest client may be slashed; every attacker must be. Then the policy's pure
// corner cases: too few updates, copies of earlier rounds and within the round, parameters.
import { expect } from "chai";
import { getAddress } from "ethers";
import { corruptFile, type Behaviour } from "../../client/attacks/behaviours.js";
import { trainAs } from "../../client/attacks/train-as.js";
import { subset } from "../../client/data/dataset.js";
import { loadMnist } from "../../client/data/mnist.js";
import { partition, type PartitionSpec } from "../../client/data/partition.js";
import { initBackend } from "../../client/model/backend.js";
import { genesisWeights } from "../../client/model/build.js";
import { mlpSpec, modelSpecDigest } from "../../client/model/spec.js";
import { encodeUpdate } from "../../lib/codec/update-file.js";
import { localAccount } from "../../lib/config.js";
import { sha256Digest, type Hex32 } from "../../lib/digest.js";
import { DEFAULT_POLICY, PolicyParameterError, judge, policyParams, type Candidate } from "../../lib/aggregator/policy.js";
import { DEFAULT_RULE, DEFAULT_RULE_PARAMS, aggregateRound, type Fetched, type RevealFact, type RoundInputs } from "../../lib/aggregator/round.js";
import { ZERO_ROOT } from "../../lib/store/index.js";
import type { Tensor } from "../../lib/tensors.js";

const spec = mlpSpec({ seed: 0 });
const specDigest = modelSpecDigest(spec);
const COORDINATOR = getAddress("0x00000000000000000000000000000000000c0ffe");
const address = (i: number) => localAccount(i).address;

const ATTACKERS: readonly { name: string; behaviour: Behaviour; verdict: string }[] = [
  { name: "sign flip", behaviour: { kind: "sign-flip" }, verdict: "outlier" },
  { name: "scaling x10", behaviour: { kind: "scale", lambda: 10 }, verdict: "outlier" },
  { name: "Gaussian noise 0.05", behaviour: { kind: "gaussian", sigma: 0.05, mode: "replace" }, verdict: "outlier" },
  { name: "zero free rider", behaviour: { kind: "free-ride", mode: "zero" }, verdict: "outlier" },
  { name: "NaN file", behaviour: { kind: "malformed", corruption: "nan" }, verdict: "invalid" },
  { name: "withheld reveal", behaviour: { kind: "withhold" }, verdict: "no-reveal" },
];
const HONEST = 8;

describe("aggregator policy: real training, honest clients kept, gross attackers slashed", function () {
  this.timeout(120_000);
  let base: Tensor[];
  let baseDigest: Hex32;
  let pool: Awaited<ReturnType<typeof loadMnist>>["train"];

  before(async () => {
    await initBackend("wasm", { log: () => {} });
    base = await genesisWeights(spec);
    baseDigest = sha256Digest(new Uint8Array([1, 2, 3]));
    pool = subset((await loadMnist()).train, Array.from({ length: 2800 }, (_, i) => i));
  });

  async function scenario(split: PartitionSpec): Promise<RoundInputs> {
    const clients = HONEST + ATTACKERS.length;
    const parts = partition(pool.labels, clients, split, 7);
    const behaviours: Behaviour[] = [...Array.from({ length: HONEST }, () => ({ kind: "honest" }) as const), ...ATTACKERS.map((a) => a.behaviour)];
    const reveals: RevealFact[] = [];
    const files = new Map<string, Fetched>();
    for (let i = 0; i < clients; i++) {
      const b = behaviours[i];
      const out = await trainAs(
        b,
        { spec, globalWeights: base, data: subset(pool, parts[i]), epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: i },
        { seed: i },
      );
      if (b.kind === "withhold") continue;
      const bytes = corruptFile(
        b,
        encodeUpdate(out.update, { taskId: 1n, round: 1n, participant: address(i), baseModelDigest: baseDigest, numSamples: out.numSamples, kind: "delta", modelSpecDigest: specDigest, extra: {} }),
      );
      const digest = sha256Digest(bytes);
      files.set(digest, { bytes });
      reveals.push({ participant: address(i), updateDigest: digest, numSamples: BigInt(out.numSamples), contentRoot: ZERO_ROOT, blockNumber: 10 + i });
    }
    return {
      chainId: 31337n,
      coordinator: COORDINATOR,
      taskId: 1n,
      round: 1n,
      spec,
      specDigest,
      baseModel: { digest: baseDigest, tensors: base },
      budget: 1_000_000n,
      committers: Array.from({ length: clients }, (_, i) => address(i)),
      reveals,
      files,
      earlier: [],
      rule: { name: DEFAULT_RULE, params: DEFAULT_RULE_PARAMS },
      policy: DEFAULT_POLICY,
      softwareVersion: "test",
    };
  }

  for (const [label, split] of [
    ["IID", { kind: "iid" }],
    ["Dirichlet(0.5)", { kind: "dirichlet", alpha: 0.5, minPerClient: 20 }],
  ] as const) {
    it(`${label}: slashes none of ${HONEST} honest clients and every gross attacker`, async () => {
      const out = await aggregateRound(await scenario(split));
      const verdicts = out.report.participants;
      const byAddress = new Map(verdicts.map((p) => [p.address, p]));
      const honest = Array.from({ length: HONEST }, (_, i) => byAddress.get(address(i))!);
      const lines = honest.map((p) => `${p.verdict} ${JSON.stringify(p.evidence)}`);
      for (const p of honest) expect(p.verdict, `honest ${p.address}: ${p.reason}\n${lines.join("\n")}`).to.equal("accepted");
      ATTACKERS.forEach((a, k) => {
        const p = byAddress.get(address(HONEST + k))!;
        expect(p.verdict, `${a.name}: ${p.reason}`).to.equal(a.verdict);
        expect(p.reason).to.be.a("string").and.not.equal("");
      });
      expect(out.result.slashes.map((s) => s.participant)).to.deep.equal(ATTACKERS.map((_, k) => address(HONEST + k)).sort((x, y) => (x.toLowerCase() < y.toLowerCase() ? -1 : 1)));
      // The margins, so a reader sees how conservative the thresholds are.
      const ratios = honest.map((p) => Number(p.evidence!.normRatio));
      const cosines = honest.map((p) => Number(p.evidence!.cosine));
      expect(Math.max(...ratios)).to.be.lessThan(DEFAULT_POLICY.normFactor);
      expect(Math.min(...cosines)).to.be.greaterThan(DEFAULT_POLICY.minCosine);
      console.log(`      ${label}: honest norm ratio ${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)}, cosine to median ${Math.min(...cosines).toFixed(3)}..${Math.max(...cosines).toFixed(3)}`);
      // Rewards go to the honest clients only, in proportion to their samples.
      expect(out.report.rewards.allocations.map((a) => a.account).sort()).to.deep.equal(honest.map((p) => p.address).sort());
    });
  }

  it("accepts without outlier tests when fewer updates than minReference arrive, but never a zero update", () => {
    const v = (x: number) => Float32Array.from({ length: 4 }, () => x);
    const valid = (vector: Float32Array, revealBlock = 1) => ({ status: "valid", vector, revealBlock }) as const;
    const judgements = judge(
      [
        { address: address(1), submission: valid(v(1)) },
        { address: address(2), submission: valid(v(-100)) },
        { address: address(3), submission: valid(v(0)) },
      ],
      [],
      { ...DEFAULT_POLICY, minReference: 4 },
    );
    const verdicts = Object.fromEntries(judgements.map((j) => [j.address, j.verdict]));
    expect(verdicts[address(1)]).to.equal("accepted");
    expect(verdicts[address(2)]).to.equal("accepted");
    expect(verdicts[address(3)]).to.equal("outlier");
    expect(judgements.find((j) => j.address === address(1))!.reason).to.match(/fewer than the 4 needed/);
  });

  it("marks copies: of an earlier round's update (naming its digest), and within the round all but the earliest reveal", () => {
    const rng = (seed: number) => Float32Array.from({ length: 64 }, (_, k) => Math.sin(seed * 1000 + k));
    const a = rng(1);
    const nearA = a.map((x, k) => (k === 0 ? x * (1 + 1e-7) : x));
    const candidates: Candidate[] = [
      { address: address(1), submission: { status: "valid", vector: rng(2), revealBlock: 5 } },
      { address: address(2), submission: { status: "valid", vector: rng(2), revealBlock: 3 } },
      { address: address(3), submission: { status: "valid", vector: nearA, revealBlock: 1 } },
      { address: address(4), submission: { status: "valid", vector: rng(3), revealBlock: 1 } },
      { address: address(5), submission: { status: "valid", vector: rng(4), revealBlock: 1 } },
    ];
    const judgements = judge(candidates, [{ round: 4n, participant: address(9), digest: "0xabc", baseModelDigest: "0x01", vector: a }], DEFAULT_POLICY, "0x02");
    const of = (i: number) => judgements.find((j) => j.address === address(i))!;
    expect(of(3).verdict).to.equal("duplicate");
    expect(of(3).evidence.copiedDigest).to.equal("0xabc");
    expect(of(3).reason).to.include("round 4");
    expect(of(2).verdict).to.equal("accepted", "the earlier reveal of the pair is the original");
    expect(of(1).verdict).to.equal("duplicate");
    expect(of(1).evidence.copiedParticipant).to.equal(address(2));
  });

  it("resubmitting one's own earlier update is stale only once the model has moved (a failed round leaves it unchanged)", () => {
    const v = Float32Array.from({ length: 64 }, (_, k) => Math.cos(k));
    const others = [5, 6, 7].map((seed) => ({ address: address(seed), submission: { status: "valid", vector: v.map((x, k) => x + 0.3 * Math.sin(seed * k)), revealBlock: 1 } as const }));
    const own = { address: address(1), submission: { status: "valid", vector: v, revealBlock: 1 } as const };
    const earlier = [{ round: 1n, participant: address(1), digest: "0xold", baseModelDigest: "0xaaa", vector: v }];
    const verdict = (base: string) => judge([own, ...others], earlier, DEFAULT_POLICY, base).find((j) => j.address === address(1))!.verdict;
    expect(verdict("0xaaa")).to.equal("accepted");
    expect(verdict("0xbbb")).to.equal("duplicate");
  });

  it("refuses unknown and out-of-range policy parameters by name", () => {
    expect(policyParams({ normFactor: "6" }).normFactor).to.equal(6);
    expect(() => policyParams({ nromFactor: 3 })).to.throw(PolicyParameterError, /unknown policy parameter nromFactor/);
    expect(() => policyParams({ minCosine: 2 })).to.throw(PolicyParameterError, /minCosine must be a number in \[-1, 1\]/);
    expect(() => policyParams({ lookback: 1.5 })).to.throw(PolicyParameterError, /lookback must be an integer/);
  });
});
