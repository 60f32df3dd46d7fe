// Assembles a rule's result: the per-participant evidence every rule reports (norm, distance
// and cosine to the aggregate, computed on the updates as submitted) next to the rule's own
// score, selection and weights.
import type { Prepared } from "./input.js";
import { dotAndSquaredDistance, sumOfSquares } from "./kernels.js";
import type { AggregationResult, ParamValue, ParticipantEvidence } from "./types.js";

export interface RuleOutcome {
  readonly aggregate: Float32Array;
  /** Rule-specific suspicion per row, canonical order, higher = more suspicious; omit to use the distance to the aggregate. */
  readonly scores?: ArrayLike<number>;
  /** Which rows contributed; omit when all did. */
  readonly selected?: readonly boolean[];
  /** Share of the aggregate per row, for weighted-mean rules. */
  readonly weights?: ArrayLike<number>;
  /** Clip factor per row, when the rows were clipped first. */
  readonly clipFactors?: ArrayLike<number>;
  readonly details?: Record<string, ParamValue>;
}

export function buildResult(rule: string, params: Record<string, ParamValue>, input: Prepared, outcome: RuleOutcome): AggregationResult {
  const aggregateNorm = Math.sqrt(sumOfSquares(outcome.aggregate));
  const participants: ParticipantEvidence[] = input.ids.map((id, i) => {
    const { dot, squaredDistance } = dotAndSquaredDistance(input.rows[i], outcome.aggregate);
    const distance = Math.sqrt(squaredDistance);
    const normProduct = input.norms[i] * aggregateNorm;
    return {
      id,
      numSamples: input.numSamples[i],
      score: outcome.scores ? outcome.scores[i] : distance,
      selected: outcome.selected ? outcome.selected[i] : true,
      ...(outcome.weights ? { weight: outcome.weights[i] } : {}),
      norm: input.norms[i],
      distance,
      cosine: normProduct === 0 ? 0 : dot / normProduct,
      clipFactor: outcome.clipFactors ? outcome.clipFactors[i] : 1,
    };
  });
  return {
    rule,
    params,
    aggregate: outcome.aggregate,
    participants,
    selected: participants.filter((p) => p.selected).map((p) => p.id),
    details: { n: input.n, d: input.d, aggregateNorm, ...outcome.details },
  };
}
