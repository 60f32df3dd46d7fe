// A task's on-chain events as a typed timeline. Every coordinator event carries the task id as
// its first indexed topic, so one paged log query per block range returns a task's whole
// history, in chain order, whatever the event type. Decoding is pure; reading is at the edge.
import { getAddress, toBeHex, zeroPadValue, type Log, type LogDescription, type Provider } from "ethers";
import { phaseName, SLASH_REASONS, type AnchorCoordinator, type Phase, type SlashReasonName } from "../chain/coordinator.js";
import { pagedEvents, type PagingOptions } from "../chain/logs.js";
import type { Hex32 } from "../digest.js";
import { AnchorFLError } from "../errors.js";
import { cidFromChain, ZERO_ROOT } from "../store/index.js";

export class AuditError extends AnchorFLError {}

/** Where an event was recorded: block, time (block timestamp, unix seconds) and transaction. */
export interface EventPlace {
  readonly block: number;
  readonly logIndex: number;
  readonly tx: string;
  readonly time: number;
}

export interface TaskConfigView {
  readonly stakeToken: string;
  readonly minStake: bigint;
  readonly rewardPerRound: bigint;
  readonly aggregatorBond: bigint;
  readonly commitWindow: bigint;
  readonly revealWindow: bigint;
  readonly aggregationWindow: bigint;
  readonly unbondingDelay: bigint;
  readonly maxParticipants: bigint;
  readonly outlierSlashBps: bigint;
  readonly noRevealSlashBps: bigint;
  readonly invalidSlashBps: bigint;
  readonly duplicateSlashBps: bigint;
  readonly dissentPenaltyBps: bigint;
  readonly quorum: bigint;
  readonly genesisModelDigest: Hex32;
  readonly modelSpecDigest: Hex32;
  readonly aggregators: readonly string[];
}

export interface SlashEntryView {
  readonly participant: string;
  readonly reason: SlashReasonName;
}

export type TaskEventBody =
  | { readonly kind: "TaskCreated"; readonly owner: string; readonly config: TaskConfigView }
  | { readonly kind: "TaskOwnershipTransferred"; readonly previousOwner: string; readonly newOwner: string }
  | { readonly kind: "RewardsFunded"; readonly funder: string; readonly amount: bigint; readonly escrowAfter: bigint }
  | { readonly kind: "Deposited"; readonly participant: string; readonly amount: bigint; readonly stakeAfter: bigint }
  | {
      readonly kind: "WithdrawalRequested";
      readonly participant: string;
      readonly amount: bigint;
      readonly pendingAfter: bigint;
      readonly unlockAt: bigint;
    }
  | { readonly kind: "Withdrawn"; readonly participant: string; readonly amount: bigint; readonly stakeAfter: bigint }
  | {
      readonly kind: "RoundOpened";
      readonly round: bigint;
      readonly baseModelDigest: Hex32;
      readonly budget: bigint;
      readonly commitEnd: bigint;
      readonly revealEnd: bigint;
      readonly aggregationEnd: bigint;
    }
  | {
      readonly kind: "PhaseClosedEarly";
      readonly round: bigint;
      readonly phase: Phase;
      readonly closedAt: bigint;
      readonly revealEnd: bigint;
      readonly aggregationEnd: bigint;
    }
  | { readonly kind: "Committed"; readonly round: bigint; readonly participant: string; readonly commitment: Hex32 }
  | {
      readonly kind: "Revealed";
      readonly round: bigint;
      readonly participant: string;
      readonly updateDigest: Hex32;
      readonly numSamples: bigint;
      readonly contentRoot: Hex32;
      /** Where the update file is: derived from (updateDigest, contentRoot). */
      readonly cid: string;
    }
  | { readonly kind: "Slashed"; readonly round: bigint; readonly participant: string; readonly reason: SlashReasonName; readonly amount: bigint }
  | { readonly kind: "AggregatorBonded"; readonly aggregator: string; readonly amount: bigint; readonly bondAfter: bigint }
  | { readonly kind: "AggregatorUnbonded"; readonly aggregator: string; readonly amount: bigint }
  | {
      readonly kind: "ResultSubmitted";
      readonly round: bigint;
      readonly aggregator: string;
      readonly resultHash: Hex32;
      readonly votes: bigint;
      readonly newModelDigest: Hex32;
      readonly reportDigest: Hex32;
      readonly rewardsRoot: Hex32;
      readonly rewardsTotal: bigint;
      readonly slashes: readonly SlashEntryView[];
    }
  | {
      readonly kind: "RoundFinalized";
      readonly round: bigint;
      readonly resultHash: Hex32;
      readonly newModelDigest: Hex32;
      readonly reportDigest: Hex32;
      /** Reports are always one raw block, so the digest alone names the file. */
      readonly reportCid: string;
      readonly rewardsRoot: Hex32;
      readonly rewardsTotal: bigint;
      readonly returnedToEscrow: bigint;
    }
  | { readonly kind: "RoundBudgetReleased"; readonly round: bigint; readonly budget: bigint }
  | { readonly kind: "AggregatorPenalized"; readonly round: bigint; readonly aggregator: string; readonly amount: bigint; readonly bondAfter: bigint }
  | { readonly kind: "RewardClaimed"; readonly round: bigint; readonly account: string; readonly amount: bigint };

export type TaskEvent = EventPlace & TaskEventBody;
export type TaskEventKind = TaskEventBody["kind"];
export type EventOf<K extends TaskEventKind> = Extract<TaskEvent, { kind: K }>;

function slashReason(value: unknown): SlashReasonName {
  const name = SLASH_REASONS[Number(value)];
  if (!name) throw new AuditError(`unknown slash reason ${String(value)} in an event`);
  return name;
}

function configView(c: LogDescription["args"]): TaskConfigView {
  return {
    stakeToken: getAddress(c.stakeToken),
    minStake: c.minStake,
    rewardPerRound: c.rewardPerRound,
    aggregatorBond: c.aggregatorBond,
    commitWindow: c.commitWindow,
    revealWindow: c.revealWindow,
    aggregationWindow: c.aggregationWindow,
    unbondingDelay: c.unbondingDelay,
    maxParticipants: c.maxParticipants,
    outlierSlashBps: c.outlierSlashBps,
    noRevealSlashBps: c.noRevealSlashBps,
    invalidSlashBps: c.invalidSlashBps,
    duplicateSlashBps: c.duplicateSlashBps,
    dissentPenaltyBps: c.dissentPenaltyBps,
    quorum: c.quorum,
    genesisModelDigest: c.genesisModelDigest,
    modelSpecDigest: c.modelSpecDigest,
    aggregators: [...c.aggregators].map((a: string) => getAddress(a)),
  };
}

/** Turns one decoded coordinator event into its typed form (pure). */
export function decodeTaskEvent(parsed: LogDescription): TaskEventBody {
  const a = parsed.args;
  switch (parsed.name) {
    case "TaskCreated":
      return { kind: "TaskCreated", owner: getAddress(a.owner), config: configView(a.config) };
    case "TaskOwnershipTransferred":
      return { kind: "TaskOwnershipTransferred", previousOwner: getAddress(a.previousOwner), newOwner: getAddress(a.newOwner) };
    case "RewardsFunded":
      return { kind: "RewardsFunded", funder: getAddress(a.funder), amount: a.amount, escrowAfter: a.escrowAfter };
    case "Deposited":
      return { kind: "Deposited", participant: getAddress(a.participant), amount: a.amount, stakeAfter: a.stakeAfter };
    case "WithdrawalRequested":
      return {
        kind: "WithdrawalRequested",
        participant: getAddress(a.participant),
        amount: a.amount,
        pendingAfter: a.pendingAfter,
        unlockAt: a.unlockAt,
      };
    case "Withdrawn":
      return { kind: "Withdrawn", participant: getAddress(a.participant), amount: a.amount, stakeAfter: a.stakeAfter };
    case "RoundOpened":
      return {
        kind: "RoundOpened",
        round: a.round,
        baseModelDigest: a.baseModelDigest,
        budget: a.budget,
        commitEnd: a.commitEnd,
        revealEnd: a.revealEnd,
        aggregationEnd: a.aggregationEnd,
      };
    case "PhaseClosedEarly":
      return {
        kind: "PhaseClosedEarly",
        round: a.round,
        phase: phaseName(a.phase),
        closedAt: a.closedAt,
        revealEnd: a.revealEnd,
        aggregationEnd: a.aggregationEnd,
      };
    case "Committed":
      return { kind: "Committed", round: a.round, participant: getAddress(a.participant), commitment: a.commitment };
    case "Revealed":
      return {
        kind: "Revealed",
        round: a.round,
        participant: getAddress(a.participant),
        updateDigest: a.updateDigest,
        numSamples: a.numSamples,
        contentRoot: a.contentRoot,
        cid: cidFromChain(a.updateDigest, a.contentRoot),
      };
    case "Slashed":
      return { kind: "Slashed", round: a.round, participant: getAddress(a.participant), reason: slashReason(a.reason), amount: a.amount };
    case "AggregatorBonded":
      return { kind: "AggregatorBonded", aggregator: getAddress(a.aggregator), amount: a.amount, bondAfter: a.bondAfter };
    case "AggregatorUnbonded":
      return { kind: "AggregatorUnbonded", aggregator: getAddress(a.aggregator), amount: a.amount };
    case "ResultSubmitted":
      return {
        kind: "ResultSubmitted",
        round: a.round,
        aggregator: getAddress(a.aggregator),
        resultHash: a.resultHash,
        votes: a.votes,
        newModelDigest: a.result.newModelDigest,
        reportDigest: a.result.reportDigest,
        rewardsRoot: a.result.rewardsRoot,
        rewardsTotal: a.result.rewardsTotal,
        slashes: [...a.result.slashes].map((s: LogDescription["args"]) => ({ participant: getAddress(s.participant), reason: slashReason(s.reason) })),
      };
    case "RoundFinalized":
      return {
        kind: "RoundFinalized",
        round: a.round,
        resultHash: a.resultHash,
        newModelDigest: a.newModelDigest,
        reportDigest: a.reportDigest,
        reportCid: cidFromChain(a.reportDigest, ZERO_ROOT),
        rewardsRoot: a.rewardsRoot,
        rewardsTotal: a.rewardsTotal,
        returnedToEscrow: a.returnedToEscrow,
      };
    case "RoundBudgetReleased":
      return { kind: "RoundBudgetReleased", round: a.round, budget: a.budget };
    case "AggregatorPenalized":
      return { kind: "AggregatorPenalized", round: a.round, aggregator: getAddress(a.aggregator), amount: a.amount, bondAfter: a.bondAfter };
    case "RewardClaimed":
      return { kind: "RewardClaimed", round: a.round, account: getAddress(a.account), amount: a.amount };
    default:
      throw new AuditError(`event ${parsed.name} is not part of the audit trail`, {
        hint: "the coordinator's ABI has an event this version of anchorfl does not know; upgrade anchorfl",
      });
  }
}

/** Block timestamps, remembered across calls (a mined block's time never changes). */
export class BlockClock {
  readonly #times = new Map<number, number>();
  constructor(private readonly provider: Provider) {}

  async timeOf(block: number): Promise<number> {
    const known = this.#times.get(block);
    if (known !== undefined) return known;
    const header = await this.provider.getBlock(block);
    if (!header) throw new AuditError(`block ${block} is not available from the RPC endpoint`);
    this.#times.set(block, header.timestamp);
    return header.timestamp;
  }

  /** Fills in the times of `blocks`, a few requests at a time. */
  async load(blocks: Iterable<number>, concurrency = 8): Promise<void> {
    const missing = [...new Set(blocks)].filter((b) => !this.#times.has(b));
    for (let i = 0; i < missing.length; i += concurrency) await Promise.all(missing.slice(i, i + concurrency).map((b) => this.timeOf(b)));
  }
}

/** The topic filter matching every coordinator event of `taskId` (it is always the first indexed argument). */
export function taskTopicFilter(taskId: bigint): [null, string] {
  return [null, zeroPadValue(toBeHex(taskId), 32)];
}

/** Reads and decodes every event of `taskId`, oldest first, up to `paging.toBlock`. */
export async function readTaskEvents(c: AnchorCoordinator, clock: BlockClock, taskId: bigint, paging: PagingOptions): Promise<TaskEvent[]> {
  const logs: Log[] = [];
  for await (const log of pagedEvents(c, taskTopicFilter(taskId), paging)) logs.push(log);
  await clock.load(logs.map((l) => l.blockNumber));
  const events: TaskEvent[] = [];
  for (const log of logs) {
    const parsed = c.interface.parseLog(log);
    // Only events of the coordinator's ABI make up the trail; a log it cannot decode is none of them.
    if (!parsed) continue;
    const place = { block: log.blockNumber, logIndex: log.index, tx: log.transactionHash, time: await clock.timeOf(log.blockNumber) };
    events.push({ ...place, ...decodeTaskEvent(parsed) });
  }
  return events;
}
