// A task's history as the chain records it: its config, the stake and funding ledger, every round
// with its phases, commits, reveals, results, slashes and claims, and the account balances those
// events imply. Built from events only (plus the current round's phase, which the contract derives
// from the clock); each finalized round's report is fetched from the content store when it can be,
// and its absence is recorded, never hidden. `buildHistory` is pure; `AuditReader` does the I/O.
import type { Provider } from "ethers";
import { DemoToken__factory } from "../../types/ethers-contracts/index.js";
import { compareAddresses, phaseName, requireTask, type AnchorCoordinator, type Phase } from "../chain/coordinator.js";
import { allEvents } from "../chain/logs.js";
import type { Hex32 } from "../digest.js";
import { fetchReport } from "../protocol/models.js";
import { ReportFormatError, type AggregationReport } from "../protocol/report.js";
import { cidFromChain, StoreError, ZERO_ROOT, type ContentStore } from "../store/index.js";
import { AuditError, BlockClock, readTaskEvents, type EventOf, type EventPlace, type TaskConfigView, type TaskEvent } from "./events.js";

export const AUDIT_FORMAT = "anchorfl.audit.v1";

/** A model file by its on-chain digest; `cid` is null when its content root is unknown (its report is unavailable). */
export interface ModelRef {
  readonly digest: Hex32;
  readonly cid: string | null;
}

/** A finalized round's report as fetched: the report itself, or why it could not be used. */
export type ReportStatus =
  | { readonly status: "ok"; readonly cid: string; readonly report: AggregationReport }
  | { readonly status: "unavailable" | "invalid"; readonly cid: string; readonly error: string };

export interface RoundRecord {
  readonly round: bigint;
  readonly phase: Phase;
  readonly opened: EventOf<"RoundOpened">;
  readonly baseModel: ModelRef;
  /** Deadlines as they finally stood (phases that closed early moved the later ones). */
  readonly commitEnd: bigint;
  readonly revealEnd: bigint;
  readonly aggregationEnd: bigint;
  readonly closedEarly: readonly EventOf<"PhaseClosedEarly">[];
  readonly commits: readonly EventOf<"Committed">[];
  readonly reveals: readonly EventOf<"Revealed">[];
  readonly results: readonly EventOf<"ResultSubmitted">[];
  readonly finalized: EventOf<"RoundFinalized"> | null;
  readonly model: ModelRef | null;
  readonly report: ReportStatus | null;
  readonly slashes: readonly EventOf<"Slashed">[];
  readonly claims: readonly EventOf<"RewardClaimed">[];
  readonly penalties: readonly EventOf<"AggregatorPenalized">[];
  readonly budgetReleased: EventOf<"RoundBudgetReleased"> | null;
  /** Who submitted what and who agreed with the final result: the quorum's record, swarm or not. */
  readonly agreement: RoundAgreement;
}

/** An aggregator's submission measured against the round's outcome. */
export interface AggregatorPosition {
  readonly aggregator: string;
  readonly resultHash: Hex32;
  /** agreed: its result is the finalized one; dissented: the round finalized with another; undecided: no result finalized (yet). */
  readonly position: "agreed" | "dissented" | "undecided";
  /** Bond it lost for dissenting in this round, once the penalty was applied (null before, or when none is due). */
  readonly penalty: bigint | null;
}

export interface RoundAgreement {
  /** Identical results needed to finalize. */
  readonly quorum: bigint;
  readonly reached: boolean;
  /** One per submission, in chain order. */
  readonly positions: readonly AggregatorPosition[];
}

export interface ParticipantRecord {
  readonly address: string;
  /** Total stake, pending part included (all of it is slashable). */
  readonly stake: bigint;
  readonly pendingWithdrawal: bigint;
  readonly unlockAt: bigint;
  readonly deposited: bigint;
  readonly withdrawn: bigint;
  readonly slashed: bigint;
  readonly slashCount: number;
  readonly claimed: bigint;
  readonly commits: number;
  readonly reveals: number;
}

export interface AggregatorRecord {
  readonly address: string;
  /** In the task's aggregator set (fixed at creation). */
  readonly member: boolean;
  readonly bond: bigint;
  readonly penalized: bigint;
  readonly submissions: number;
}

export interface TokenInfo {
  readonly address: string;
  readonly symbol: string | null;
  readonly decimals: number | null;
}

export interface ChainPoint {
  readonly block: number;
  readonly time: number;
}

export interface TaskHistory {
  readonly format: typeof AUDIT_FORMAT;
  readonly chainId: bigint;
  readonly coordinator: string;
  readonly taskId: bigint;
  /** The block every figure below is read at. */
  readonly asOf: ChainPoint;
  readonly token: TokenInfo;
  readonly created: EventOf<"TaskCreated">;
  /** The current owner (the creator, or the last ownership transfer's recipient). */
  readonly owner: string;
  /** Reward escrow implied by the events: funding, slashes, penalties and returns minus reserved budgets. */
  readonly escrow: bigint;
  readonly globalModel: ModelRef & { readonly round: bigint };
  readonly currentRound: bigint;
  /** Events not tied to a round: creation, ownership, funding, stake and aggregator bonds. */
  readonly ledger: readonly TaskEvent[];
  readonly rounds: readonly RoundRecord[];
  readonly participants: readonly ParticipantRecord[];
  readonly aggregators: readonly AggregatorRecord[];
}

export interface TaskSummary {
  readonly taskId: bigint;
  readonly owner: string;
  readonly created: EventPlace;
  readonly currentRound: bigint;
  /** The current round's phase ("None" before the first round). */
  readonly phase: Phase;
  readonly globalModelDigest: Hex32;
  readonly rewardEscrow: bigint;
}

const ROUND_KINDS = new Set<TaskEvent["kind"]>([
  "RoundOpened",
  "PhaseClosedEarly",
  "Committed",
  "Revealed",
  "Slashed",
  "ResultSubmitted",
  "RoundFinalized",
  "RoundBudgetReleased",
  "AggregatorPenalized",
  "RewardClaimed",
]);

type RoundEvent = Extract<TaskEvent, { round: bigint }>;
const isRoundEvent = (e: TaskEvent): e is RoundEvent => ROUND_KINDS.has(e.kind);
const ofKind = <K extends TaskEvent["kind"]>(events: readonly TaskEvent[], kind: K) => events.filter((e): e is EventOf<K> => e.kind === kind);

export interface HistoryInput {
  readonly chainId: bigint;
  readonly coordinator: string;
  readonly taskId: bigint;
  readonly asOf: ChainPoint;
  readonly token: TokenInfo;
  /** Every event of the task, in chain order. */
  readonly events: readonly TaskEvent[];
  /** The current round's phase as the contract derives it at `asOf`. */
  readonly currentPhase: Phase;
  /** Reports of finalized rounds, by report digest (rounds missing here have `report: null`). */
  readonly reports: ReadonlyMap<string, ReportStatus>;
}

/** Assembles the history from the events (pure). */
export function buildHistory(input: HistoryInput): TaskHistory {
  const { events, taskId } = input;
  const created = creationOf(events, taskId);
  const contentRoots = knownContentRoots(created, input.reports);
  const modelRef = (digest: Hex32): ModelRef => {
    const root = contentRoots.get(digest);
    return { digest, cid: root === undefined ? null : cidFromChain(digest, root) };
  };
  const byRound = new Map<bigint, RoundEvent[]>();
  for (const e of events.filter(isRoundEvent)) byRound.set(e.round, [...(byRound.get(e.round) ?? []), e]);
  const currentRound = [...byRound.keys()].reduce((max, r) => (r > max ? r : max), 0n);
  const rounds = [...byRound.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([round, list]) => buildRound(round, list, round === currentRound ? input.currentPhase : undefined, modelRef, input.reports, created.config.quorum));
  const lastFinalized = rounds.filter((r) => r.finalized).at(-1);
  const globalDigest = lastFinalized?.finalized?.newModelDigest ?? created.config.genesisModelDigest;
  const transfers = ofKind(events, "TaskOwnershipTransferred");
  return {
    format: AUDIT_FORMAT,
    chainId: input.chainId,
    coordinator: input.coordinator,
    taskId,
    asOf: input.asOf,
    token: input.token,
    created,
    owner: transfers.at(-1)?.newOwner ?? created.owner,
    escrow: escrowOf(events),
    globalModel: { ...modelRef(globalDigest), round: lastFinalized?.round ?? 0n },
    currentRound,
    ledger: events.filter((e) => !isRoundEvent(e)),
    rounds,
    participants: participantsOf(events),
    aggregators: aggregatorsOf(events, created.config),
  };
}

/** The task's TaskCreated event, which every history starts with. */
export function creationOf(events: readonly TaskEvent[], taskId: bigint): EventOf<"TaskCreated"> {
  const created = ofKind(events, "TaskCreated")[0];
  if (!created) {
    throw new AuditError(`no TaskCreated event for task ${taskId} in the blocks read`, {
      hint: "the deployment's deployBlock may be later than the task's creation; check <home>/deployments/<chainId>.json",
    });
  }
  return created;
}

/** Where each model file known so far lives: genesis is one raw block; later models as their reports say. */
function knownContentRoots(created: EventOf<"TaskCreated">, reports: ReadonlyMap<string, ReportStatus>): Map<string, Hex32> {
  const roots = new Map<string, Hex32>([[created.config.genesisModelDigest, ZERO_ROOT]]);
  for (const r of reports.values()) if (r.status === "ok") roots.set(r.report.model.digest, r.report.model.contentRoot);
  return roots;
}

function buildRound(
  round: bigint,
  events: readonly RoundEvent[],
  currentPhase: Phase | undefined,
  modelRef: (digest: Hex32) => ModelRef,
  reports: ReadonlyMap<string, ReportStatus>,
  quorum: bigint,
): RoundRecord {
  const opened = ofKind(events, "RoundOpened")[0];
  if (!opened) throw new AuditError(`round ${round} has events but no RoundOpened event in the blocks read`);
  const closedEarly = ofKind(events, "PhaseClosedEarly");
  const last = closedEarly.at(-1);
  const commitClose = closedEarly.find((e) => e.phase === "Commit");
  const finalized = ofKind(events, "RoundFinalized")[0] ?? null;
  const results = ofKind(events, "ResultSubmitted");
  const penalties = ofKind(events, "AggregatorPenalized");
  return {
    round,
    // Only the current round can still change phase; an earlier one ended Finalized or Failed for good.
    phase: currentPhase ?? (finalized ? "Finalized" : "Failed"),
    opened,
    baseModel: modelRef(opened.baseModelDigest),
    commitEnd: commitClose?.closedAt ?? opened.commitEnd,
    revealEnd: last?.revealEnd ?? opened.revealEnd,
    aggregationEnd: last?.aggregationEnd ?? opened.aggregationEnd,
    closedEarly,
    commits: ofKind(events, "Committed"),
    reveals: ofKind(events, "Revealed"),
    results,
    finalized,
    model: finalized ? modelRef(finalized.newModelDigest) : null,
    report: finalized ? (reports.get(finalized.reportDigest) ?? null) : null,
    slashes: ofKind(events, "Slashed"),
    claims: ofKind(events, "RewardClaimed"),
    penalties,
    budgetReleased: ofKind(events, "RoundBudgetReleased")[0] ?? null,
    agreement: agreementOf(results, finalized, penalties, quorum),
  };
}

/** Each submission against the finalized result (pure): who agreed, who dissented and what it cost them. */
export function agreementOf(
  results: readonly EventOf<"ResultSubmitted">[],
  finalized: EventOf<"RoundFinalized"> | null,
  penalties: readonly EventOf<"AggregatorPenalized">[],
  quorum: bigint,
): RoundAgreement {
  const penaltyOf = new Map(penalties.map((p) => [p.aggregator, p.amount]));
  return {
    quorum,
    reached: finalized !== null,
    positions: results.map((r) => ({
      aggregator: r.aggregator,
      resultHash: r.resultHash,
      position: !finalized ? "undecided" : r.resultHash === finalized.resultHash ? "agreed" : "dissented",
      penalty: penaltyOf.get(r.aggregator) ?? null,
    })),
  };
}

/** The escrow's balance from its flows, as the contract books them. */
export function escrowOf(events: readonly TaskEvent[]): bigint {
  let escrow = 0n;
  for (const e of events) {
    if (e.kind === "RewardsFunded") escrow += e.amount;
    else if (e.kind === "RoundOpened") escrow -= e.budget;
    else if (e.kind === "RoundFinalized") escrow += e.returnedToEscrow;
    else if (e.kind === "RoundBudgetReleased") escrow += e.budget;
    else if (e.kind === "Slashed" || e.kind === "AggregatorPenalized") escrow += e.amount;
  }
  return escrow;
}

type MutableParticipant = { -readonly [K in keyof ParticipantRecord]: ParticipantRecord[K] };

/** Participants' balances from the events; a slash takes from the whole stake and caps the pending part. */
export function participantsOf(events: readonly TaskEvent[]): ParticipantRecord[] {
  const people = new Map<string, MutableParticipant>();
  const get = (address: string) => {
    let p = people.get(address);
    if (!p) {
      p = { address, stake: 0n, pendingWithdrawal: 0n, unlockAt: 0n, deposited: 0n, withdrawn: 0n, slashed: 0n, slashCount: 0, claimed: 0n, commits: 0, reveals: 0 };
      people.set(address, p);
    }
    return p;
  };
  for (const e of events) {
    if (e.kind === "Deposited") {
      const p = get(e.participant);
      p.stake = e.stakeAfter;
      p.deposited += e.amount;
    } else if (e.kind === "WithdrawalRequested") {
      const p = get(e.participant);
      p.pendingWithdrawal = e.pendingAfter;
      p.unlockAt = e.unlockAt;
    } else if (e.kind === "Withdrawn") {
      const p = get(e.participant);
      p.stake = e.stakeAfter;
      p.pendingWithdrawal = 0n;
      p.withdrawn += e.amount;
    } else if (e.kind === "Slashed") {
      const p = get(e.participant);
      p.stake -= e.amount;
      if (p.pendingWithdrawal > p.stake) p.pendingWithdrawal = p.stake;
      p.slashed += e.amount;
      p.slashCount += 1;
    } else if (e.kind === "Committed") get(e.participant).commits += 1;
    else if (e.kind === "Revealed") get(e.participant).reveals += 1;
    else if (e.kind === "RewardClaimed") get(e.account).claimed += e.amount;
  }
  return [...people.values()].sort((a, b) => compareAddresses(a.address, b.address));
}

/** The aggregator set with bonds, penalties and submissions. */
export function aggregatorsOf(events: readonly TaskEvent[], config: TaskConfigView): AggregatorRecord[] {
  const aggs = new Map<string, { -readonly [K in keyof AggregatorRecord]: AggregatorRecord[K] }>();
  const get = (address: string) => {
    let a = aggs.get(address);
    if (!a) aggs.set(address, (a = { address, member: config.aggregators.includes(address), bond: 0n, penalized: 0n, submissions: 0 }));
    return a;
  };
  for (const address of config.aggregators) get(address);
  for (const e of events) {
    if (e.kind === "AggregatorBonded") get(e.aggregator).bond = e.bondAfter;
    else if (e.kind === "AggregatorUnbonded") get(e.aggregator).bond = 0n;
    else if (e.kind === "AggregatorPenalized") {
      const a = get(e.aggregator);
      a.bond = e.bondAfter;
      a.penalized += e.amount;
    } else if (e.kind === "ResultSubmitted") get(e.aggregator).submissions += 1;
  }
  return [...aggs.values()].sort((a, b) => compareAddresses(a.address, b.address));
}

/** Every event of the history in chain order (ledger and rounds merged). */
export function timeline(history: TaskHistory): TaskEvent[] {
  const all: TaskEvent[] = [...history.ledger];
  for (const r of history.rounds) {
    all.push(r.opened, ...r.closedEarly, ...r.commits, ...r.reveals, ...r.results, ...r.slashes, ...r.claims, ...r.penalties);
    if (r.finalized) all.push(r.finalized);
    if (r.budgetReleased) all.push(r.budgetReleased);
  }
  return all.sort((a, b) => a.block - b.block || a.logIndex - b.logIndex);
}

/** What a report must agree with: the chain that points at it. Returns the disagreements (pure). */
export function reportMismatches(
  report: AggregationReport,
  expected: ChainRef & { finalized: EventOf<"RoundFinalized"> },
): string[] {
  const out: string[] = [];
  if (report.chainId !== expected.chainId.toString()) out.push(`chainId ${report.chainId} (chain: ${expected.chainId})`);
  if (compareAddresses(report.coordinator ?? "", expected.coordinator) !== 0) out.push(`coordinator ${report.coordinator} (chain: ${expected.coordinator})`);
  if (report.taskId !== expected.taskId.toString()) out.push(`taskId ${report.taskId} (chain: ${expected.taskId})`);
  if (report.round !== expected.finalized.round.toString()) out.push(`round ${report.round} (chain: ${expected.finalized.round})`);
  if (report.model.digest !== expected.finalized.newModelDigest) out.push(`model ${report.model.digest} (chain: ${expected.finalized.newModelDigest})`);
  return out;
}

export interface ChainRef {
  readonly chainId: bigint;
  readonly coordinator: string;
  readonly taskId: bigint;
}

/** Fetches a finalized round's report and checks it against the chain; store and format failures become a status. */
export async function loadReport(store: ContentStore, finalized: EventOf<"RoundFinalized">, chain: ChainRef): Promise<ReportStatus> {
  const cid = finalized.reportCid;
  let report: AggregationReport;
  try {
    report = await fetchReport(store, finalized.reportDigest);
  } catch (error) {
    if (error instanceof ReportFormatError) return { status: "invalid", cid, error: error.message };
    if (error instanceof StoreError) return { status: "unavailable", cid, error: `${error.message.split("\n")[0]} (${store.description})` };
    throw error;
  }
  const mismatches = reportMismatches(report, { ...chain, finalized });
  if (mismatches.length) return { status: "invalid", cid, error: `the report disagrees with the chain: ${mismatches.join("; ")}` };
  return { status: "ok", cid, report };
}

export interface ReaderOptions {
  readonly provider: Provider;
  readonly coordinator: AnchorCoordinator;
  readonly chainId: bigint;
  /** Event readers start here (the coordinator's deployment block). */
  readonly fromBlock: number;
  /** Where reports are fetched from; without one, rounds have `report: null` and models of later rounds no CID. */
  readonly store?: ContentStore;
}

/**
 * Reads histories from the chain and the store. Block times and good reports are immutable, so
 * they are remembered across calls (the dashboard re-reads on every new block).
 */
export class AuditReader {
  readonly #clock: BlockClock;
  readonly #reports = new Map<string, ReportStatus>();
  readonly #tokens = new Map<string, TokenInfo>();

  constructor(readonly options: ReaderOptions) {
    this.#clock = new BlockClock(options.provider);
  }

  /** The latest block, which every read below is pinned to. */
  async head(): Promise<ChainPoint> {
    const block = await this.options.provider.getBlockNumber();
    return { block, time: await this.#clock.timeOf(block) };
  }

  /** Every task on the coordinator with its current round and phase. */
  async tasks(asOf?: ChainPoint): Promise<TaskSummary[]> {
    const { coordinator: c, fromBlock } = this.options;
    const at = asOf ?? (await this.head());
    const logs = await allEvents(c, c.filters.TaskCreated(), { fromBlock, toBlock: at.block });
    await this.#clock.load(logs.map((l) => l.blockNumber));
    return Promise.all(
      logs.map(async (log) => {
        const taskId = c.interface.parseLog(log)!.args.taskId as bigint;
        const info = await c.taskInfo(taskId, { blockTag: at.block });
        const phase = info.currentRound === 0n ? "None" : phaseName(await c.roundPhase(taskId, info.currentRound, { blockTag: at.block }));
        return {
          taskId,
          owner: info.owner,
          created: { block: log.blockNumber, logIndex: log.index, tx: log.transactionHash, time: await this.#clock.timeOf(log.blockNumber) },
          currentRound: info.currentRound,
          phase,
          globalModelDigest: info.globalModelDigest as Hex32,
          rewardEscrow: info.rewardEscrow,
        };
      }),
    );
  }

  /** The task's history at `asOf` (default: now), with the report of every finalized round the store can provide. */
  async history(taskId: bigint, options: { asOf?: ChainPoint } = {}): Promise<TaskHistory> {
    const { coordinator: c, chainId, fromBlock } = this.options;
    await requireTask(c, taskId);
    const asOf = options.asOf ?? (await this.head());
    const events = await readTaskEvents(c, this.#clock, taskId, { fromBlock, toBlock: asOf.block });
    const current = ofKind(events, "RoundOpened").at(-1)?.round;
    const currentPhase = current === undefined ? "None" : phaseName(await c.roundPhase(taskId, current, { blockTag: asOf.block }));
    const coordinator = await c.getAddress();
    const reports = new Map<string, ReportStatus>();
    for (const f of ofKind(events, "RoundFinalized")) {
      const status = await this.#report(f, { chainId, coordinator, taskId });
      if (status) reports.set(f.reportDigest, status);
    }
    const token = await this.#token(creationOf(events, taskId).config.stakeToken);
    return buildHistory({ chainId, coordinator, taskId, asOf, token, events, currentPhase, reports });
  }

  /**
   * The round's report, checked against the chain; null without a store. A report's digest is on-chain,
   * so a good or invalid one stays so and is remembered; an unavailable one is asked for again next time.
   */
  async #report(finalized: EventOf<"RoundFinalized">, chain: ChainRef): Promise<ReportStatus | null> {
    const store = this.options.store;
    if (!store) return null;
    const known = this.#reports.get(finalized.reportDigest);
    if (known) return known;
    const status = await loadReport(store, finalized, chain);
    if (status.status !== "unavailable") this.#reports.set(finalized.reportDigest, status);
    return status;
  }

  async #token(address: string): Promise<TokenInfo> {
    const known = this.#tokens.get(address);
    if (known) return known;
    // Any ERC-20 may be the stake token; symbol and decimals are optional in the standard.
    const erc20 = DemoToken__factory.connect(address, this.options.provider);
    const [symbol, decimals] = await Promise.all([erc20.symbol().catch(() => null), erc20.decimals().catch(() => null)]);
    const info = { address, symbol, decimals: decimals === null ? null : Number(decimals) };
    this.#tokens.set(address, info);
    return info;
  }
}
