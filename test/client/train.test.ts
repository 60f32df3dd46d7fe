import * as tf from "@tensorflow/tfjs";
import { expect } from "chai";
import { stripVTControlCharacters } from "node:util";
import type { Dataset } from "../../client/data/dataset.js";
import { loadMnist } from "../../client/data/mnist.js";
import { initBackend } from "../../client/model/backend.js";
import { genesisWeights, WeightsMismatchError } from "../../client/model/build.js";
import { cnnSpec, mlpSpec } from "../../client/model/spec.js";
import { clipToNorm, gaussianEpsilon, l2Norm, PrivacyArgumentError, secureNormalSource } from "../../client/train/privacy.js";
import { progressReporter, type TrainProgress } from "../../client/train/progress.js";
import { evaluate, trainLocal, TrainingArgumentError, type TrainOptions } from "../../client/train/train.js";
import { flatten, type Tensor } from "../../lib/tensors.js";
import { expectClose } from "../helpers/close.js";

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const apply = (weights: readonly Tensor[], delta: readonly Tensor[]): Tensor[] =>
  weights.map((w, i) => ({ ...w, data: w.data.map((v, j) => v + delta[i].data[j]) }));
const bytes = (ts: readonly Tensor[]) => Buffer.from(flatten(ts).buffer);

describe("local training", function () {
  let train: Dataset;
  let test: Dataset;
  let mlpGenesis: Tensor[];
  let base: TrainOptions;

  before(async () => {
    await initBackend("wasm", { log: () => {} });
    ({ train, test } = await loadMnist());
    mlpGenesis = await genesisWeights(mlpSpec());
    base = { spec: mlpSpec(), globalWeights: mlpGenesis, data: train, indices: range(500), epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: 1 };
  });

  it("one epoch on 500 real digits lifts the MLP's held-out accuracy from chance to above 0.6", async () => {
    const before = await evaluate(mlpSpec(), mlpGenesis, test);
    const r = await trainLocal(base);
    const after = await evaluate(mlpSpec(), apply(mlpGenesis, r.delta), test);
    expect(before.accuracy).to.be.below(0.2);
    expect(after.accuracy).to.be.above(0.6);
    expect(after.loss).to.be.below(before.loss);
    expect(r.lossAfter).to.be.below(r.lossBefore * 0.7);
    expect(r.numSamples).to.equal(500);
    expect(r.backend).to.equal("wasm");
    expect(r.delta.map((t) => t.name)).to.deep.equal(mlpGenesis.map((t) => t.name));
    expect(r.wallMs).to.be.above(0);
    expect(r.privacy).to.equal(undefined);
  });

  it("trains the CNN on wasm (through the registered filter gradient), bit-identically for a seed", async () => {
    const spec = cnnSpec();
    const genesis = await genesisWeights(spec);
    const r = await trainLocal({ ...base, spec, globalWeights: genesis, optimizer: "adam", learningRate: 0.01 });
    const after = await evaluate(spec, apply(genesis, r.delta), test);
    expect(r.backend).to.equal("wasm");
    expect(r.lossAfter).to.be.below(r.lossBefore * 0.5);
    expect(after.accuracy).to.be.above(0.5);
    // every layer learned, the first convolution included
    for (const t of r.delta.filter((t) => t.name.endsWith("kernel"))) expect(l2Norm([t]), t.name).to.be.above(0);
    const again = await trainLocal({ ...base, spec, globalWeights: genesis, optimizer: "adam", learningRate: 0.01 });
    expect(bytes(again.delta).equals(bytes(r.delta))).to.equal(true);
  });

  it("is bit-identical for the same seed, different for another seed, and leaks no tensors", async () => {
    const small = { ...base, indices: range(200, 1000), epochs: 2 };
    const tensors = tf.memory().numTensors;
    const a = await trainLocal(small);
    const b = await trainLocal(small);
    expect(tf.memory().numTensors).to.equal(tensors);
    await evaluate(mlpSpec(), mlpGenesis, test);
    await trainLocal({ ...small, optimizer: "adam", learningRate: 0.001, proxMu: 0.1 }); // optimizer slots and prox anchors
    expect(tf.memory().numTensors).to.equal(tensors);
    const c = await trainLocal({ ...small, seed: 2 });
    expect(bytes(a.delta).equals(bytes(b.delta))).to.equal(true);
    expect(bytes(a.delta).equals(bytes(c.delta))).to.equal(false);
  });

  it("FedProx's proximal term keeps the update closer to the global model", async () => {
    const few = { ...base, indices: range(300) };
    const plain = await trainLocal(few);
    const zero = await trainLocal({ ...few, proxMu: 0 });
    const prox = await trainLocal({ ...few, proxMu: 1 });
    expect(bytes(zero.delta).equals(bytes(plain.delta))).to.equal(true);
    expect(l2Norm(prox.delta)).to.be.below(0.8 * l2Norm(plain.delta));
  });

  it("clips the update norm, and with DP adds Gaussian noise of sigma = z·C and reports epsilon", async () => {
    const few = { ...base, indices: range(200) };
    const raw = await trainLocal(few);
    const clipNorm = l2Norm(raw.delta) / 4;
    const clipped = await trainLocal({ ...few, clipNorm });
    expectClose(l2Norm(clipped.delta), clipNorm, clipNorm * 1e-5);
    expect(bytes(clipped.delta).equals(bytes(clipToNorm(raw.delta, clipNorm)))).to.equal(true);

    const z = 0.01;
    const noisy = await trainLocal({ ...few, clipNorm, dpNoiseMultiplier: z, dpNoiseSeed: 5 });
    const clippedFlat = flatten(clipped.delta);
    const noise = flatten(noisy.delta).map((v, i) => v - clippedFlat[i]);
    const std = Math.sqrt(noise.reduce((s, v) => s + v * v, 0) / noise.length);
    expectClose(std, z * clipNorm, 0.02 * z * clipNorm);
    expect(noisy.privacy).to.deep.equal({ epsilon: Math.sqrt(2 * Math.log(1.25 / 1e-5)) / z, delta: 1e-5 });
    // without a noise seed the noise comes from the OS: two runs differ
    const one = await trainLocal({ ...few, clipNorm, dpNoiseMultiplier: 5, dpDelta: 1e-6 });
    const two = await trainLocal({ ...few, clipNorm, dpNoiseMultiplier: 5, dpDelta: 1e-6 });
    expect(bytes(one.delta).equals(bytes(two.delta))).to.equal(false);
    expectClose(one.privacy!.epsilon, 1.0597, 1e-4); // sqrt(2 ln 1.25e6) / 5
  });

  it("draws DP noise from a standard normal (OS randomness) and leaves updates inside the clip norm alone", () => {
    const normal = secureNormalSource();
    const draws = Array.from({ length: 50000 }, normal);
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    const variance = draws.reduce((a, b) => a + (b - mean) ** 2, 0) / draws.length;
    expectClose(mean, 0, 0.02);
    expectClose(variance, 1, 0.03);
    expectClose(draws.filter((d) => Math.abs(d) > 1.96).length / draws.length, 0.05, 0.005);
    const small: Tensor[] = [{ name: "w", shape: [2], data: Float32Array.of(0.3, 0.4) }];
    expect(clipToNorm(small, 1)).to.deep.equal(small);
    expect(Array.from(clipToNorm(small, 0.25)[0].data)).to.deep.equal([Math.fround(0.15), Math.fround(0.2)]);
    expect(() => clipToNorm(small, 0)).to.throw(PrivacyArgumentError, "clipNorm must be a positive finite number");
  });

  it("reports progress per batch and per epoch, and prints one line per epoch off a terminal", async () => {
    const events: TrainProgress[] = [];
    const lines: string[] = [];
    const reporter = progressReporter({ stream: { isTTY: false, write: (t: string) => lines.push(t) }, label: "client 3" });
    await trainLocal({ ...base, indices: range(100), epochs: 3, onProgress: (p) => (events.push(p), reporter(p)) });
    expect(events.filter((e) => e.phase === "batch")).to.have.length(3 * 4);
    expect(events.filter((e) => e.phase === "epoch").map((e) => e.epoch)).to.deep.equal([1, 2, 3]);
    expect(lines).to.have.length(3);
    expect(lines[2]).to.match(/^client 3: epoch 3\/3 loss \d+\.\d{4} \(4 batches\)\n$/);
  });

  it("draws a progress bar on a terminal and finishes it at 100%", async () => {
    let screen = "";
    const tty = { isTTY: true, columns: 100, write: (t: string) => ((screen += t), true) };
    await trainLocal({ ...base, indices: range(64), epochs: 2, onProgress: progressReporter({ stream: tty, label: "client 1" }) });
    const plain = stripVTControlCharacters(screen);
    expect(plain).to.include("client 1 [");
    expect(plain).to.match(/100% \| epoch 2\/2 \| loss \d+\.\d{4}/);
  });

  it("refuses bad options and mismatched inputs with typed errors", async () => {
    const reject = async (o: Partial<TrainOptions>, type: new (...a: never[]) => Error, text: string) => {
      try {
        await trainLocal({ ...base, ...o });
      } catch (e) {
        expect(e).to.be.instanceOf(type);
        expect((e as Error).message).to.include(text);
        return;
      }
      expect.fail(`expected ${type.name} "${text}"`);
    };
    await reject({ dpNoiseMultiplier: 1 }, TrainingArgumentError, "dpNoiseMultiplier needs clipNorm");
    await reject({ epochs: 0 }, TrainingArgumentError, "epochs must be a positive integer, found 0");
    await reject({ learningRate: Number.NaN }, TrainingArgumentError, "learningRate must be a positive finite number");
    await reject({ optimizer: "rmsprop" as "sgd" }, TrainingArgumentError, 'found "rmsprop"');
    await reject({ indices: [] }, TrainingArgumentError, "no training examples");
    await reject({ globalWeights: mlpGenesis.slice(1) }, WeightsMismatchError, 'expected a tensor named "dense1/bias"');
    await reject({ data: { ...train, height: 14, width: 56 } }, TrainingArgumentError, "expects 28×28×1 images");
    expect(() => gaussianEpsilon(1, 0)).to.throw(PrivacyArgumentError, "delta must be in (0, 1)");
  });
});
