// Files a round depends on beyond the participants' updates (DESIGN.md "Determinism"): the
// server optimiser's state carried between rounds, and FLTrust's server update (computed with a
// training backend, so it cannot be recomputed bit for bit). Each is pinned as a safetensors
// file and named in the round's report (`state`: name, digest, content root), so `verify` can
// re-run a round from the chain, the reports and these files alone.
//
// A state file binds itself to its task, round and model in `__metadata__`, so a file of another
// round, task or optimiser named in a report is refused by name, not silently used.
import { modelShapes, type ModelSpec } from "../../client/model/spec.js";
import { initialServerState, serverStateFromTensors, serverStateToTensors, type ServerState } from "../aggregation/optimisers.js";
import { getServerOptimiser } from "../aggregation/registry.js";
import { canonicalJson } from "../canonical-json.js";
import { decodeSafetensors, encodeSafetensors } from "../codec/safetensors.js";
import { FORMAT_VERSION } from "../codec/update-metadata.js";
import type { Hex32 } from "../digest.js";
import { AnchorFLError } from "../errors.js";
import type { AggregationReport, ContentPointer, EvidenceValue, ServerUpdateSource } from "../protocol/report.js";
import { ContentNotFoundError, ContentTimeoutError, IntegrityError, type ContentStore } from "../store/index.js";
import { flatten, type Tensor } from "../tensors.js";

/** A state file is missing, does not match its digest, or is not the state the report says. */
export class StateFileError extends AnchorFLError {}

/** The names a report's `state` entries may carry. */
export const OPTIMIZER_STATE = "server-optimizer";
export const SERVER_UPDATE_STATE = "fltrust-server-update";
export const STATE_NAMES: readonly string[] = [OPTIMIZER_STATE, SERVER_UPDATE_STATE];

/** What every state file is bound to. */
export interface StateBinding {
  readonly taskId: bigint;
  /** The round whose report names the file. */
  readonly round: bigint;
  readonly modelSpecDigest: Hex32;
  /** The model the round was opened on. */
  readonly baseModelDigest: Hex32;
}

export interface OptimizerChoice {
  readonly name: string;
  readonly params: Readonly<Record<string, EvidenceValue>>;
}

const TENSORS_NOTE = "m: first moment (momentum); v: second moment (fedadam, fedyogi); t: server steps applied so far";

function bindingMetadata(name: string, b: StateBinding): Record<string, string> {
  return {
    anchorfl_format: FORMAT_VERSION,
    anchorfl_state: name,
    task_id: b.taskId.toString(),
    round: b.round.toString(),
    model_spec_digest: b.modelSpecDigest.toLowerCase(),
    base_model_digest: b.baseModelDigest.toLowerCase(),
  };
}

/** The optimiser state after a round, as the file that is pinned and named in its report. */
export function encodeOptimizerState(state: ServerState, optimizer: OptimizerChoice, binding: StateBinding): Uint8Array {
  return encodeSafetensors(serverStateToTensors(state), {
    ...bindingMetadata(OPTIMIZER_STATE, binding),
    optimizer: optimizer.name,
    optimizer_params: canonicalJson(optimizer.params),
    tensors: TENSORS_NOTE,
  });
}

/** The FLTrust server update of a round (a delta with the model's tensor names and shapes). */
export function encodeServerUpdate(update: readonly Tensor[], source: ServerUpdateSource, binding: StateBinding): Uint8Array {
  return encodeSafetensors(update, {
    ...bindingMetadata(SERVER_UPDATE_STATE, binding),
    root_data: source.rootData,
    training: canonicalJson(source.training),
    backend: source.backend,
  });
}

/** Throws unless the metadata binds the file to `expected` (and to `extra` key by key); aggregate-files checks hand-given files with it too. */
export function checkBinding(metadata: Record<string, string>, name: string, expected: StateBinding, extra: Record<string, string>): void {
  const wanted = { ...bindingMetadata(name, expected), ...extra };
  const wrong = Object.entries(wanted).filter(([key, value]) => metadata[key] !== value);
  if (wrong.length > 0) {
    throw new StateFileError(`it is not the ${name} of task ${expected.taskId} round ${expected.round}: ${wrong.map(([k, v]) => `${k} is ${JSON.stringify(metadata[k] ?? null)}, expected ${JSON.stringify(v)}`).join("; ")}`);
  }
}

/** Decodes an optimiser state file of `binding.round`, checking it fits a model of `d` parameters. */
export function decodeOptimizerState(bytes: Uint8Array, optimizer: string, d: number, binding: StateBinding): ServerState {
  const secondMoment = getServerOptimiser(optimizer).secondMoment;
  const expected = [
    { name: "m", shape: [d] },
    { name: "t", shape: [1] },
    ...(secondMoment ? [{ name: "v", shape: [d] }] : []),
  ];
  const file = decodeSafetensors(bytes, { expected });
  checkBinding(file.metadata, OPTIMIZER_STATE, binding, { optimizer });
  return serverStateFromTensors(file.tensors);
}

/** Decodes a server update file of `binding.round`: the model's shapes, finite, non-zero. */
export function decodeServerUpdate(bytes: Uint8Array, spec: ModelSpec, source: ServerUpdateSource, binding: StateBinding): Float32Array {
  const file = decodeSafetensors(bytes, { expected: modelShapes(spec) });
  checkBinding(file.metadata, SERVER_UPDATE_STATE, binding, { root_data: source.rootData, training: canonicalJson(source.training) });
  return flatten(file.tensors);
}

/** Refuses a report whose `state` names a file this version does not know (it could not re-run the round). */
export function checkStateNames(report: AggregationReport): void {
  const unknown = (report.state ?? []).map((s) => s.name).filter((name) => !STATE_NAMES.includes(name));
  if (unknown.length > 0) {
    throw new StateFileError(`the report of round ${report.round} names unknown state ${unknown.map((n) => JSON.stringify(n)).join(", ")} (known: ${STATE_NAMES.join(", ")})`, {
      hint: "verify with the AnchorFL version the report names",
    });
  }
}

/** The pointer of state `name` in the report, or undefined when the report names none. */
export function statePointer(report: AggregationReport, name: string): ContentPointer | undefined {
  const entry = report.state?.find((s) => s.name === name);
  return entry ? { digest: entry.digest, contentRoot: entry.contentRoot } : undefined;
}

/**
 * Fetches state `name` named by `report` and decodes it with `decode`; every failure (not in the
 * store, bytes that do not match the digest, wrong shape, NaN, another round's file) becomes a
 * StateFileError naming the state, the round and the digest.
 */
export async function fetchState<T>(store: ContentStore, report: AggregationReport, name: string, decode: (bytes: Uint8Array) => T, timeoutMs = 30_000): Promise<T> {
  checkStateNames(report);
  const pointer = statePointer(report, name);
  const where = `state ${name} of task ${report.taskId} round ${report.round}`;
  if (!pointer) throw new StateFileError(`the report of round ${report.round} names no ${name} file`);
  let bytes: Uint8Array;
  try {
    bytes = await store.get(pointer, { timeoutMs });
  } catch (error) {
    if (error instanceof ContentNotFoundError || error instanceof ContentTimeoutError || error instanceof IntegrityError) {
      throw new StateFileError(`${where} (${pointer.digest}) could not be had: ${firstLine(error)}`, { cause: error, details: { name, digest: pointer.digest } });
    }
    throw error;
  }
  try {
    return decode(bytes);
  } catch (error) {
    if (!(error instanceof AnchorFLError)) throw error;
    throw new StateFileError(`${where} (${pointer.digest}) is refused: ${firstLine(error)}`, { cause: error, details: { name, digest: pointer.digest } });
  }
}

/**
 * The optimiser state round `binding.round` starts from: the state named by the report of the last
 * finalized round before it (a failed round leaves model and state unchanged), or zero when that
 * report used no optimiser or another one (or there is no finalized round yet).
 */
export async function previousOptimizerState(
  store: ContentStore,
  previous: { readonly round: bigint; readonly report: AggregationReport } | undefined,
  optimizer: string,
  d: number,
  timeoutMs?: number,
): Promise<ServerState> {
  const secondMoment = getServerOptimiser(optimizer).secondMoment;
  if (!previous || previous.report.optimizer?.name !== optimizer) return initialServerState(d, secondMoment);
  const r = previous.report;
  const binding: StateBinding = { taskId: BigInt(r.taskId), round: previous.round, modelSpecDigest: r.modelSpecDigest, baseModelDigest: r.baseModelDigest };
  return fetchState(store, r, OPTIMIZER_STATE, (bytes) => decodeOptimizerState(bytes, optimizer, d, binding), timeoutMs);
}

const firstLine = (error: unknown) => (error as Error).message.split("\n")[0];
