// Gathering reputation's history: the finalized rounds of the window before a round (from the
// RoundFinalized events gather.ts read), and each one's report from the content store (its
// digest is the on-chain one, so the store cannot lie about it). The window bounds the cost: at
// most `window` reports per round, however long the task runs. A report that cannot be fetched
// stops the round: a score computed without it would differ from everyone else's.
import { getAddress } from "ethers";
import { fetchReport } from "../protocol/models.js";
import type { ContentStore } from "../store/index.js";
import type { FinalizedRound, PreviousRound } from "./gather.js";
import { ReputationError, windowStart, type HistoryRound } from "./reputation.js";

/**
 * The rounds of `finalized` (ascending, all before `at.round`) in [round - window, round - 1] with
 * their reports' verdicts, ascending; `previous`'s report, already fetched, is not fetched again.
 */
export async function readReputationHistory(
  store: ContentStore,
  finalized: readonly FinalizedRound[],
  at: { taskId: bigint; round: bigint; window: number },
  previous?: PreviousRound,
): Promise<HistoryRound[]> {
  const from = windowStart(at.round, at.window);
  const out: HistoryRound[] = [];
  for (const { round, reportDigest } of finalized.filter((f) => f.round >= from && f.round < at.round)) {
    let report;
    try {
      report = previous?.round === round ? previous.report : await fetchReport(store, reportDigest);
    } catch (cause) {
      throw new ReputationError(`reputation of task ${at.taskId} round ${at.round} needs the report of round ${round} (${reportDigest}), which could not be read: ${(cause as Error).message.split("\n")[0]}`, {
        cause,
        hint: `reports are pinned by the aggregators; fetch it from one of them into ${store.description}`,
      });
    }
    if (report.round !== round.toString() || report.taskId !== at.taskId.toString()) {
      throw new ReputationError(`the report finalized for task ${at.taskId} round ${round} names task ${report.taskId} round ${report.round}`);
    }
    out.push({ round, reportDigest, verdicts: report.participants.map((p) => ({ address: getAddress(p.address), verdict: p.verdict })) });
  }
  return out;
}
