import { expect } from "chai";
import {
  BehaviourError,
  corruptFile,
  craftUpdate,
  formatBehaviour,
  parseBehaviour,
  poisonData,
  withholdsReveal,
  type Behaviour,
} from "../../client/attacks/behaviours.js";
import { flipLabels } from "../../client/attacks/data.js";
import { corruptUpdateFile, CORRUPTIONS, MalformedFileError } from "../../client/attacks/files.js";
import {
  alieZ,
  AttackArgumentError,
  coordinateStats,
  innerProductManipulation,
  littleIsEnough,
  normalQuantile,
  signFlip,
  zeroUpdate,
} from "../../client/attacks/updates.js";
import { trainAs } from "../../client/attacks/train-as.js";
import { loadMnist } from "../../client/data/mnist.js";
import { initBackend } from "../../client/model/backend.js";
import { genesisWeights } from "../../client/model/build.js";
import { mlpSpec } from "../../client/model/spec.js";
import { evaluate, type TrainOptions } from "../../client/train/train.js";
import { encodeUpdate, decodeUpdate } from "../../lib/codec/update-file.js";
import { SafetensorsError } from "../../lib/codec/safetensors.js";
import { Random } from "../../lib/random.js";
import { flatten, unflatten, type Tensor } from "../../lib/tensors.js";
import { expectClose } from "../helpers/close.js";

const SHAPES = [
  { name: "dense1/bias", shape: [16] },
  { name: "dense1/kernel", shape: [8, 16] },
  { name: "dense2/kernel", shape: [16, 4] },
];

/** A stand-in for one client's trained delta: a shared direction plus client noise, as real deltas look. */
function update(seed: number, spread = 0.5): Tensor[] {
  const common = new Random(0, "direction");
  const own = new Random(seed, "client");
  return SHAPES.map(({ name, shape }) => ({
    name,
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => common.normal() + spread * own.normal()),
  }));
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
const cosine = (a: readonly Tensor[], b: readonly Tensor[]) => {
  const [x, y] = [flatten(a), flatten(b)];
  return dot(x, y) / Math.sqrt(dot(x, x) * dot(y, y));
};
const ctx = (own: Tensor[], extra: Record<string, unknown> = {}) => ({ ownDelta: own, seed: 1, ...extra });

describe("Byzantine behaviours", () => {
  const own = update(1);
  const honest = Array.from({ length: 20 }, (_, i) => update(100 + i));

  it("label flip turns every digit l into 9 - l on the data the client trains on", async () => {
    const { train } = await loadMnist();
    const flipped = poisonData(parseBehaviour("label-flip"), train);
    expect(flipped.labels.every((l, i) => l === 9 - train.labels[i] && l !== train.labels[i])).to.equal(true);
    expect(flipped.images).to.equal(train.images);
    expect(Array.from(flipLabels(Uint8Array.of(0, 1, 2), 3))).to.deep.equal([2, 1, 0]);
    expect(poisonData(parseBehaviour("sign-flip"), train)).to.equal(train);
  });

  it("sign flip has cosine -1 with the honest delta; scaling multiplies the norm by lambda", () => {
    expectClose(cosine(craftUpdate(parseBehaviour("sign-flip"), ctx(own)), own), -1, 1e-12);
    const scaled = craftUpdate(parseBehaviour("scale:-10"), ctx(own));
    expectClose(cosine(scaled, own), -1, 1e-12);
    expectClose(Math.hypot(...flatten(scaled)), 10 * Math.hypot(...flatten(own)), 1e-3);
    expect(signFlip(signFlip(own))).to.deep.equal(own);
  });

  it("Gaussian noise replaces (or is added to) the update with the requested sigma, seeded", () => {
    const replaced = flatten(craftUpdate(parseBehaviour("gaussian:2"), ctx(own)));
    const std = Math.sqrt(dot(replaced, replaced) / replaced.length);
    expectClose(std, 2, 0.25);
    expect(Math.abs(cosine(craftUpdate(parseBehaviour("gaussian:2"), ctx(own)), own))).to.be.below(0.15);
    const added = flatten(craftUpdate(parseBehaviour("gaussian:0.1:add"), ctx(own)));
    const base = flatten(own);
    const noise = added.map((v, i) => v - base[i]);
    expectClose(Math.sqrt(dot(noise, noise) / noise.length), 0.1, 0.015);
    expect(craftUpdate(parseBehaviour("gaussian:2"), ctx(own))).to.deep.equal(craftUpdate(parseBehaviour("gaussian:2"), ctx(own)));
  });

  it("ALIE: z from Baruch et al.'s formula, and mean - z·std stays inside the honest range per coordinate", () => {
    // n = 50, f = 12 (the paper's setting): s = 26 - 12 = 14, z = Φ⁻¹(36/50) ≈ 0.583
    expectClose(alieZ(50, 12), 0.5828, 1e-3);
    expectClose(alieZ(20, 4), normalQuantile(13 / 20), 1e-12);
    expectClose(normalQuantile(0.975), 1.959964, 1e-6);
    expectClose(normalQuantile(0.001), -3.090232, 1e-6);
    expect(() => alieZ(10, 6)).to.throw(AttackArgumentError, "majority");

    const attack = flatten(craftUpdate(parseBehaviour("alie"), ctx(own, { honestUpdates: honest, participants: 24, byzantine: 4 })));
    const z = alieZ(24, 4);
    const { mean, std } = coordinateStats(honest);
    const columns = honest.map((u) => flatten(u));
    attack.forEach((v, j) => {
      const values = columns.map((c) => c[j]);
      expect(v).to.be.within(Math.min(...values), Math.max(...values));
      expectClose(v, mean[j] - z * std[j], 1e-5);
    });
    // it points almost along the honest mean (that is why it evades distance-based defences)
    expect(cosine(littleIsEnough(honest, z), unflatten(Float32Array.from(mean), SHAPES))).to.be.above(0.9);
    expect(() => craftUpdate(parseBehaviour("alie"), ctx(own))).to.throw(BehaviourError, "needs the round's participant and Byzantine counts");
    expect(() => craftUpdate(parseBehaviour("alie:1"), ctx(own))).to.throw(BehaviourError, "needs the round's honest updates");
  });

  it("inner-product manipulation: -epsilon times the honest mean, negative inner product with it", () => {
    const attack = flatten(innerProductManipulation(honest, 0.5));
    const { mean } = coordinateStats(honest);
    expect(dot(attack, mean)).to.be.below(0);
    attack.forEach((v, j) => expectClose(v, -0.5 * mean[j], 1e-6));
    expect(craftUpdate(parseBehaviour("ipm:0.5"), ctx(own, { honestUpdates: honest }))).to.deep.equal(innerProductManipulation(honest, 0.5));
  });

  it("free riding submits zeros, its own stale delta, or a copy of another participant's update", () => {
    const zero = craftUpdate(parseBehaviour("free-ride:zero"), ctx(own));
    expect(zero).to.deep.equal(zeroUpdate(SHAPES));
    expect(flatten(zero).every((v) => v === 0)).to.equal(true);
    const previousOwn = update(7);
    const stale = craftUpdate(parseBehaviour("free-ride:stale"), ctx(own, { previousOwn }));
    expect(stale).to.deep.equal(previousOwn);
    stale[0].data[0] = 42; // a copy, not an alias
    expect(previousOwn[0].data[0]).not.to.equal(42);
    const previousOther = update(8);
    expect(craftUpdate(parseBehaviour("free-ride:copy"), ctx(own, { previousOther }))).to.deep.equal(previousOther);
    expect(() => craftUpdate(parseBehaviour("free-ride:stale"), ctx(own))).to.throw(AttackArgumentError, "previous round, found none");
  });

  it("commit-then-withhold is a flag for the submission layer; honest-looking behaviours submit the trained delta", () => {
    expect(withholdsReveal(parseBehaviour("withhold"))).to.equal(true);
    expect(withholdsReveal(parseBehaviour("honest"))).to.equal(false);
    for (const text of ["honest", "label-flip", "withhold", "malformed:nan"]) expect(craftUpdate(parseBehaviour(text), ctx(own))).to.deep.equal(own);
  });

  it("malformed files are refused by the project's strict decoder, each for its own reason", () => {
    const metadata = {
      taskId: 1n, round: 2n, participant: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", baseModelDigest: `0x${"11".repeat(32)}`,
      numSamples: 500, kind: "delta", modelSpecDigest: `0x${"22".repeat(32)}`, extra: {},
    } as const;
    const bytes = encodeUpdate(own, metadata);
    expect(decodeUpdate(bytes, { expected: SHAPES }).tensors).to.deep.equal(own);
    const reasons: Record<string, string> = {};
    for (const corruption of CORRUPTIONS) {
      const bad = corruptFile(parseBehaviour(`malformed:${corruption}`), bytes);
      expect(Buffer.from(bad).equals(Buffer.from(bytes))).to.equal(false);
      try {
        decodeUpdate(bad, { expected: SHAPES });
        expect.fail(`${corruption} was accepted`);
      } catch (e) {
        expect(e, corruption).to.be.instanceOf(SafetensorsError);
        reasons[corruption] = (e as SafetensorsError).reason;
      }
    }
    expect(reasons).to.deep.equal({ nan: "non-finite", truncate: "bad-offsets", "wrong-shape": "spec-mismatch", "bad-header": "header-out-of-bounds" });
    // without the model's shapes, the reshaped file is still a valid safetensors file
    expect(decodeUpdate(corruptUpdateFile(bytes, "wrong-shape")).tensors.find((t) => t.name === "dense1/kernel")!.shape).to.deep.equal([16, 8]);
    expect(corruptFile(parseBehaviour("honest"), bytes)).to.equal(bytes);
    expect(() => corruptUpdateFile(Uint8Array.of(1, 2), "nan")).to.throw(MalformedFileError, "only 2 bytes");
  });

  it("parses and formats every CLI form, refusing unknown ones with the list of forms", () => {
    const forms = ["honest", "label-flip", "sign-flip", "scale:10", "gaussian:0.5", "gaussian:0.5:add", "alie", "alie:1.5", "ipm:0.1", "free-ride:zero", "free-ride:stale", "free-ride:copy", "withhold", ...CORRUPTIONS.map((c) => `malformed:${c}`)];
    for (const f of forms) expect(formatBehaviour(parseBehaviour(f))).to.equal(f);
    expect(parseBehaviour("scale:3")).to.deep.equal({ kind: "scale", lambda: 3 } satisfies Behaviour);
    for (const bad of ["boost", "scale", "scale:x", "honest:1", "gaussian:-1", "ipm:0", "free-ride:later", "malformed:zip", "alie:1:2:3"]) {
      expect(() => parseBehaviour(bad), bad).to.throw(BehaviourError);
    }
    expect(() => parseBehaviour("boost")).to.throw(BehaviourError, 'found "boost"');
  });

  describe("a client's round under a behaviour (real training)", () => {
    let options: TrainOptions;
    let test: Awaited<ReturnType<typeof loadMnist>>["test"];
    before(async () => {
      await initBackend("wasm", { log: () => {} });
      const split = await loadMnist();
      test = split.test;
      const spec = mlpSpec();
      options = { spec, globalWeights: await genesisWeights(spec), data: split.train, indices: Array.from({ length: 400 }, (_, i) => i), epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: 3 };
    });
    const accuracyOf = async (update: Tensor[]) =>
      (await evaluate(options.spec, options.globalWeights.map((w, i) => ({ ...w, data: w.data.map((v, j) => v + update[i].data[j]) })), test)).accuracy;

    it("label flip trains on 9 - l: the honest model learns digits, the flipped one learns the wrong ones", async () => {
      const honestRun = await trainAs(parseBehaviour("honest"), options, { seed: 1 });
      const flipped = await trainAs(parseBehaviour("label-flip"), options, { seed: 1 });
      expect(await accuracyOf(honestRun.update)).to.be.above(0.6);
      expect(await accuracyOf(flipped.update)).to.be.below(0.1);
      expect(flipped.numSamples).to.equal(400);
      const signFlipped = await trainAs(parseBehaviour("sign-flip"), options, { seed: 1 });
      expectClose(cosine(signFlipped.update, honestRun.update), -1, 1e-9);
    });

    it("free riders skip training but claim their shard's size", async () => {
      const free = await trainAs(parseBehaviour("free-ride:zero"), options, { seed: 1 });
      expect(free.training).to.equal(undefined);
      expect(free.numSamples).to.equal(400);
      expect(flatten(free.update).every((v) => v === 0)).to.equal(true);
      expect(free.update.map((t) => t.name)).to.deep.equal(options.globalWeights.map((t) => t.name));
    });
  });
});
