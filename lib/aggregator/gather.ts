// Gathering a round's inputs from the chain and the content store: the round's opening facts,
// its committers and reveals, the revealed files (bounded concurrency, a timeout per file), the
// model it was opened on, and earlier rounds' updates for the copy test. Both the aggregator
// and `verify` gather through here, so they see exactly the same inputs.
import { modelShapes, parameterCount, type ModelSpec } from "../../client/model/spec.js";
import { readCommitters, readReveals, type AnchorCoordinator } from "../chain/coordinator.js";
import { allEvents } from "../chain/logs.js";
import { decodeUpdate } from "../codec/update-file.js";
import type { Hex32 } from "../digest.js";
import { AnchorFLError } from "../errors.js";
import { fetchModel, fetchModelSpec, fetchReport, rawBlock } from "../protocol/models.js";
import type { AggregationReport } from "../protocol/report.js";
import { ContentNotFoundError, ContentTimeoutError, ContentTooLargeError, IntegrityError, type ContentStore } from "../store/index.js";
import { flatten } from "../tensors.js";
import type { EarlierUpdate } from "./policy.js";
import { reputationParams } from "./reputation.js";
import { readReputationHistory } from "./reputation-history.js";
import type { Fetched, RevealFact, RoundInputs } from "./round.js";

export class RoundLookupError extends AnchorFLError {}

export interface FetchOptions {
  /** Files fetched at once (default 8). */
  readonly concurrency?: number;
  /** Per file (default 30 s); a file not there in time is "unavailable". */
  readonly fetchTimeoutMs?: number;
}

export const DEFAULT_CONCURRENCY = 8;
export const DEFAULT_FETCH_TIMEOUT_MS = 30_000;

/** Runs `fn` over `items` with at most `limit` in flight; results keep the items' order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/**
 * Fetches each revealed file. What the participant is answerable for (missing, late, bytes that
 * do not match the digest, larger than any valid update) becomes a verdict; anything else (the
 * store itself is down) is thrown, so nobody is slashed for the aggregator's own trouble.
 */
export async function fetchRevealed(store: ContentStore, reveals: readonly RevealFact[], maxBytes: number, options: FetchOptions = {}): Promise<Map<string, Fetched>> {
  const unique = [...new Map(reveals.map((r) => [r.updateDigest.toLowerCase(), r])).values()];
  const timeoutMs = options.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  const outcomes = await mapBounded(unique, options.concurrency ?? DEFAULT_CONCURRENCY, async (r): Promise<Fetched> => {
    try {
      return { bytes: await store.get({ digest: r.updateDigest, contentRoot: r.contentRoot }, { timeoutMs, maxBytes }) };
    } catch (error) {
      const first = (error as Error).message.split("\n")[0];
      if (error instanceof ContentTooLargeError) return { tooLarge: `the file is larger than any update of this model (${maxBytes} bytes)` };
      if (error instanceof ContentNotFoundError || error instanceof ContentTimeoutError || error instanceof IntegrityError) return { unavailable: first };
      throw error;
    }
  });
  return new Map(unique.map((r, i) => [r.updateDigest.toLowerCase(), outcomes[i]]));
}

/** The largest file a valid update of `spec` can be: its float32 data plus a generous header. */
export function maxUpdateBytes(spec: ModelSpec): number {
  return parameterCount(spec) * 4 + 1024 * 1024;
}

export interface RoundOpening {
  readonly baseModelDigest: Hex32;
  readonly budget: bigint;
}

export async function roundOpening(c: AnchorCoordinator, taskId: bigint, round: bigint, fromBlock: number): Promise<RoundOpening> {
  const opened = await allEvents(c, c.filters.RoundOpened(taskId, round), { fromBlock });
  if (opened.length !== 1) throw new RoundLookupError(`found ${opened.length} RoundOpened events for task ${taskId} round ${round}, expected one`);
  const { args } = c.interface.parseLog(opened[0])!;
  return { baseModelDigest: (args.baseModelDigest as string).toLowerCase() as Hex32, budget: args.budget as bigint };
}

/**
 * Where the model `digest` that round `round` was opened on is: the model the last finalized round
 * before it reported (the round must have been opened on it), or genesis when none finalized yet.
 */
function locateBaseModel(taskId: bigint, round: bigint, digest: Hex32, previous: PreviousRound | undefined, genesisDigest: string) {
  if (previous) {
    if (previous.report.model.digest !== digest) {
      throw new RoundLookupError(`round ${round} of task ${taskId} was opened on model ${digest}, but the last finalized round ${previous.round} produced ${previous.report.model.digest}`);
    }
    return { digest, contentRoot: previous.report.model.contentRoot };
  }
  if (genesisDigest.toLowerCase() === digest) return rawBlock(digest);
  throw new RoundLookupError(`round ${round} of task ${taskId} was opened on model ${digest}, which no earlier round produced and is not the genesis model`);
}

export interface GatherOptions extends FetchOptions {
  readonly lookback: number;
}

export type GatheredInputs = Omit<RoundInputs, "rule" | "optimizer" | "serverUpdate" | "policy" | "softwareVersion" | "evaluate"> & {
  /** The last round finalized before this one and its report: where carried state comes from. */
  readonly previous?: PreviousRound;
};

export interface PreviousRound {
  readonly round: bigint;
  readonly report: AggregationReport;
}

/** A finalized round as its RoundFinalized event says: the round and its report's digest. */
export interface FinalizedRound {
  readonly round: bigint;
  readonly reportDigest: Hex32;
}

/** The task's rounds finalized before `round`, ascending: one read serves the base model, the carried state and reputation. */
async function finalizedBefore(c: AnchorCoordinator, taskId: bigint, round: bigint, fromBlock: number): Promise<FinalizedRound[]> {
  return (await allEvents(c, c.filters.RoundFinalized(taskId), { fromBlock }))
    .map((log) => c.interface.parseLog(log)!.args)
    .filter((a) => (a.round as bigint) < round)
    .map((a) => ({ round: a.round as bigint, reportDigest: (a.reportDigest as string).toLowerCase() as Hex32 }))
    .sort((a, b) => (a.round < b.round ? -1 : a.round > b.round ? 1 : 0));
}

/**
 * The last round of the task finalized before `round`, with its report. A failed round changes
 * neither the model nor any carried state, so this is the round whose state `round` starts from.
 */
async function previousFinalized(store: ContentStore, finalized: readonly FinalizedRound[]): Promise<PreviousRound | undefined> {
  const last = finalized.at(-1);
  if (!last) return undefined;
  return { round: last.round, report: await fetchReport(store, last.reportDigest) };
}

/** Everything aggregateRound needs for `round`, from the chain and the store. */
export async function gatherRound(
  c: AnchorCoordinator,
  store: ContentStore,
  ids: { chainId: bigint; taskId: bigint; round: bigint; fromBlock: number },
  options: GatherOptions,
): Promise<GatheredInputs> {
  const { taskId, round, fromBlock } = ids;
  const config = await c.taskConfig(taskId);
  const spec = await fetchModelSpec(store, config.modelSpecDigest);
  const opening = await roundOpening(c, taskId, round, fromBlock);
  const finalized = await finalizedBefore(c, taskId, round, fromBlock);
  const previous = await previousFinalized(store, finalized);
  const pointer = locateBaseModel(taskId, round, opening.baseModelDigest, previous, config.genesisModelDigest);
  const base = await fetchModel(store, pointer, spec);
  const [committers, reveals] = await Promise.all([readCommitters(c, taskId, round, { fromBlock }), readReveals(c, taskId, round, { fromBlock })]);
  const maxBytes = maxUpdateBytes(spec);
  const files = await fetchRevealed(store, reveals, maxBytes, options);
  const earlier = await earlierUpdates(c, store, spec, { taskId, round, fromBlock, lookback: options.lookback }, options);
  const reputation = spec.options?.reputation;
  return {
    chainId: ids.chainId,
    coordinator: await c.getAddress(),
    taskId,
    round,
    spec,
    specDigest: config.modelSpecDigest.toLowerCase() as Hex32,
    baseModel: { digest: opening.baseModelDigest, tensors: base.tensors },
    budget: opening.budget,
    committers,
    reveals,
    files,
    earlier,
    ...(reputation ? { reputationHistory: await readReputationHistory(store, finalized, { taskId, round, window: reputationParams(reputation).window }, previous) } : {}),
    ...(previous ? { previous } : {}),
  };
}

/** Decodable updates revealed in the `lookback` rounds before `round`, in (round, address) order; the rest are skipped. */
async function earlierUpdates(
  c: AnchorCoordinator,
  store: ContentStore,
  spec: ModelSpec,
  at: { taskId: bigint; round: bigint; fromBlock: number; lookback: number },
  options: FetchOptions,
): Promise<EarlierUpdate[]> {
  const out: EarlierUpdate[] = [];
  const shapes = modelShapes(spec);
  for (let r = at.round - BigInt(at.lookback); r < at.round; r++) {
    if (r < 1n) continue;
    const reveals = await readReveals(c, at.taskId, r, { fromBlock: at.fromBlock });
    const files = await fetchRevealed(store, reveals, maxUpdateBytes(spec), options);
    for (const reveal of reveals) {
      const fetched = files.get(reveal.updateDigest.toLowerCase());
      if (!fetched || !("bytes" in fetched)) continue;
      try {
        const file = decodeUpdate(fetched.bytes, { expected: shapes });
        out.push({ round: r, participant: reveal.participant, digest: reveal.updateDigest.toLowerCase(), baseModelDigest: file.metadata.baseModelDigest, vector: flatten(file.tensors) });
      } catch (error) {
        if (!(error instanceof AnchorFLError)) throw error;
      }
    }
  }
  return out;
}
