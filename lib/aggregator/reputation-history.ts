// Gathering reputation's history: the RoundFinalized events of the window before a round, and
// each one's report from the content store (its digest is the on-chain one, so the store cannot
// lie about it). The window bounds the cost: at most `window` reports per round, however long
// the task runs. A report that cannot be fetched stops the round: a score computed without it
// would differ from everyone else's.
import { getAddress } from "ethers";
import type { AnchorCoordinator } from "../chain/coordinator.js";
import { allEvents } from "../chain/logs.js";
import type { Hex32 } from "../digest.js";
import { fetchReport } from "../protocol/models.js";
import type { ContentStore } from "../store/index.js";
import { ReputationError, windowStart, type HistoryRound } from "./reputation.js";

/** The finalized rounds in [round - window, round - 1] with their reports' verdicts, ascending. */
export async function readReputationHistory(
  c: AnchorCoordinator,
  store: ContentStore,
  at: { taskId: bigint; round: bigint; fromBlock: number; window: number },
): Promise<HistoryRound[]> {
  const from = windowStart(at.round, at.window);
  const finalized = (await allEvents(c, c.filters.RoundFinalized(at.taskId), { fromBlock: at.fromBlock }))
    .map((log) => c.interface.parseLog(log)!.args)
    .filter((a) => (a.round as bigint) >= from && (a.round as bigint) < at.round)
    .sort((a, b) => ((a.round as bigint) < (b.round as bigint) ? -1 : 1));
  const out: HistoryRound[] = [];
  for (const f of finalized) {
    const round = f.round as bigint;
    const reportDigest = (f.reportDigest as string).toLowerCase() as Hex32;
    let report;
    try {
      report = await fetchReport(store, reportDigest);
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
