// FLTrust's server update: the aggregator trains the round's base model on its root data set with
// the participants' local training (client/train), and the result is pinned and named in the
// report (state.ts), because a training backend's arithmetic is not reproducible bit for bit.
//
// The root set must be re-creatable for `verify`'s approximate check, so it is named in the
// report: `mnist-root:<seed>:<size>` = <size> digits drawn with <seed> from the held-out test
// split of the bundled MNIST digits (client/data/mnist.ts), which no participant trains on.
// A real deployment would keep its root set private (it is what the trust rests on); then only
// whoever holds it can run the approximate check, while the exact re-run from the pinned server
// update stays open to everyone.
import type { Dataset } from "../../client/data/dataset.js";
import type { ModelSpec } from "../../client/model/spec.js";
import type { Hex32 } from "../digest.js";
import { AnchorFLError } from "../errors.js";
import { Random } from "../random.js";
import { flatten, type Tensor } from "../tensors.js";
import type { RootTraining, ServerUpdateSource } from "../protocol/report.js";
import { encodeServerUpdate } from "./state.js";

export class RootDataError extends AnchorFLError {}

const ROOT_DATA = /^mnist-root:(0|[1-9][0-9]{0,8}):([1-9][0-9]{0,4})$/;

/** Default root set: 100 held-out digits, seed 0 (FLTrust's paper uses 100 examples). */
export const DEFAULT_ROOT_DATA = "mnist-root:0:100";
/** Default server training: one epoch of plain SGD, as a participant would (seed = the root set's). */
export const DEFAULT_ROOT_TRAINING: Omit<RootTraining, "seed"> = { epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd" };

/**
 * Default tolerance of the approximate check: the re-trained server update must be within this
 * relative L2 distance of the pinned one (and so have cosine >= 1 - tolerance^2 / 2). Identical
 * backends give 0; wasm vs cpu measured 4e-7 (MLP, mnist-root:0:100, one epoch), while another
 * root set or base model gives distances of order 1: the margin is wide on both sides.
 */
export const DEFAULT_SERVER_UPDATE_TOLERANCE = 0.01;

export function parseRootData(name: string): { seed: number; size: number } {
  const m = ROOT_DATA.exec(name);
  if (!m) throw new RootDataError(`root data must be mnist-root:<seed>:<size> (size 1..99999), found ${JSON.stringify(name)}`);
  return { seed: Number(m[1]), size: Number(m[2]) };
}

/** The root set a name describes: a seeded sample of the held-out MNIST split, the same for everyone. */
export async function loadRootData(name: string): Promise<Dataset> {
  const { seed, size } = parseRootData(name);
  const [{ loadMnist }, { subset }] = await Promise.all([import("../../client/data/mnist.js"), import("../../client/data/dataset.js")]);
  const { test } = await loadMnist();
  if (size > test.n) throw new RootDataError(`root data ${name} asks for ${size} digits; the held-out split has ${test.n}`);
  return subset(test, new Random(seed, "fltrust-root").permutation(test.n).slice(0, size));
}

/** A root set with its training settings, defaults filled in (the seed defaults to the root set's). */
function rootTrainingPlan(rootData: string, training: Partial<RootTraining>): Omit<ServerUpdateSource, "backend"> {
  const { seed } = parseRootData(rootData);
  return { rootData, training: { ...DEFAULT_ROOT_TRAINING, seed, ...training } };
}

/** Trains `base` on the root set: the server update FLTrust measures every participant against. */
export async function trainServerUpdate(spec: ModelSpec, base: readonly Tensor[], source: Omit<ServerUpdateSource, "backend">): Promise<{ update: Tensor[]; backend: string }> {
  const { trainLocal } = await import("../../client/train/train.js");
  const data = await loadRootData(source.rootData);
  const result = await trainLocal({ ...source.training, spec, globalWeights: base, data });
  return { update: result.delta, backend: result.backend };
}

export interface ApproximateCheck {
  readonly cosine: number;
  /** ||recomputed - pinned|| / ||pinned||. */
  readonly relativeDistance: number;
  readonly tolerance: number;
  readonly match: boolean;
}

/** Compares a re-trained server update with the pinned one (float64 sums). */
export function compareServerUpdates(pinned: Float32Array, recomputed: readonly Tensor[], tolerance = DEFAULT_SERVER_UPDATE_TOLERANCE): ApproximateCheck {
  const r = flatten(recomputed);
  let dot = 0;
  let pp = 0;
  let rr = 0;
  let dd = 0;
  for (let i = 0; i < pinned.length; i++) {
    dot += pinned[i] * r[i];
    pp += pinned[i] * pinned[i];
    rr += r[i] * r[i];
    dd += (pinned[i] - r[i]) ** 2;
  }
  const cosine = pp === 0 || rr === 0 ? 0 : dot / Math.sqrt(pp * rr);
  const relativeDistance = pp === 0 ? Infinity : Math.sqrt(dd / pp);
  return { cosine, relativeDistance, tolerance, match: r.length === pinned.length && relativeDistance <= tolerance };
}

/** Trains the round's server update and encodes it as the file the report will name. */
export async function serverUpdateFile(
  round: { readonly spec: ModelSpec; readonly baseModel: { readonly digest: Hex32; readonly tensors: readonly Tensor[] }; readonly taskId: bigint; readonly round: bigint; readonly specDigest: Hex32 },
  fltrust: { readonly rootData: string; readonly training: Partial<RootTraining> },
): Promise<{ bytes: Uint8Array; source: ServerUpdateSource }> {
  const plan = rootTrainingPlan(fltrust.rootData, fltrust.training);
  const { update, backend } = await trainServerUpdate(round.spec, round.baseModel.tensors, plan);
  const source = { ...plan, backend };
  const binding = { taskId: round.taskId, round: round.round, modelSpecDigest: round.specDigest, baseModelDigest: round.baseModel.digest };
  return { bytes: encodeServerUpdate(update, source, binding), source };
}
