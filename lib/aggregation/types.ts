// The data model shared by every aggregation rule: what goes in (one flat delta per
// participant), and what comes out (the aggregate plus per-participant evidence that a
// verdict policy and the round's report can use).

/** One participant's flat update (a delta, see lib/tensors.ts flatten/unflatten). */
export interface Update {
  /** Participant address, 0x-prefixed, lowercase; the canonical order is by this id. */
  readonly id: string;
  /** Number of local training samples (a positive integer); FedAvg-style rules weight by it. */
  readonly numSamples: number;
  readonly vector: Float32Array;
}

/** How to clip updates before a rule runs: to a fixed L2 bound, or to the median of the update norms. */
export type ClipOption = number | "median";

/**
 * What the rule learned about one participant. `score` is rule-specific (each rule documents
 * it) and always oriented so that higher = more suspicious; the rest is the same for every
 * rule and computed against the final aggregate.
 */
export interface ParticipantEvidence {
  readonly id: string;
  readonly numSamples: number;
  /** Rule-specific suspicion score, higher = more suspicious (see each rule). */
  readonly score: number;
  /** Whether this update contributed to the aggregate (false when a selection rule left it out or FLTrust gave it zero trust). */
  readonly selected: boolean;
  /** Share of the aggregate this update carries (weights sum to 1), for rules that form a weighted mean; absent for order-statistic rules. */
  readonly weight?: number;
  /** L2 norm of the update as submitted (before any clipping). */
  readonly norm: number;
  /** L2 distance from the update as submitted to the aggregate. */
  readonly distance: number;
  /** Cosine similarity between the update as submitted and the aggregate (0 if either is the zero vector). */
  readonly cosine: number;
  /** Factor the update was scaled by when clipped (1 = untouched). */
  readonly clipFactor: number;
}

export type ParamValue = number | string | boolean;

export interface AggregationResult {
  /** The registry name of the rule that produced this result. */
  readonly rule: string;
  /** The parameters the rule ran with, defaults filled in (for the round's report). */
  readonly params: Readonly<Record<string, ParamValue>>;
  readonly aggregate: Float32Array;
  /** One entry per update, in canonical order (sorted by id). */
  readonly participants: readonly ParticipantEvidence[];
  /** Ids of the updates that contributed, in canonical order. */
  readonly selected: readonly string[];
  /** Rule-specific figures (iterations, bounds, trim counts, ...). */
  readonly details: Readonly<Record<string, ParamValue>>;
}
