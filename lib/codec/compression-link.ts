// One simulated client's side of the wire: its update goes through the real codec (encodeUpdate
// under the task's compression, then the aggregator's strict decodeUpdate), with the client's
// error-feedback residual carried in memory from round to round, as the participant carries it
// on disk. The simulator uses one link per client so that accuracy and bytes are measured on
// exactly what a deployed aggregator would decode.
import { usesErrorFeedback, type CompressionOption } from "../protocol/options.js";
import type { Tensor, TensorShape } from "../tensors.js";
import type { Hex32 } from "../digest.js";
import { addResidual, residualAfter } from "./compression.js";
import { decodeUpdate, encodeUpdate } from "./update-file.js";

/** No store, so no base model file: a digest-shaped stand-in keeps the header (and size) realistic. */
const STAND_IN_BASE = `0x${"00".repeat(32)}` as Hex32;

export interface Sent {
  /** The dense delta the aggregator decodes. */
  readonly update: Tensor[];
  /** The encoded file's size. */
  readonly bytes: number;
}

export class CompressedLink {
  #residual?: Float32Array;

  constructor(
    readonly compression: CompressionOption | undefined,
    readonly shapes: readonly TensorShape[],
    readonly modelSpecDigest: Hex32,
  ) {}

  send(update: readonly Tensor[], meta: { readonly participant: string; readonly round: bigint; readonly numSamples: number }): Sent {
    const feedback = usesErrorFeedback(this.compression);
    const corrected = feedback ? addResidual(update, this.#residual) : [...update];
    const bytes = encodeUpdate(corrected, { ...meta, taskId: 1n, baseModelDigest: STAND_IN_BASE, kind: "delta", modelSpecDigest: this.modelSpecDigest, extra: {} }, this.compression);
    const sent = decodeUpdate(bytes, { expected: this.shapes, compression: this.compression ?? "none" }).tensors;
    if (feedback) this.#residual = residualAfter(corrected, sent);
    return { update: sent, bytes: bytes.length };
  }
}
