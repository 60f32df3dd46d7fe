// Reading and writing AnchorFL update and model files: safetensors whose `__metadata__` is
// validated UpdateMetadata. This is the one codec the client, aggregator and auditors use.
import type { Tensor } from "../tensors.js";
import { decodeSafetensors, encodeSafetensors, type DecodeOptions } from "./safetensors.js";
import { formatUpdateMetadata, parseUpdateMetadata, type UpdateMetadata } from "./update-metadata.js";

export interface UpdateFile {
  /** In canonical order, each with a fresh Float32Array. */
  readonly tensors: Tensor[];
  readonly metadata: UpdateMetadata;
}

/** Encodes weights and metadata to canonical bytes: same inputs, same bytes, same digest. */
export function encodeUpdate(tensors: readonly Tensor[], metadata: UpdateMetadata): Uint8Array {
  return encodeSafetensors(tensors, formatUpdateMetadata(metadata));
}

/** Decodes and validates an update or model file; throws SafetensorsError (or its subclass UpdateMetadataError). */
export function decodeUpdate(bytes: Uint8Array, options: DecodeOptions = {}): UpdateFile {
  const { tensors, metadata } = decodeSafetensors(bytes, options);
  return { tensors, metadata: parseUpdateMetadata(metadata) };
}
