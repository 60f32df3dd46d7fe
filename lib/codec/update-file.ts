// Reading and writing AnchorFL update and model files: safetensors whose `__metadata__` is
// validated UpdateMetadata. This is the one codec the client, aggregator and auditors use.
// A delta may be compressed (metadata `compression`, see compression.ts); decoding always
// returns the dense float32 tensors, so every reader downstream sees the same kind of update.
import type { CompressionOption } from "../protocol/options.js";
import { elementCount, type Tensor } from "../tensors.js";
import { compressTensors, compressionMismatch, decompressTensors } from "./compression.js";
import { SafetensorsError } from "./errors.js";
import { decodeStoredSafetensors, denseTensors, encodeSafetensors, encodeStoredSafetensors, type DecodeOptions } from "./safetensors.js";
import { formatUpdateMetadata, parseUpdateMetadata, type UpdateMetadata } from "./update-metadata.js";

export interface UpdateFile {
  /** In canonical order, each with a fresh Float32Array (dense, whatever the file's compression). */
  readonly tensors: Tensor[];
  readonly metadata: UpdateMetadata;
}

export interface DecodeUpdateOptions extends DecodeOptions {
  /**
   * The task's compression, when the caller must hold the file to it (the aggregator): the file
   * must use exactly this scheme ("none": float32) within its budget, else a SafetensorsError
   * with reason "compression-mismatch". Needs `expected`. Omitted: any encoding is read.
   */
  readonly compression?: CompressionOption | "none";
}

/**
 * Encodes weights and metadata to canonical bytes: same inputs, same bytes, same digest. With a
 * compression option (deltas only) the tensors are stored that way and the metadata says so.
 */
export function encodeUpdate(tensors: readonly Tensor[], metadata: UpdateMetadata, compression?: CompressionOption): Uint8Array {
  if (metadata.compression !== undefined && metadata.compression !== compression?.scheme) {
    throw new SafetensorsError("bad-metadata", `metadata says compression ${metadata.compression} but the tensors are encoded as ${compression?.scheme ?? "float32"}`);
  }
  if (!compression) return encodeSafetensors(tensors, formatUpdateMetadata(metadata));
  const strings = formatUpdateMetadata({ ...metadata, compression: compression.scheme });
  return encodeStoredSafetensors(compressTensors(tensors, compression), strings);
}

/** Decodes and validates an update or model file; throws SafetensorsError (or its subclass UpdateMetadataError). */
export function decodeUpdate(bytes: Uint8Array, options: DecodeUpdateOptions = {}): UpdateFile {
  const { tensors: stored, metadata: strings } = decodeStoredSafetensors(bytes, options);
  const metadata = parseUpdateMetadata(strings);
  if (options.compression !== undefined) {
    const option = options.compression === "none" ? undefined : options.compression;
    const n = (options.expected ?? []).reduce((sum, s) => sum + elementCount(s.shape), 0);
    const problem = compressionMismatch(metadata.compression, stored, option, n);
    if (problem) throw new SafetensorsError("compression-mismatch", problem, { details: { found: metadata.compression ?? "none", expected: option?.scheme ?? "none" } });
  }
  const tensors = metadata.compression ? decompressTensors(stored, metadata.compression, options.expected) : denseTensors(stored, options.expected);
  return { tensors, metadata };
}
