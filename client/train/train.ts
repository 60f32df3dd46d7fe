// Local training: what a participant does with the round's global model and its own data.
// A custom loop (rather than model.fit) so that the data order comes from our seed, the
// FedProx proximal term can join the loss, and every tensor is accounted for. The result is
// the update the protocol ships: delta = weights_after - global weights.
import * as tf from "@tensorflow/tfjs";
import { AnchorFLError } from "../../lib/errors.js";
import { Random } from "../../lib/random.js";
import type { Tensor } from "../../lib/tensors.js";
import { checkDataset, subset, type Dataset } from "../data/dataset.js";
import { ensureBackend } from "../model/backend.js";
import { buildModel, checkWeightsMatch, getWeights, setWeights } from "../model/build.js";
import { modelShapes, type ModelSpec } from "../model/spec.js";
import { clipToNorm, privatize, seededNormalSource, type PrivacySpent } from "./privacy.js";
import type { ProgressListener } from "./progress.js";

export class TrainingArgumentError extends AnchorFLError {}

export type OptimizerName = "sgd" | "adam";

export interface TrainOptions {
  readonly spec: ModelSpec;
  readonly globalWeights: readonly Tensor[];
  readonly data: Dataset;
  /** Which examples of `data` this client holds (default: all). */
  readonly indices?: ArrayLike<number>;
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly optimizer: OptimizerName;
  /** FedProx: adds mu/2 · ||w - w_global||² to the loss. */
  readonly proxMu?: number;
  /** Clip the update's L2 norm to this. */
  readonly clipNorm?: number;
  /** Local DP: Gaussian noise with sigma = multiplier · clipNorm on the clipped update. */
  readonly dpNoiseMultiplier?: number;
  /** The delta of (epsilon, delta)-DP (default 1e-5). */
  readonly dpDelta?: number;
  /** Makes DP noise reproducible (tests and simulations only); by default it is drawn from the OS. */
  readonly dpNoiseSeed?: number;
  /** Fixes the data order. */
  readonly seed: number;
  readonly onProgress?: ProgressListener;
}

export interface TrainResult {
  readonly delta: Tensor[];
  readonly numSamples: number;
  /** Mean cross-entropy over the local data before and after training. */
  readonly lossBefore: number;
  readonly lossAfter: number;
  /** Whole call (model build, loss passes, training, DP) and the training epochs alone. */
  readonly wallMs: number;
  readonly trainMs: number;
  readonly backend: string;
  readonly privacy?: PrivacySpent;
}

function checkOptions(o: TrainOptions): void {
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0) throw new TrainingArgumentError(`${name} must be a positive integer, found ${v}`);
  };
  const positive = (name: string, v: number | undefined, allowZero = false) => {
    if (v !== undefined && !(Number.isFinite(v) && (v > 0 || (allowZero && v === 0)))) {
      throw new TrainingArgumentError(`${name} must be a ${allowZero ? "non-negative" : "positive"} finite number, found ${v}`);
    }
  };
  positiveInt("epochs", o.epochs);
  positiveInt("batchSize", o.batchSize);
  positive("learningRate", o.learningRate);
  positive("proxMu", o.proxMu, true);
  positive("clipNorm", o.clipNorm);
  positive("dpNoiseMultiplier", o.dpNoiseMultiplier);
  if (o.optimizer !== "sgd" && o.optimizer !== "adam") throw new TrainingArgumentError(`optimizer must be "sgd" or "adam", found "${o.optimizer}"`);
  if (o.dpNoiseMultiplier !== undefined && o.clipNorm === undefined) {
    throw new TrainingArgumentError("dpNoiseMultiplier needs clipNorm: Gaussian noise only bounds privacy loss on a clipped update");
  }
  if (!Number.isSafeInteger(o.seed)) throw new TrainingArgumentError(`seed must be a safe integer, found ${o.seed}`);
}

function checkDataFitsSpec(spec: ModelSpec, ds: Dataset): void {
  checkDataset(ds);
  const [h, w, c] = spec.inputShape;
  if (ds.height !== h || ds.width !== w || c !== 1 || ds.classes !== spec.classes) {
    throw new TrainingArgumentError(`model ${spec.name} expects ${h}×${w}×${c} images in ${spec.classes} classes, found ${ds.height}×${ds.width}×1 in ${ds.classes}`);
  }
  if (ds.n === 0) throw new TrainingArgumentError("no training examples: the client's index list is empty");
}

/** Inputs and one-hot targets for the examples at positions order[from..to) of `ds`. */
function batchTensors(ds: Dataset, order: ArrayLike<number> | null, from: number, to: number): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
  const pixels = ds.height * ds.width;
  const images = new Float32Array((to - from) * pixels);
  const labels = new Int32Array(to - from);
  for (let k = from; k < to; k++) {
    const i = order ? order[k] : k;
    images.set(ds.images.subarray(i * pixels, (i + 1) * pixels), (k - from) * pixels);
    labels[k - from] = ds.labels[i];
  }
  return tf.tidy(() => ({
    xs: tf.tensor4d(images, [to - from, ds.height, ds.width, 1]),
    ys: tf.oneHot(tf.tensor1d(labels, "int32"), ds.classes).toFloat() as tf.Tensor2D,
  }));
}

/** Mean categorical cross-entropy of softmax outputs (probabilities clipped away from 0). */
function crossEntropy(ys: tf.Tensor2D, probs: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(ys, tf.log(tf.clipByValue(probs, 1e-7, 1))), -1))) as tf.Scalar);
}

/** Mean loss and accuracy of the model over `ds`, batch by batch. */
function measure(model: tf.LayersModel, ds: Dataset, batchSize: number): { loss: number; accuracy: number } {
  let lossSum = 0;
  let correct = 0;
  for (let from = 0; from < ds.n; from += batchSize) {
    const to = Math.min(ds.n, from + batchSize);
    const { xs, ys } = batchTensors(ds, null, from, to);
    const [loss, hits] = tf.tidy(() => {
      const probs = model.predict(xs) as tf.Tensor2D;
      return [crossEntropy(ys, probs).mul(to - from), tf.sum(tf.cast(tf.equal(tf.argMax(probs, -1), tf.argMax(ys, -1)), "int32"))];
    });
    lossSum += loss.dataSync()[0];
    correct += hits.dataSync()[0];
    tf.dispose([xs, ys, loss, hits]);
  }
  return { loss: lossSum / ds.n, accuracy: correct / ds.n };
}

function subtract(after: readonly Tensor[], before: readonly Tensor[]): Tensor[] {
  const base = new Map(before.map((t) => [t.name, t.data]));
  return after.map((t) => {
    const b = base.get(t.name)!;
    return { name: t.name, shape: [...t.shape], data: t.data.map((v, i) => v - b[i]) };
  });
}

/** Trains the spec's model from `globalWeights` on the client's examples and returns the update. */
export async function trainLocal(options: TrainOptions): Promise<TrainResult> {
  checkOptions(options);
  const { spec, globalWeights, epochs, batchSize, proxMu = 0, seed, onProgress } = options;
  const local = options.indices ? subset(options.data, options.indices) : options.data;
  checkDataFitsSpec(spec, local);
  checkWeightsMatch(globalWeights, modelShapes(spec));
  const backend = (await ensureBackend()).name;
  const started = performance.now();

  const model = await buildModel(spec);
  const optimizer = options.optimizer === "adam" ? tf.train.adam(options.learningRate) : tf.train.sgd(options.learningRate);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const anchors = proxMu > 0 ? model.trainableWeights.map((w) => globalWeights.find((t) => t.name === w.originalName)!).map((t) => tf.tensor(t.data, [...t.shape])) : [];
  try {
    setWeights(model, globalWeights);
    const lossBefore = measure(model, local, 256).loss;
    const batches = Math.ceil(local.n / batchSize);
    const trainStarted = performance.now();
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const order = new Random(seed, "epoch", epoch).permutation(local.n);
      let epochLoss = 0;
      for (let b = 0; b < batches; b++) {
        const from = b * batchSize;
        const to = Math.min(local.n, from + batchSize);
        const { xs, ys } = batchTensors(local, order, from, to);
        const cost = optimizer.minimize(
          () => {
            const ce = crossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor);
            if (proxMu === 0) return ce;
            const drift = tf.addN(variables.map((v, i) => tf.sum(tf.squaredDifference(v, anchors[i]))));
            return tf.add(ce, tf.mul(proxMu / 2, drift)) as tf.Scalar;
          },
          true,
          variables,
        )!;
        const batchLoss = cost.dataSync()[0];
        tf.dispose([xs, ys, cost]);
        epochLoss += batchLoss * (to - from);
        onProgress?.({ epoch, epochs, batch: b + 1, batches, loss: batchLoss, phase: "batch" });
      }
      onProgress?.({ epoch, epochs, batch: batches, batches, loss: epochLoss / local.n, phase: "epoch" });
    }
    const trainMs = performance.now() - trainStarted;
    const lossAfter = measure(model, local, 256).loss;
    let delta = subtract(getWeights(model), globalWeights);
    let privacy: PrivacySpent | undefined;
    if (options.dpNoiseMultiplier !== undefined) {
      const normal = options.dpNoiseSeed === undefined ? undefined : seededNormalSource(options.dpNoiseSeed);
      ({ update: delta, privacy } = privatize(delta, { clipNorm: options.clipNorm!, noiseMultiplier: options.dpNoiseMultiplier, delta: options.dpDelta, normal }));
    } else if (options.clipNorm !== undefined) {
      delta = clipToNorm(delta, options.clipNorm);
    }
    return { delta, numSamples: local.n, lossBefore, lossAfter, wallMs: performance.now() - started, trainMs, backend, privacy };
  } finally {
    optimizer.dispose();
    tf.dispose(anchors);
    model.dispose();
  }
}

export interface Evaluation {
  readonly accuracy: number;
  readonly loss: number;
}

/** Accuracy and mean cross-entropy of `weights` on `testData`. */
export async function evaluate(spec: ModelSpec, weights: readonly Tensor[], testData: Dataset, { batchSize = 500 } = {}): Promise<Evaluation> {
  checkDataFitsSpec(spec, testData);
  const model = await buildModel(spec);
  try {
    setWeights(model, weights);
    return measure(model, testData, batchSize);
  } finally {
    model.dispose();
  }
}
