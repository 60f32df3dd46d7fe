// Swarm mode: the task's aggregator set is its participants and a majority of them must submit
// identical results, so no single aggregator exists and none can finalize a result alone. Every
// member runs the same stateless aggregator (aggregateOnce) after its own participation; the
// contract finalizes at quorum. What the contract leaves to anyone is settling dissent: after a
// round finalizes, a member calls penalizeDissent for each submission that differs from the
// final result, so the penalty shows in the round's audit trail instead of waiting for the
// dissenter's next move.
import { getAddress } from "ethers";
import { send, type AnchorCoordinator } from "../chain/coordinator.js";
import { allEvents } from "../chain/logs.js";
import { ContractRevertError } from "../chain/revert.js";
import { AnchorFLError } from "../errors.js";

export class SwarmError extends AnchorFLError {}

/** The smallest majority of `members`: two disjoint groups can never both reach it. */
export function swarmQuorum(members: number): number {
  return Math.floor(members / 2) + 1;
}

/** Checks a swarm's size against the contract's aggregator-set bound; returns its quorum. */
export async function swarmPlan(c: AnchorCoordinator, members: readonly string[]): Promise<{ aggregators: string[]; quorum: number }> {
  const aggregators = [...new Set(members.map((m) => getAddress(m)))];
  const max = Number(await c.MAX_AGGREGATORS());
  if (aggregators.length < 1 || aggregators.length > max) {
    throw new SwarmError(`a swarm needs 1 to ${max} distinct members (the coordinator's MAX_AGGREGATORS), got ${aggregators.length}`, {
      hint: `run with at most ${max} clients in swarm mode`,
    });
  }
  return { aggregators, quorum: swarmQuorum(aggregators.length) };
}

export interface Penalty {
  readonly aggregator: string;
  readonly amount: bigint;
}

/**
 * Applies the dissent penalty of every aggregator whose submission in `round` differs from the
 * finalized result and is not settled yet; returns the penalties applied (none before finalization).
 */
export async function penalizeDissenters(c: AnchorCoordinator, taskId: bigint, round: bigint, fromBlock: number): Promise<Penalty[]> {
  const finalized = await allEvents(c, c.filters.RoundFinalized(taskId, round), { fromBlock });
  if (finalized.length === 0) return [];
  const finalHash = c.interface.parseLog(finalized[0])!.args.resultHash as string;
  const submissions = (await allEvents(c, c.filters.ResultSubmitted(taskId, round), { fromBlock })).map((l) => c.interface.parseLog(l)!.args);
  const out: Penalty[] = [];
  for (const s of submissions.filter((x) => x.resultHash !== finalHash)) {
    const aggregator = getAddress(s.aggregator as string);
    const info = await c.aggregatorInfo(taskId, aggregator);
    // Settled already (by the dissenter's own next submission, an unbonding or another member).
    if (info.lastRound !== round || info.settled) continue;
    let receipt;
    try {
      receipt = await send(`penalize dissent of ${aggregator}`, () => c.penalizeDissent(taskId, aggregator));
    } catch (error) {
      // Another member settled it between our check and our transaction: nothing left to do.
      if (error instanceof ContractRevertError && (await c.aggregatorInfo(taskId, aggregator)).settled) continue;
      throw error;
    }
    for (const log of receipt.logs) {
      const parsed = c.interface.parseLog(log);
      if (parsed?.name === "AggregatorPenalized") out.push({ aggregator, amount: parsed.args.amount as bigint });
    }
  }
  return out;
}
