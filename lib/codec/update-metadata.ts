// The metadata every AnchorFL update or model file carries in its safetensors `__metadata__`
// (which holds strings only). It binds the weights to their task, round, author and base model,
// so a file cannot be replayed into another round or task unnoticed. Each value has exactly one
// accepted spelling, so parsing and re-formatting gives back the same strings (and bytes).
// Keys outside the required set are kept as `extra` (e.g. training telemetry), except the
// optional `compression`, which says how a delta's tensors are stored (see compression.ts).
import { getAddress } from "ethers";
import type { Hex32 } from "../digest.js";
import { SafetensorsError } from "./errors.js";

export const FORMAT_VERSION = "anchorfl/1";

export type UpdateKind = "delta" | "model";

/** How a compressed delta stores its tensors; absent: float32, one F32 tensor per weight. */
export const COMPRESSION_SCHEMES = ["f16", "i8", "topk"] as const;
export type CompressionScheme = (typeof COMPRESSION_SCHEMES)[number];

export interface UpdateMetadata {
  readonly taskId: bigint;
  readonly round: bigint;
  /** Who produced the file: the participant for a delta, the aggregator for a model. */
  readonly participant: string;
  /** sha-256 digest of the model file this update was trained from (zero for an initial model). */
  readonly baseModelDigest: Hex32;
  readonly numSamples: number;
  readonly kind: UpdateKind;
  /** Digest of the task's model spec (tensor names and shapes). */
  readonly modelSpecDigest: Hex32;
  /** Deltas only: the compression scheme of the stored tensors (absent: float32). */
  readonly compression?: CompressionScheme;
  /** Any further string keys, kept verbatim. */
  readonly extra: Readonly<Record<string, string>>;
}

/** The keys AnchorFL itself writes; `extra` may not reuse them. */
export const REQUIRED_KEYS = [
  "anchorfl_format",
  "task_id",
  "round",
  "participant",
  "base_model_digest",
  "num_samples",
  "kind",
  "model_spec_digest",
] as const;

/** Keys AnchorFL writes only when they apply; `extra` may not reuse them either. */
const OPTIONAL_KEYS = ["compression"] as const;

/** A malformed or missing AnchorFL metadata value; `key` names the metadata key. */
export class UpdateMetadataError extends SafetensorsError {
  readonly key: string;

  constructor(key: string, expected: string, found: unknown) {
    super("bad-metadata", `metadata ${JSON.stringify(key)} must be ${expected}, found ${found === undefined ? "nothing" : JSON.stringify(found)}`, {
      details: { key, expected, found },
    });
    this.key = key;
  }
}

const UINT256_MAX = (1n << 256n) - 1n;
const DECIMAL = /^(0|[1-9][0-9]*)$/;
const HEX32 = /^0x[0-9a-f]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** Turns metadata into the string map written to `__metadata__`, validating every value. */
export function formatUpdateMetadata(meta: UpdateMetadata): Record<string, string> {
  for (const key of Object.keys(meta.extra)) {
    if (hasOwnField(key)) throw new UpdateMetadataError(key, "set by its own field, not in extra", meta.extra[key]);
  }
  const strings: Record<string, string> = {
    ...meta.extra,
    anchorfl_format: FORMAT_VERSION,
    task_id: String(meta.taskId),
    round: String(meta.round),
    participant: canonicalAddress(meta.participant),
    base_model_digest: meta.baseModelDigest.toLowerCase(),
    num_samples: String(meta.numSamples),
    kind: meta.kind,
    model_spec_digest: meta.modelSpecDigest.toLowerCase(),
    ...(meta.compression !== undefined ? { compression: meta.compression } : {}),
  };
  // Parsing is the one definition of "valid": what it accepts is exactly what may be written.
  parseUpdateMetadata(strings);
  return strings;
}

/** Validates the string map read from `__metadata__` and returns typed metadata. */
export function parseUpdateMetadata(strings: Readonly<Record<string, string>>): UpdateMetadata {
  const get = (key: (typeof REQUIRED_KEYS)[number]): string | undefined => (Object.hasOwn(strings, key) ? strings[key] : undefined);
  const format = get("anchorfl_format");
  if (format !== FORMAT_VERSION) throw new UpdateMetadataError("anchorfl_format", JSON.stringify(FORMAT_VERSION), format);
  const kind = get("kind");
  if (kind !== "delta" && kind !== "model") throw new UpdateMetadataError("kind", '"delta" or "model"', kind);
  const numSamples = decimal("num_samples", get("num_samples"), BigInt(Number.MAX_SAFE_INTEGER));
  const compression = Object.hasOwn(strings, "compression") ? strings.compression : undefined;
  if (compression !== undefined && !(kind === "delta" && (COMPRESSION_SCHEMES as readonly string[]).includes(compression))) {
    throw new UpdateMetadataError("compression", kind === "delta" ? `one of ${COMPRESSION_SCHEMES.join(", ")} (or absent)` : "absent: models are always float32", compression);
  }
  const extra = Object.fromEntries(Object.entries(strings).filter(([k]) => !hasOwnField(k)));
  return {
    taskId: decimal("task_id", get("task_id"), UINT256_MAX),
    round: decimal("round", get("round"), UINT256_MAX),
    participant: address("participant", get("participant")),
    baseModelDigest: hex32("base_model_digest", get("base_model_digest")),
    numSamples: Number(numSamples),
    kind,
    modelSpecDigest: hex32("model_spec_digest", get("model_spec_digest")),
    ...(compression !== undefined ? { compression: compression as CompressionScheme } : {}),
    extra,
  };
}

function decimal(key: string, value: string | undefined, max: bigint): bigint {
  const n = value !== undefined && DECIMAL.test(value) ? BigInt(value) : undefined;
  if (n === undefined || n > max) throw new UpdateMetadataError(key, `a decimal integer from 0 to ${max} without leading zeros`, value);
  return n;
}

function hex32(key: string, value: string | undefined): Hex32 {
  if (value === undefined || !HEX32.test(value)) throw new UpdateMetadataError(key, "0x followed by 64 lowercase hex digits", value);
  return value as Hex32;
}

function address(key: string, value: string | undefined): string {
  if (value === undefined || !ADDRESS.test(value)) throw new UpdateMetadataError(key, "an address (0x followed by 40 hex digits)", value);
  // One spelling only: the EIP-55 checksummed form, which is what formatting writes.
  const checksummed = canonicalAddress(value);
  if (checksummed !== value) throw new UpdateMetadataError(key, `the checksummed address ${checksummed}`, value);
  return checksummed;
}

function canonicalAddress(value: string): string {
  return ADDRESS.test(value) ? getAddress(value.toLowerCase()) : value;
}

/** Keys with a field of their own (required or optional), never part of `extra`. */
function hasOwnField(key: string): boolean {
  return (REQUIRED_KEYS as readonly string[]).includes(key) || (OPTIONAL_KEYS as readonly string[]).includes(key);
}
