// Error feedback for top-k compression: what a client did not send this round (its residual) is
// added to its next round's delta, so small coordinates are delayed rather than dropped for good
// (Stich et al., "Sparsified SGD with memory", 2018). The residual must outlive the process, so it
// is kept next to the journal, one safetensors file per participant, deployment and task,
// replaced durably (temp file, fsync, rename) once the update it belongs to is committed. Before
// the commit nothing was sent, so the old residual stays; a crash between the commit landing and
// the write keeps the old one too, which then counts once more in the next round (bounded).
//
// A residual file that cannot be used (corrupt, another spec's shapes, another task's key) is
// moved aside with a warning and the client starts from a zero residual: losing a residual costs
// a little accuracy and never stake, while refusing to run would cost the round. Nothing is
// deleted, so the file can still be inspected.
import { readFile, rename } from "node:fs/promises";
import path from "node:path";
import { getAddress } from "ethers";
import { decodeSafetensors, encodeSafetensors } from "../../lib/codec/safetensors.js";
import { AnchorFLError } from "../../lib/errors.js";
import { flatten, unflatten, type TensorShape } from "../../lib/tensors.js";
import { writeFileDurably } from "./journal.js";

const RESIDUAL_FORMAT = "anchorfl.residual.v1";

/** Whose residual, for which task: written into the file and checked on reading. */
export interface ResidualKey {
  readonly chainId: bigint;
  readonly coordinator: string;
  readonly taskId: bigint;
  readonly participant: string;
  readonly modelSpecDigest: string;
}

export interface StoredResidual {
  /** The round whose update left this residual. */
  readonly round: bigint;
  /** Flat, in canonical tensor order. */
  readonly values: Float32Array;
}

/** <journal folder>/<journal name>.residual-<chain>-<coordinator>-<task>.safetensors */
export function residualPath(journalFile: string, key: Pick<ResidualKey, "chainId" | "coordinator" | "taskId">): string {
  const base = path.basename(journalFile, ".json");
  return path.join(path.dirname(journalFile), `${base}.residual-${key.chainId}-${getAddress(key.coordinator)}-${key.taskId}.safetensors`);
}

const keyStrings = (key: ResidualKey): Record<string, string> => ({
  anchorfl_format: RESIDUAL_FORMAT,
  chain_id: String(key.chainId),
  coordinator: getAddress(key.coordinator),
  task_id: String(key.taskId),
  participant: getAddress(key.participant),
  model_spec_digest: key.modelSpecDigest.toLowerCase(),
});

/** Replaces the residual file durably. */
export async function writeResidual(file: string, key: ResidualKey, shapes: readonly TensorShape[], residual: StoredResidual): Promise<void> {
  const bytes = encodeSafetensors(unflatten(residual.values, shapes), { ...keyStrings(key), round: String(residual.round) });
  await writeFileDurably(file, bytes);
}

export class ResidualFileError extends AnchorFLError {}

/**
 * The stored residual, or undefined when there is none. An unusable file is moved aside
 * (`<file>.unusable-<time>`), `warn` says why, and undefined is returned.
 */
export async function readResidual(file: string, key: ResidualKey, shapes: readonly TensorShape[], warn: (line: string) => void): Promise<StoredResidual | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ResidualFileError(`cannot read the error-feedback residual ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return parseResidual(bytes, key, shapes);
  } catch (error) {
    if (!(error instanceof AnchorFLError)) throw error;
    const aside = `${file}.unusable-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    await rename(file, aside);
    warn(`the error-feedback residual ${file} is unusable (${error.message.split("\n")[0]}); moved it to ${aside} and starting from a zero residual`);
    return undefined;
  }
}

/** Decodes a residual file strictly: the task's shapes, finite values, this key. */
export function parseResidual(bytes: Uint8Array, key: ResidualKey, shapes: readonly TensorShape[]): StoredResidual {
  const { tensors, metadata } = decodeSafetensors(bytes, { expected: shapes });
  for (const [name, value] of Object.entries(keyStrings(key))) {
    if (metadata[name] !== value) throw new ResidualFileError(`its ${name} is ${JSON.stringify(metadata[name])}, expected ${JSON.stringify(value)}`);
  }
  if (!/^(0|[1-9][0-9]*)$/.test(metadata.round ?? "")) throw new ResidualFileError(`its round is ${JSON.stringify(metadata.round)}, expected a decimal integer`);
  return { round: BigInt(metadata.round), values: flatten(tensors) };
}
