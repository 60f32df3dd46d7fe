// Finding and fetching a task's files by what the chain says: the model spec (by its digest),
// the current global model (genesis, or the model named in the last finalized round's report),
// and a round's report. Everything fetched is verified against its on-chain digest by the store.
import { modelShapes, decodeModelSpec, type ModelSpec } from "../../client/model/spec.js";
import type { AnchorCoordinator } from "../chain/coordinator.js";
import { allEvents } from "../chain/logs.js";
import { decodeUpdate, type UpdateFile } from "../codec/update-file.js";
import type { Hex32 } from "../digest.js";
import { AnchorFLError } from "../errors.js";
import { ZERO_ROOT, type ContentStore } from "../store/index.js";
import { parseReport, type AggregationReport, type ContentPointer } from "./report.js";

export class ModelLookupError extends AnchorFLError {}

/** Files that are always one raw block (<= 1 MiB), so their digest alone locates them. */
export const rawBlock = (digest: string): ContentPointer => ({ digest: digest as Hex32, contentRoot: ZERO_ROOT });

export async function fetchModelSpec(store: ContentStore, specDigest: string): Promise<ModelSpec> {
  return decodeModelSpec(await store.get(rawBlock(specDigest)));
}

export async function fetchReport(store: ContentStore, reportDigest: string): Promise<AggregationReport> {
  return parseReport(await store.get(rawBlock(reportDigest)));
}

export interface ModelPointer extends ContentPointer {
  /** The round that produced it (0 = genesis). */
  readonly round: bigint;
}

/**
 * Where the task's current global model file is: the model of the last finalized round's
 * report, or the genesis model (a one-block file) when no round has finalized.
 */
export async function currentModelPointer(c: AnchorCoordinator, store: ContentStore, taskId: bigint, fromBlock = 0): Promise<ModelPointer> {
  const digest = (await c.globalModel(taskId)) as Hex32;
  const finalized = await allEvents(c, c.filters.RoundFinalized(taskId), { fromBlock });
  const last = finalized.at(-1);
  if (!last) return { ...rawBlock(digest), round: 0n };
  const { args } = c.interface.parseLog(last)!;
  const report = await fetchReport(store, args.reportDigest);
  if (report.model.digest !== digest) {
    throw new ModelLookupError(`report of round ${args.round} names model ${report.model.digest}, but the chain's global model is ${digest}`);
  }
  return { digest, contentRoot: report.model.contentRoot, round: args.round as bigint };
}

/** Fetches, verifies and decodes a model file, checking its tensors against the spec. */
export async function fetchModel(store: ContentStore, pointer: ContentPointer, spec: ModelSpec): Promise<UpdateFile> {
  const file = decodeUpdate(await store.get(pointer), { expected: modelShapes(spec) });
  if (file.metadata.kind !== "model") {
    throw new ModelLookupError(`file ${pointer.digest} is a ${file.metadata.kind}, expected a model`);
  }
  return file;
}
