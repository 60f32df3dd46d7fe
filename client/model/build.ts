// Turns a model spec into a live tfjs model and moves weights in and out of it as the
// project's Tensor form (lib/tensors.ts), named "<layer>/<weight>" as in the spec.
import * as tf from "@tensorflow/tfjs";
import { AnchorFLError } from "../../lib/errors.js";
import { canonicalOrder, elementCount, type Tensor } from "../../lib/tensors.js";
import { ensureBackend } from "./backend.js";
import { checkModelSpec, modelShapes, ModelSpecError, type ModelSpec } from "./spec.js";

export class WeightsMismatchError extends AnchorFLError {}

/** Weight name as the spec gives it: layer names are explicit, so tfjs's uniquifying suffixes never appear. */
const weightName = (w: tf.LayerVariable): string => w.originalName;

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Builds the spec's model; initial weights come from the spec's seeded initializers. */
export async function buildModel(spec: ModelSpec): Promise<tf.LayersModel> {
  checkModelSpec(spec);
  await ensureBackend();
  let model: tf.LayersModel;
  try {
    model = await tf.models.modelFromJSON({ modelTopology: spec.topology as unknown as tf.io.ModelJSON["modelTopology"] });
  } catch (cause) {
    throw new ModelSpecError(`tfjs could not build spec ${spec.name}: ${(cause as Error).message}`, { cause });
  }
  // The pure shape inference is what files are checked against; make sure tfjs agrees.
  const expected = modelShapes(spec);
  const built = canonicalOrder(model.trainableWeights.map((w) => ({ name: weightName(w), shape: w.shape as number[] })));
  const agree = built.length === expected.length && built.every((b, i) => b.name === expected[i].name && sameShape(b.shape, expected[i].shape));
  if (!agree) {
    model.dispose();
    throw new WeightsMismatchError(`tfjs built weights ${JSON.stringify(built)} for spec ${spec.name}, expected ${JSON.stringify(expected)}`);
  }
  return model;
}

/** The model's trainable weights as Tensors in canonical order (copies). */
export function getWeights(model: tf.LayersModel): Tensor[] {
  // dataSync may hand back the backend's own storage: copy it.
  return canonicalOrder(model.trainableWeights.map((w) => ({ name: weightName(w), shape: [...w.shape] as number[], data: Float32Array.from(w.read().dataSync() as Float32Array) })));
}

/** Throws WeightsMismatchError unless `weights` has exactly the names and shapes of `expected`. */
export function checkWeightsMatch(weights: readonly Tensor[], expected: readonly { name: string; shape: readonly number[] }[]): void {
  const byName = new Map(weights.map((t) => [t.name, t]));
  if (byName.size !== weights.length) throw new WeightsMismatchError(`expected distinct tensor names, found duplicates among ${weights.map((t) => t.name).join(", ")}`);
  for (const e of expected) {
    const t = byName.get(e.name);
    if (!t) throw new WeightsMismatchError(`expected a tensor named "${e.name}", found none`, { details: { missing: e.name } });
    if (!sameShape(t.shape, e.shape) || t.data.length !== elementCount(e.shape)) {
      throw new WeightsMismatchError(`tensor "${e.name}": expected shape [${e.shape.join(", ")}], found [${t.shape.join(", ")}] with ${t.data.length} values`);
    }
  }
  const extra = weights.filter((t) => !expected.some((e) => e.name === t.name));
  if (extra.length > 0) throw new WeightsMismatchError(`found tensors the model does not have: ${extra.map((t) => t.name).join(", ")}`);
}

/** Writes `weights` (matched by name, shapes checked) into the model's variables. */
export function setWeights(model: tf.LayersModel, weights: readonly Tensor[]): void {
  const vars = model.trainableWeights;
  checkWeightsMatch(weights, vars.map((v) => ({ name: weightName(v), shape: v.shape as number[] })));
  const byName = new Map(weights.map((t) => [t.name, t]));
  tf.tidy(() => {
    for (const v of vars) {
      const t = byName.get(weightName(v))!;
      v.write(tf.tensor(t.data, t.shape as number[], "float32"));
    }
  });
}

/** The genesis weights of a spec: what its seeded initializers produce. */
export async function genesisWeights(spec: ModelSpec): Promise<Tensor[]> {
  const model = await buildModel(spec);
  try {
    return getWeights(model);
  } finally {
    model.dispose();
  }
}
