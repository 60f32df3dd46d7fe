// Aggregating update files without a chain (`anchorfl aggregate-files`): for reproducing a
// round from its files and for experiments. The files must be deltas of one model (same spec,
// same base model, one per participant); the chosen rule combines them in canonical order, and
// the result is written as safetensors: the new model when the base model file is given, else
// the aggregate delta.
import { ZeroAddress, getAddress } from "ethers";
import { aggregate, type AggregationResult, type RawParams } from "../aggregation/index.js";
import { decodeUpdate, encodeUpdate, type UpdateFile } from "../codec/update-file.js";
import { sha256Digest, type Hex32 } from "../digest.js";
import { AnchorFLError } from "../errors.js";
import { flatten, unflatten, type TensorShape } from "../tensors.js";

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
}

export interface OfflineResult {
  readonly bytes: Uint8Array;
  readonly kind: "model" | "delta";
  readonly aggregation: AggregationResult;
  /** Participant id (lowercase address) to the file it came from. */
  readonly sources: ReadonlyMap<string, string>;
}

function decodeNamed(file: NamedFile, expected?: readonly TensorShape[]): UpdateFile {
  try {
    return decodeUpdate(file.bytes, expected ? { expected } : {});
  } catch (error) {
    if (!(error instanceof AnchorFLError)) throw error;
    throw new OfflineAggregationError(`${file.name}: ${error.message}`, { cause: error });
  }
}

/** Aggregates the files with the rule; throws OfflineAggregationError naming the first file that does not fit. */
export function aggregateFiles(files: readonly NamedFile[], options: OfflineOptions): OfflineResult {
  if (files.length === 0) throw new OfflineAggregationError("expected at least one update file, found none");
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
  const result = aggregate(
    options.rule.name,
    decoded.map(({ update }) => ({ id: update.metadata.participant.toLowerCase(), numSamples: update.metadata.numSamples, vector: flatten(update.tensors) })),
    options.rule.params,
  );
  const out = new Float32Array(result.aggregate.length);
  const baseVector = base ? flatten(base.tensors) : undefined;
  for (let i = 0; i < out.length; i++) out[i] = (baseVector ? baseVector[i] : 0) + result.aggregate[i];
  const numSamples = decoded.reduce((sum, { update }) => sum + update.metadata.numSamples, 0);
  const bytes = encodeUpdate(unflatten(out, shapes), {
    taskId: first.taskId,
    round: first.round,
    participant: getAddress(options.producer ?? ZeroAddress),
    baseModelDigest: baseDigest,
    numSamples,
    kind: base ? "model" : "delta",
    modelSpecDigest: first.modelSpecDigest,
    extra: {},
  });
  return { bytes, kind: base ? "model" : "delta", aggregation: result, sources };
}
