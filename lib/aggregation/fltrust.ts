// FLTrust (Cao et al., NDSS 2021): the aggregator computes its own update on a small root
// data set (the caller does this and passes it in; it must be pinned for `verify`, see
// DESIGN.md "Determinism"). Each update's trust is ReLU(cosine to the server update); each
// update is rescaled to the server update's norm; the aggregate is the trust-weighted mean.
// If no update earns any trust, the aggregate is the zero vector (the model stays put).
//
// Score: 1 - trust, in [0, 1]; 1 means the update points away from (or is orthogonal to,
// or is zero compared with) the server's. Higher = more suspicious.
// Breakdown: none by count; the guarantee rests on the root data set being clean.
import { withClip } from "./clipping.js";
import { AggregationInputError } from "./errors.js";
import { buildResult } from "./evidence.js";
import { prepare } from "./input.js";
import { dot, sumOfSquares, weightedMeanFloat32 } from "./kernels.js";
import type { AggregationResult, ClipOption, Update } from "./types.js";

export interface FLTrustOptions {
  /** The aggregator's own update on its root data set (same length as the updates). */
  readonly serverUpdate: Float32Array;
  readonly clip?: ClipOption;
}

export function flTrust(updates: readonly Update[], options: FLTrustOptions): AggregationResult {
  const input = prepare(updates);
  const server = options.serverUpdate;
  const serverNorm = checkServerUpdate(server, input.d);
  const { rows, clipFactors, details } = withClip(input, options.clip);
  const norms = rows.map((row, i) => (row === input.rows[i] ? input.norms[i] : Math.sqrt(sumOfSquares(row))));
  const trust = rows.map((row, i) => (norms[i] === 0 ? 0 : Math.max(0, dot(row, server) / (norms[i] * serverNorm))));
  const totalTrust = trust.reduce((a, b) => a + b, 0);
  // Each update contributes trust_i * (serverNorm / norm_i) * x_i; dividing by the total trust makes it a weighted mean.
  const coefficients = trust.map((t, i) => (t === 0 ? 0 : (t * serverNorm) / norms[i]));
  const aggregate = totalTrust === 0 ? new Float32Array(input.d) : weightedMeanFloat32(rows, coefficients, totalTrust, input.d);
  return buildResult("fltrust", { ...(options.clip !== undefined ? { clip: options.clip } : {}) }, input, {
    aggregate,
    scores: trust.map((t) => 1 - t),
    selected: trust.map((t) => t > 0),
    weights: trust.map((t) => (totalTrust === 0 ? 0 : t / totalTrust)),
    clipFactors,
    details: { serverNorm, totalTrust, noTrust: totalTrust === 0, ...details },
  });
}

function checkServerUpdate(server: Float32Array, d: number): number {
  if (!(server instanceof Float32Array) || server.length !== d) {
    throw new AggregationInputError(`fltrust: expected a server update Float32Array of ${d} values, found ${server instanceof Float32Array ? `${server.length} values` : String(server)}`, {
      details: { expected: d },
    });
  }
  const sq = sumOfSquares(server);
  if (!Number.isFinite(sq) || sq === 0) {
    throw new AggregationInputError(`fltrust: expected a finite, non-zero server update, found ${sq === 0 ? "the zero vector" : "non-finite values"}`, {
      hint: "the server update is the aggregator's own training step on its root data set",
    });
  }
  return Math.sqrt(sq);
}
