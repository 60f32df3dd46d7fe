// The typed errors of the aggregation rules. Each message names what was expected and what
// was found, so an aggregator's log (and a round's report) says exactly why a round refused.
import { AnchorFLError } from "../errors.js";

/** The updates themselves are unusable: none, duplicate or malformed ids, unequal lengths, non-finite values. */
export class AggregationInputError extends AnchorFLError {}

/** A rule's breakdown condition (e.g. Krum's n >= 2f + 3) does not hold for this n and f. */
export class BreakdownConditionError extends AnchorFLError {}

/** A rule or optimiser name is unknown, or one of its parameters is missing or out of range. */
export class RuleParameterError extends AnchorFLError {}

/** A server optimiser state does not fit the update (wrong length, missing tensor, bad step count). */
export class ServerStateError extends AnchorFLError {}
