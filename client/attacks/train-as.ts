// One client's round under a Byzantine behaviour, end to end on the ML side: poison the data,
// train (unless free riding), craft the submitted update. Kept apart from behaviours.ts so
// that parsing and crafting stay free of TensorFlow.js.
import type { Tensor } from "../../lib/tensors.js";
import { modelShapes } from "../model/spec.js";
import { trainLocal, type TrainOptions, type TrainResult } from "../train/train.js";
import { craftUpdate, poisonData, type Behaviour, type CraftContext } from "./behaviours.js";
import { zeroUpdate } from "./updates.js";

/** Free riders submit without training; every other behaviour trains (label flip on poisoned data). */
export function trains(b: Behaviour): boolean {
  return b.kind !== "free-ride";
}

export interface BehaviourResult {
  /** The update to encode and submit (pass its file through corruptFile before pinning). */
  readonly update: Tensor[];
  /** The sample count to reveal: what was trained on, or what a free rider claims (its shard's size). */
  readonly numSamples: number;
  /** The local training run behind it; undefined for free riders, which skip training. */
  readonly training?: TrainResult;
}

/**
 * One client's round under a behaviour: poison the data, train (unless free riding), then
 * craft the submitted update from the trained delta and what the colluders know.
 */
export async function trainAs(b: Behaviour, options: TrainOptions, ctx: Omit<CraftContext, "ownDelta">): Promise<BehaviourResult> {
  if (!trains(b)) {
    const numSamples = options.indices?.length ?? options.data.n;
    return { update: craftUpdate(b, { ...ctx, ownDelta: zeroUpdate(modelShapes(options.spec)) }), numSamples };
  }
  const training = await trainLocal({ ...options, data: poisonData(b, options.data) });
  return { update: craftUpdate(b, { ...ctx, ownDelta: training.delta }), numSamples: training.numSamples, training };
}
