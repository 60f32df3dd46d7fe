// Reputation: a score per participant derived from the task's own history of verdicts, the
// finalized rounds' reports, whose digests are on-chain. Anyone holding the chain and those
// reports recomputes it exactly (`verify` does), so it can weight aggregation and pick who is
// aggregated when a round is over-subscribed without trusting the aggregator.
//
// Score of participant i before round R, from the finalized rounds r in [R - window, R - 1]
// whose report lists i (as a committer), taken in ascending round order:
//
//   w_r   = 0.5 ^ ((R - 1 - r) / halfLife)          the last round weighs 1, halving every halfLife rounds
//   o_r   = 1 if i's verdict in r was "accepted", else 0 (outlier, invalid, unavailable, duplicate, no-reveal)
//   rep_i = (priorWeight * prior + sum w_r * o_r) / (priorWeight + sum w_r)
//
// A newcomer scores exactly `prior`; the prior never lets a score reach 0 or 1, and as a
// participant's rounds age their weights shrink and its score drifts back towards the prior.
// Failed rounds have no report and count for nothing. Sums are float64 in that fixed order; the
// score used and recorded is `figure(rep)` (6 significant digits), so a last-ulp difference in
// Math.pow between machines does not reach the report.
import { getAddress } from "ethers";
import { compareAddresses } from "../chain/coordinator.js";
import type { Hex32 } from "../digest.js";
import { AnchorFLError } from "../errors.js";
import type { ReputationOption } from "../protocol/options.js";
import type { ReportReputation, Verdict } from "../protocol/report.js";
import { figure } from "./policy.js";

export class ReputationError extends AnchorFLError {}

export const DEFAULT_HALF_LIFE = 4;
export const DEFAULT_WINDOW = 16;
export const DEFAULT_PRIOR = 0.5;
export const DEFAULT_PRIOR_WEIGHT = 1;

/** Rules whose aggregate weights each update by its sample count; only they can be weighted by reputation. */
export const SAMPLE_WEIGHTED_RULES: readonly string[] = ["fedavg", "norm-clipping"];

/** Reputation's weight resolution: a score becomes an integer number of millionths. */
const MICRO = 1_000_000;

/** One finalized round of the history window: its report's digest and verdicts. */
export interface HistoryRound {
  readonly round: bigint;
  readonly reportDigest: Hex32;
  readonly verdicts: readonly { readonly address: string; readonly verdict: Verdict }[];
}

export interface ReputationParams {
  readonly halfLife: number;
  readonly window: number;
  readonly prior: number;
  readonly priorWeight: number;
}

/** The option's parameters with defaults filled in. */
export function reputationParams(option: ReputationOption): ReputationParams {
  return {
    halfLife: option.halfLife ?? DEFAULT_HALF_LIFE,
    window: option.window ?? DEFAULT_WINDOW,
    prior: option.prior ?? DEFAULT_PRIOR,
    priorWeight: option.priorWeight ?? DEFAULT_PRIOR_WEIGHT,
  };
}

/** The first round of the history window of `round` (at least 1). */
export function windowStart(round: bigint, window: number): bigint {
  const start = round - BigInt(window);
  return start < 1n ? 1n : start;
}

/** The history rounds inside the window of `round`, ascending. */
function windowRounds(history: readonly HistoryRound[], round: bigint, window: number): HistoryRound[] {
  const from = windowStart(round, window);
  return history.filter((h) => h.round >= from && h.round < round).sort((a, b) => (a.round < b.round ? -1 : a.round > b.round ? 1 : 0));
}

/**
 * Scores of `addresses` before `round` (see the formula above), rounded with `figure`. History
 * rounds outside the window are ignored, so a caller handing in more cannot change the result.
 */
export function reputationScores(history: readonly HistoryRound[], round: bigint, addresses: readonly string[], p: ReputationParams): Map<string, number> {
  const rounds = windowRounds(history, round, p.window);
  const out = new Map<string, number>();
  for (const address of addresses) {
    const key = getAddress(address);
    let num = p.priorWeight * p.prior;
    let den = p.priorWeight;
    for (const h of rounds) {
      const entry = h.verdicts.find((v) => compareAddresses(v.address, key) === 0);
      if (!entry) continue;
      const w = 0.5 ** (Number(round - 1n - h.round) / p.halfLife);
      num += entry.verdict === "accepted" ? w : 0;
      den += w;
    }
    out.set(key, figure(num / den));
  }
  return out;
}

/**
 * Which accepted updates are aggregated when more than `k` are: the top `k` by score, ties by
 * address; returned in address order. The others stay accepted (and rewarded) but do not move the model.
 */
export function selectByReputation(accepted: readonly string[], scores: ReadonlyMap<string, number>, k: number | undefined): string[] {
  const ordered = [...accepted].sort(compareAddresses);
  if (k === undefined || ordered.length <= k) return ordered;
  const score = (a: string) => scores.get(getAddress(a)) ?? 0;
  return ordered
    .slice()
    .sort((a, b) => score(b) - score(a) || compareAddresses(a, b))
    .slice(0, k)
    .sort(compareAddresses);
}

/** A sample count times its reputation, as the integer the rules take: numSamples x round(rep x 10^6), at least numSamples x 1. */
export function reputationWeightedSamples(address: string, numSamples: number, reputation: number): number {
  const weighted = numSamples * Math.max(1, Math.round(reputation * MICRO));
  if (!Number.isSafeInteger(weighted)) {
    throw new ReputationError(`${address} claims ${numSamples} samples; weighted by reputation that exceeds what the rules can weigh exactly`, {
      hint: "bound the claimed samples with the task's telemetry option (maxSamples), or turn reputation weighting off",
      details: { address, numSamples, reputation },
    });
  }
  return weighted;
}

/** What the round does with reputation: who is aggregated, with what sample weight, and the report's record of it. */
export interface ReputationPlan {
  /** Accepted participants whose updates are aggregated, in address order. */
  readonly aggregated: readonly string[];
  /** The sample count the rule sees for an aggregated participant. */
  readonly samples: (address: string, numSamples: number) => number;
  readonly section: ReportReputation;
}

/**
 * The round's reputation plan (pure). `committers` are every committer of `round` (address
 * order), `accepted` those the policy accepted; `history` the finalized rounds of the window.
 */
export function planReputation(
  option: ReputationOption,
  history: readonly HistoryRound[],
  round: bigint,
  committers: readonly string[],
  accepted: readonly string[],
  ruleName: string,
): ReputationPlan {
  const params = reputationParams(option);
  const scores = reputationScores(history, round, committers, params);
  const aggregated = selectByReputation(accepted, scores, option.select);
  const weighted = option.weighting === true && SAMPLE_WEIGHTED_RULES.includes(ruleName);
  const from = windowStart(round, params.window);
  const used = windowRounds(history, round, params.window);
  const isAggregated = new Set(aggregated.map((a) => getAddress(a)));
  return {
    aggregated,
    samples: (address, numSamples) => (weighted ? reputationWeightedSamples(address, numSamples, scores.get(getAddress(address))!) : numSamples),
    section: {
      params: { ...params },
      window: { from: from.toString(), to: (round - 1n).toString() },
      history: used.map((h) => ({ round: h.round.toString(), report: h.reportDigest.toLowerCase() as Hex32 })),
      weighted,
      ...(option.select !== undefined ? { select: option.select } : {}),
      scores: [...committers]
        .sort(compareAddresses)
        .map((a) => getAddress(a))
        .map((address) => ({ address, reputation: scores.get(address)!, aggregated: isAggregated.has(address) })),
    },
  };
}

/** The round's plan when the task's spec has the reputation option, else undefined; the history is required then. */
export function roundReputation(
  option: ReputationOption | undefined,
  history: readonly HistoryRound[] | undefined,
  round: bigint,
  committers: readonly string[],
  accepted: readonly string[],
  ruleName: string,
): ReputationPlan | undefined {
  if (!option) return undefined;
  if (!history) {
    throw new ReputationError(`the task's reputation option is set, but round ${round} was given no history to score participants with`, {
      hint: "gather the round with gatherRound, which reads the history window from the chain",
    });
  }
  return planReputation(option, history, round, committers, accepted, ruleName);
}
