// Aggregating update files without a chain (`anchorfl aggregate-files`): for reproducing a
// round from its files and for experiments. The files must be deltas of one model (same spec,
// same base model, one per participant); the chosen rule combines them in canonical order, and
// the result is written as safetensors: the new model when the base model file is given, else
// the aggregate delta.
//
// What a round depends on beyond its updates (state.ts) is given as files too: FLTrust's server
// update, and a server optimiser's state from the previous round. Both are held to the round the
// updates name, and the optimiser's new state is encoded as the aggregator pins it, so a round
// re-run from its files gives the aggregator's model and state bytes.
import { ZeroAddress, getAddress, isAddress } from "ethers";
import { aggregate, getRule, getServerOptimiser, initialServerState, parseParams, type AggregationResult, type RawParams, type ServerState } from "../aggregation/index.js";
import { decodeStoredSafetensors, denseTensors } from "../codec/safetensors.js";
import { decodeUpdate, encodeUpdate, type UpdateFile } from "../codec/update-file.js";
import { sha256Digest, type Hex32 } from "../digest.js";
import { AnchorFLError } from "../errors.js";
import { flatten, unflatten, type TensorShape } from "../tensors.js";
import { OPTIMIZER_STATE, SERVER_UPDATE_STATE, StateFileError, checkBinding, decodeOptimizerState, encodeOptimizerState, type StateBinding } from "./state.js";

export class OfflineAggregationError extends AnchorFLError {}

export interface NamedFile {
  /** For messages: the file's path. */
  readonly name: string;
  readonly bytes: Uint8Array;
}

export interface OfflineOptions {
  readonly rule: { readonly name: string; readonly params: RawParams };
  /** The model the deltas were trained from; when given, the output is base + aggregate. */
  readonly base?: NamedFile;
  /** Written as the output's author (the coordinator, to reproduce a round's model bytes); default the zero address. */
  readonly producer?: string;
  /** FLTrust's server update: the round's `fltrust-server-update` file. Rule fltrust needs it; no other rule takes one. */
  readonly serverUpdate?: NamedFile;
  /**
   * A server optimiser on top of the rule (it steps the model, so `base` is needed), starting from
   * `state`: the `server-optimizer` file of the last finalized round before this one (absent: zero
   * state, as in the first round).
   */
  readonly optimizer?: { readonly name: string; readonly params: RawParams; readonly state?: NamedFile };
}

export interface OfflineResult {
  readonly bytes: Uint8Array;
  readonly kind: "model" | "delta";
  readonly aggregation: AggregationResult;
  /** Participant id (lowercase address) to the file it came from. */
  readonly sources: ReadonlyMap<string, string>;
  /** With an optimiser: its state after the round, the bytes the aggregator pins as `server-optimizer`. */
  readonly state?: Uint8Array;
  /** With a server update: the root set and backend its file says it was trained with. */
  readonly serverUpdate?: { readonly rootData: string; readonly backend: string };
}

/** Runs `read` on a file, prefixing any AnchorFL error with the file's name. */
function named<T>(file: NamedFile, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof AnchorFLError)) throw error;
    throw new OfflineAggregationError(`${file.name}: ${error.message}`, { cause: error });
  }
}

const decodeNamed = (file: NamedFile, expected?: readonly TensorShape[]): UpdateFile => named(file, () => decodeUpdate(file.bytes, expected ? { expected } : {}));

/** The server update of the round `binding` names, with the model's shapes; what the file is is checked before its shapes. */
function readServerUpdate(file: NamedFile, shapes: readonly TensorShape[], binding: StateBinding) {
  return named(file, () => {
    const { tensors, metadata } = decodeStoredSafetensors(file.bytes);
    checkBinding(metadata, SERVER_UPDATE_STATE, binding, {});
    const update = flatten(denseTensors(tensors, shapes));
    // FLTrust would refuse it too, but without the file's name.
    if (update.every((x) => x === 0)) throw new StateFileError("expected a non-zero server update, found the zero vector");
    return { update, rootData: metadata.root_data ?? "", backend: metadata.backend ?? "" };
  });
}

/**
 * The optimiser state the round `binding` names starts from. The aggregator takes it from the last
 * finalized round's report, whose number and base model only the chain knows; a file given by hand
 * must be a state of this task, model spec and optimiser, from an earlier round.
 */
function readPreviousState(file: NamedFile, optimizer: string, d: number, binding: StateBinding): ServerState {
  return named(file, () => {
    const { metadata } = decodeStoredSafetensors(file.bytes);
    // Said first: the binding below names a round, which would mislead about a file of another kind.
    const kind = metadata.anchorfl_state;
    if (kind !== OPTIMIZER_STATE) throw new StateFileError(`expected a ${OPTIMIZER_STATE} state file, found ${kind === undefined ? "a file that is no state file (its metadata has no anchorfl_state)" : `a ${JSON.stringify(kind)} state file`}`);
    const round = /^(0|[1-9][0-9]{0,19})$/.test(metadata.round ?? "") ? BigInt(metadata.round) : binding.round - 1n;
    const own: StateBinding = { ...binding, round, baseModelDigest: (metadata.base_model_digest ?? binding.baseModelDigest) as Hex32 };
    checkBinding(metadata, OPTIMIZER_STATE, own, { optimizer });
    if (round >= binding.round) throw new StateFileError(`it is the state after round ${round}; round ${binding.round} starts from the state of an earlier round`);
    return decodeOptimizerState(file.bytes, optimizer, d, own);
  });
}

/** The output's author, checked before any work: an address, or the zero address when none is given. */
function producerOf(producer: string | undefined): string {
  if (producer === undefined) return ZeroAddress;
  if (!isAddress(producer)) throw new OfflineAggregationError(`--producer: expected an address (0x and 40 hex digits), found ${JSON.stringify(producer)}`);
  return getAddress(producer);
}

/** Aggregates the files with the rule (and optimiser); throws OfflineAggregationError naming the first file that does not fit. */
export function aggregateFiles(files: readonly NamedFile[], options: OfflineOptions): OfflineResult {
  if (files.length === 0) throw new OfflineAggregationError("expected at least one update file, found none");
  const producer = producerOf(options.producer);
  const base = options.base ? decodeNamed(options.base) : undefined;
  if (base && base.metadata.kind !== "model") throw new OfflineAggregationError(`${options.base!.name}: expected a model file as --base, found a ${base.metadata.kind}`);
  const shapes = (base ?? decodeNamed(files[0])).tensors.map(({ name, shape }) => ({ name, shape }));
  const decoded = files.map((f) => ({ file: f, update: decodeNamed(f, shapes) }));
  const first = decoded[0].update.metadata;
  const baseDigest: Hex32 = options.base ? sha256Digest(options.base.bytes) : first.baseModelDigest;
  const sources = new Map<string, string>();
  for (const { file, update } of decoded) {
    const m = update.metadata;
    const mismatch =
      m.kind !== "delta"
        ? `is a ${m.kind}, expected a delta`
        : m.baseModelDigest !== baseDigest
          ? `was trained from model ${m.baseModelDigest}, expected ${baseDigest}`
          : m.modelSpecDigest !== first.modelSpecDigest
            ? `is for model spec ${m.modelSpecDigest}, expected ${first.modelSpecDigest}`
            : m.taskId !== first.taskId || m.round !== first.round
              ? `is for task ${m.taskId} round ${m.round}, expected task ${first.taskId} round ${first.round}`
              : undefined;
    if (mismatch) throw new OfflineAggregationError(`${file.name} ${mismatch}`);
    const id = m.participant.toLowerCase();
    if (sources.has(id)) throw new OfflineAggregationError(`${file.name} and ${sources.get(id)} are both from ${m.participant}; give one update per participant`);
    sources.set(id, file.name);
  }
  const vectors = decoded.map(({ update }) => flatten(update.tensors));
  const binding: StateBinding = { taskId: first.taskId, round: first.round, modelSpecDigest: first.modelSpecDigest, baseModelDigest: baseDigest };
  const rule = getRule(options.rule.name);
  const serverUpdate = options.serverUpdate && readServerUpdate(options.serverUpdate, shapes, binding);
  if (rule.name === "fltrust" && !serverUpdate) {
    throw new OfflineAggregationError("rule fltrust measures every update against the round's server update, and none was given", {
      hint: "pass the fltrust-server-update file the round's report names with --server-update <file>",
    });
  }
  if (serverUpdate && rule.name !== "fltrust") throw new OfflineAggregationError(`${options.serverUpdate!.name}: a server update serves rule fltrust only, and the rule is ${rule.name}`);
  const optimizer = options.optimizer && startOptimizer(options.optimizer, vectors[0].length, binding, options.base);

  const result = aggregate(
    rule.name,
    decoded.map(({ update }, i) => ({ id: update.metadata.participant.toLowerCase(), numSamples: update.metadata.numSamples, vector: vectors[i] })),
    options.rule.params,
    { serverUpdate: serverUpdate?.update },
  );
  const server = optimizer && optimizer.spec.step(result.aggregate, optimizer.previous, optimizer.params);
  const step = server?.delta ?? result.aggregate;
  // float32 addition, element by element, as the aggregator builds the round's model.
  const out = new Float32Array(step.length);
  const baseVector = base ? flatten(base.tensors) : undefined;
  for (let i = 0; i < out.length; i++) out[i] = (baseVector ? baseVector[i] : 0) + step[i];
  const numSamples = decoded.reduce((sum, { update }) => sum + update.metadata.numSamples, 0);
  const bytes = encodeUpdate(unflatten(out, shapes), {
    taskId: first.taskId,
    round: first.round,
    participant: producer,
    baseModelDigest: baseDigest,
    numSamples,
    kind: base ? "model" : "delta",
    modelSpecDigest: first.modelSpecDigest,
    extra: {},
  });
  return {
    bytes,
    kind: base ? "model" : "delta",
    aggregation: result,
    sources,
    ...(server ? { state: encodeOptimizerState(server.state, { name: optimizer!.spec.name, params: optimizer!.params }, binding) } : {}),
    ...(serverUpdate ? { serverUpdate: { rootData: serverUpdate.rootData, backend: serverUpdate.backend } } : {}),
  };
}

/** The optimiser, its checked parameters and the state the round starts from. */
function startOptimizer(choice: NonNullable<OfflineOptions["optimizer"]>, d: number, binding: StateBinding, base: NamedFile | undefined) {
  const spec = getServerOptimiser(choice.name);
  const params = parseParams(spec, choice.params);
  if (!base) throw new OfflineAggregationError(`server optimiser ${spec.name} steps the model, so it needs the base model file`, { hint: "pass the round's base model with --base <file>" });
  const previous = choice.state ? readPreviousState(choice.state, spec.name, d, binding) : initialServerState(d, spec.secondMoment);
  return { spec, params, previous };
}
