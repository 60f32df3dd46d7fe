// The safetensors codec for model weights and updates (format: huggingface/safetensors): an
// 8-byte little-endian header length N, N bytes of UTF-8 JSON header naming each tensor's dtype,
// shape and byte range, then the raw little-endian data. Pure functions, no I/O.
//
// Encoding is canonical so the same weights always give the same bytes, hence the same sha-256
// digest that is committed on-chain: tensors sorted by name, metadata keys sorted, fixed key
// order inside entries, no whitespace, header padded with spaces to a multiple of 8 (as the
// reference writer does, which also keeps the data 8-byte aligned in the file).
//
// Decoding is strict because update files come from untrusted participants: every length is
// checked against the bytes actually present before anything is allocated, and any deviation
// from what the encoder could have written is a SafetensorsError naming the cause.
import { canonicalOrder, compareNames, type Tensor, type TensorShape } from "../tensors.js";
import { SafetensorsError } from "./errors.js";
import { parseHeaderJson, type JsonObject, type JsonValue } from "./header-json.js";

export { SafetensorsError, type SafetensorsReason } from "./errors.js";

/** Default bound on the JSON header: far above any real model's header, far below a memory problem. */
export const MAX_HEADER_BYTES = 1024 * 1024;
/** Highest tensor rank accepted; real layers use at most 4 or 5. */
export const MAX_RANK = 16;
const METADATA_KEY = "__metadata__";
// root object -> tensor entry -> shape array: nothing in a valid header nests deeper.
const MAX_HEADER_DEPTH = 3;

// Data is copied straight between Float32Array and file bytes, which is only right on a
// little-endian host (every platform Node ships for today); fail loudly rather than corrupt.
if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error("the safetensors codec needs a little-endian host");
}

/**
 * A tensor as stored, in one of the dtypes AnchorFL writes: F32 for weights and dense updates;
 * F16, I8 and I32 only inside compressed updates (see compression.ts), where F16 data is kept
 * as its raw bit patterns.
 */
export type StoredTensor = TensorShape &
  (
    | { readonly dtype: "F32"; readonly data: Float32Array }
    | { readonly dtype: "F16"; readonly data: Uint16Array }
    | { readonly dtype: "I8"; readonly data: Int8Array }
    | { readonly dtype: "I32"; readonly data: Int32Array }
  );
export type Dtype = StoredTensor["dtype"];

interface DtypeCodec {
  readonly size: number;
  /** Wraps a fresh, aligned copy of the dtype's raw bytes in its typed array. */
  readonly read: (raw: Uint8Array) => StoredTensor["data"];
  readonly holds: (data: ArrayBufferView) => boolean;
}

// The dtypes this codec reads and writes; anything else is refused as unsupported.
const DTYPES: Readonly<Record<Dtype, DtypeCodec>> = {
  F32: { size: 4, read: (raw) => new Float32Array(copyBytes(raw).buffer), holds: (d) => d instanceof Float32Array },
  F16: { size: 2, read: (raw) => new Uint16Array(copyBytes(raw).buffer), holds: (d) => d instanceof Uint16Array },
  I8: { size: 1, read: (raw) => new Int8Array(copyBytes(raw).buffer), holds: (d) => d instanceof Int8Array },
  I32: { size: 4, read: (raw) => new Int32Array(copyBytes(raw).buffer), holds: (d) => d instanceof Int32Array },
};

/** A copy in a new ArrayBuffer of its own. (Not `raw.slice()`: on a Node Buffer that is a view.) */
function copyBytes(raw: Uint8Array): Uint8Array {
  const out = new Uint8Array(raw.length);
  out.set(raw);
  return out;
}

export interface DecodeOptions {
  /** When given, the file must hold exactly these tensors with exactly these shapes. */
  readonly expected?: readonly TensorShape[];
  readonly maxHeaderBytes?: number;
}

export interface DecodedSafetensors {
  /** In canonical order; each tensor's data is a fresh Float32Array owned by the caller. */
  readonly tensors: Tensor[];
  readonly metadata: Record<string, string>;
}

export interface DecodedStored {
  /** In canonical order, each in its stored dtype, with fresh data owned by the caller; F32 and F16 values are finite. */
  readonly tensors: StoredTensor[];
  readonly metadata: Record<string, string>;
}

interface Entry {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Encodes float32 tensors (any order; written sorted by name) and string metadata as safetensors. */
export function encodeSafetensors(tensors: readonly Tensor[], metadata: Readonly<Record<string, string>>): Uint8Array {
  tensors.forEach((t) => {
    if (!(t.data instanceof Float32Array)) throw new SafetensorsError("bad-tensor", `tensor ${JSON.stringify(t.name)} data must be a Float32Array`);
  });
  return encodeStoredSafetensors(
    tensors.map((t) => ({ ...t, dtype: "F32" as const })),
    metadata,
  );
}

/** Encodes tensors of any written dtype (any order; written sorted by name) and string metadata as safetensors. */
export function encodeStoredSafetensors(tensors: readonly StoredTensor[], metadata: Readonly<Record<string, string>>): Uint8Array {
  const ordered = canonicalOrder(tensors);
  checkEncodable(ordered);
  checkMetadataValues(metadata);
  const header = paddedHeader(ordered, metadata);
  const dataBytes = ordered.reduce((n, t) => n + t.data.byteLength, 0);
  const out = new Uint8Array(8 + header.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  let offset = 8 + header.length;
  for (const t of ordered) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), offset);
    offset += t.data.byteLength;
  }
  return out;
}

function checkEncodable(ordered: readonly StoredTensor[]): void {
  ordered.forEach((t, i) => {
    if (i > 0 && ordered[i - 1].name === t.name) {
      throw new SafetensorsError("duplicate-name", `two tensors are named ${JSON.stringify(t.name)}; names must be unique`, { details: { name: t.name } });
    }
    if (t.name === METADATA_KEY) {
      throw new SafetensorsError("bad-tensor", `a tensor may not be named ${METADATA_KEY}: the format reserves that key`);
    }
    const codec = Object.hasOwn(DTYPES, t.dtype) ? DTYPES[t.dtype] : undefined;
    if (!codec) throw new SafetensorsError("unsupported-dtype", `tensor ${JSON.stringify(t.name)} has dtype ${JSON.stringify(t.dtype)}; this writer knows ${Object.keys(DTYPES).join(", ")}`);
    if (!codec.holds(t.data)) throw new SafetensorsError("bad-tensor", `tensor ${JSON.stringify(t.name)} of dtype ${t.dtype} has the wrong kind of typed array`);
    const count = checkShape(t.name, t.shape, Number.MAX_SAFE_INTEGER, "bad-tensor");
    if (count !== t.data.length) {
      throw new SafetensorsError("bad-tensor", `tensor ${JSON.stringify(t.name)} has shape [${t.shape.join(", ")}] (${count} values) but ${t.data.length} values of data`, {
        details: { name: t.name, expected: count, found: t.data.length },
      });
    }
    checkStoredFinite(t);
  });
}

function checkMetadataValues(metadata: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== "string") {
      throw new SafetensorsError("bad-metadata", `metadata ${JSON.stringify(key)} must be a string, found ${typeof value}`, { details: { key } });
    }
  }
}

function paddedHeader(ordered: readonly StoredTensor[], metadata: Readonly<Record<string, string>>): Uint8Array {
  const parts: string[] = [];
  const keys = Object.keys(metadata).sort(compareNames);
  if (keys.length > 0) {
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(",")}}`);
  }
  let offset = 0;
  for (const t of ordered) {
    const end = offset + t.data.byteLength;
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(",")}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const padded = json.length + ((8 - (json.length % 8)) % 8);
  if (padded > MAX_HEADER_BYTES) {
    throw new SafetensorsError("header-too-large", `the header would take ${padded} bytes; readers accept at most ${MAX_HEADER_BYTES}`, {
      hint: "move bulky metadata into its own file",
      details: { expected: MAX_HEADER_BYTES, found: padded },
    });
  }
  const out = new Uint8Array(padded).fill(0x20);
  out.set(json);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Decodes and fully validates a float32 safetensors file; throws SafetensorsError on anything else. */
export function decodeSafetensors(bytes: Uint8Array, options: DecodeOptions = {}): DecodedSafetensors {
  const { tensors, metadata } = decodeStoredSafetensors(bytes, options);
  return { tensors: denseTensors(tensors, options.expected), metadata };
}

/**
 * The float32 tensors of a file, checked against the expected shapes when given. The other
 * dtypes appear only in compressed updates, whose own decoder (compression.ts) reads them.
 */
export function denseTensors(stored: readonly StoredTensor[], expected?: readonly TensorShape[]): Tensor[] {
  const other = stored.find((t) => t.dtype !== "F32");
  if (other) {
    throw new SafetensorsError("unsupported-dtype", `tensor ${JSON.stringify(other.name)} has dtype ${other.dtype}; weights and uncompressed updates are F32 only`, {
      hint: "F16, I8 and I32 tensors belong in updates whose metadata names their compression",
      details: { name: other.name, found: other.dtype },
    });
  }
  if (expected) checkExpected(stored, expected);
  return stored.map((t) => ({ name: t.name, shape: t.shape, data: t.data as Float32Array }));
}

/**
 * Decodes and validates a safetensors file's framing, header and layout, returning every tensor
 * in its stored dtype (F32, F16, I8, I32); float values must be finite. Shapes are not checked
 * here: that is up to the reader of the dtype (denseTensors, or the compression decoder).
 */
export function decodeStoredSafetensors(bytes: Uint8Array, options: Pick<DecodeOptions, "maxHeaderBytes"> = {}): DecodedStored {
  const headerLength = readHeaderLength(bytes, options.maxHeaderBytes ?? MAX_HEADER_BYTES);
  const header = parseHeader(bytes.subarray(8, 8 + headerLength));
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [key, value] of header) {
    if (key === METADATA_KEY) metadata = readMetadata(value);
    else entries.push(readEntry(key, value, dataLength));
  }
  checkLayout(entries, dataLength);
  const tensors = canonicalOrder(entries).map(
    (e) => ({ name: e.name, shape: e.shape, dtype: e.dtype, data: DTYPES[e.dtype].read(bytes.subarray(dataStart + e.begin, dataStart + e.end)) }) as StoredTensor,
  );
  tensors.forEach(checkStoredFinite);
  return { tensors, metadata };
}

function readHeaderLength(bytes: Uint8Array, maxHeaderBytes: number): number {
  if (bytes.length < 8) {
    throw new SafetensorsError("too-short", `file is ${bytes.length} bytes; a safetensors file starts with an 8-byte header length`, {
      details: { found: bytes.length },
    });
  }
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(maxHeaderBytes)) {
    throw new SafetensorsError("header-too-large", `header length is ${n} bytes; at most ${maxHeaderBytes} are accepted`, {
      details: { expected: maxHeaderBytes, found: n.toString() },
    });
  }
  if (n > BigInt(bytes.length - 8)) {
    throw new SafetensorsError("header-out-of-bounds", `header length is ${n} bytes but only ${bytes.length - 8} bytes follow it`, {
      details: { expected: n.toString(), found: bytes.length - 8 },
    });
  }
  return Number(n);
}

function parseHeader(raw: Uint8Array): JsonObject {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(raw);
  } catch (cause) {
    throw new SafetensorsError("header-not-utf8", "header is not valid UTF-8", { cause });
  }
  // The reference reader insists on '{' as the first byte; so do we, so both accept the same files.
  if (!text.startsWith("{")) {
    throw new SafetensorsError("header-not-object", `header must be a JSON object starting with '{', found ${JSON.stringify(text.slice(0, 12))}`);
  }
  return parseHeaderJson(text, MAX_HEADER_DEPTH) as JsonObject;
}

function readMetadata(value: JsonValue): Record<string, string> {
  if (!(value instanceof Map)) {
    throw new SafetensorsError("bad-metadata", `${METADATA_KEY} must be an object of strings, found ${jsonType(value)}`);
  }
  for (const [key, v] of value) {
    if (typeof v !== "string") {
      throw new SafetensorsError("bad-metadata", `${METADATA_KEY}.${JSON.stringify(key)} must be a string, found ${jsonType(v)}`, { details: { key } });
    }
  }
  // Object.fromEntries defines own properties, so a key like "__proto__" stays plain data.
  return Object.fromEntries(value) as Record<string, string>;
}

function readEntry(name: string, value: JsonValue, dataLength: number): Entry {
  const quoted = JSON.stringify(name);
  if (!(value instanceof Map)) {
    throw new SafetensorsError("bad-entry", `tensor ${quoted} must be an object, found ${jsonType(value)}`, { details: { name } });
  }
  const keys = [...value.keys()].sort(compareNames);
  if (keys.join() !== "data_offsets,dtype,shape") {
    throw new SafetensorsError("bad-entry", `tensor ${quoted} must have exactly the fields dtype, shape, data_offsets; found ${keys.join(", ") || "none"}`, {
      details: { name, found: keys },
    });
  }
  const dtypeName = value.get("dtype");
  if (typeof dtypeName !== "string") {
    throw new SafetensorsError("bad-entry", `tensor ${quoted} dtype must be a string, found ${jsonType(dtypeName)}`, { details: { name } });
  }
  const codec = Object.hasOwn(DTYPES, dtypeName) ? DTYPES[dtypeName as Dtype] : undefined;
  if (!codec) {
    throw new SafetensorsError("unsupported-dtype", `tensor ${quoted} has dtype ${JSON.stringify(dtypeName)}; this reader accepts ${Object.keys(DTYPES).join(", ")}`, {
      details: { name, found: dtypeName },
    });
  }
  const shape = value.get("shape");
  if (!Array.isArray(shape)) {
    throw new SafetensorsError("bad-shape", `tensor ${quoted} shape must be an array, found ${jsonType(shape)}`, { details: { name } });
  }
  const count = checkShape(name, shape, Math.floor(dataLength / codec.size), "bad-shape");
  const [begin, end] = readOffsets(name, value.get("data_offsets"));
  if (end - begin !== count * codec.size) {
    throw new SafetensorsError("offsets-length", `tensor ${quoted} spans ${end - begin} bytes but shape [${shape.join(", ")}] needs ${count * codec.size}`, {
      details: { name, expected: count * codec.size, found: end - begin },
    });
  }
  if (end > dataLength) {
    throw new SafetensorsError("bad-offsets", `tensor ${quoted} data_offsets [${begin}, ${end}] reach past the ${dataLength}-byte data region`, {
      details: { name, begin, end, dataLength },
    });
  }
  return { name, dtype: dtypeName as Dtype, shape: shape as number[], begin, end };
}

/** Checks a shape's dimensions and returns its element count, refusing counts above maxElements. */
function checkShape(name: string, shape: readonly unknown[], maxElements: number, reason: "bad-shape" | "bad-tensor"): number {
  const quoted = JSON.stringify(name);
  if (shape.length > MAX_RANK) {
    throw new SafetensorsError(reason, `tensor ${quoted} has rank ${shape.length}; at most ${MAX_RANK} is accepted`, { details: { name } });
  }
  const bad = shape.findIndex((d) => !Number.isSafeInteger(d) || (d as number) < 0);
  if (bad >= 0) {
    throw new SafetensorsError(reason, `tensor ${quoted} shape dimension ${bad} must be a non-negative integer, found ${JSON.stringify(shape[bad])}`, {
      details: { name, dimension: bad },
    });
  }
  const dims = shape as number[];
  if (dims.includes(0)) return 0;
  let count = 1;
  for (const d of dims) {
    count *= d;
    if (count > maxElements) {
      throw new SafetensorsError("too-many-elements", `tensor ${quoted} shape [${dims.join(", ")}] has more elements than the ${maxElements} the data can hold`, {
        details: { name, maxElements },
      });
    }
  }
  return count;
}

function readOffsets(name: string, offsets: JsonValue | undefined): [number, number] {
  const ok =
    Array.isArray(offsets) &&
    offsets.length === 2 &&
    offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0) &&
    (offsets[0] as number) <= (offsets[1] as number);
  if (!ok) {
    throw new SafetensorsError("bad-offsets", `tensor ${JSON.stringify(name)} data_offsets must be [begin, end] with 0 <= begin <= end, found ${JSON.stringify(offsets)}`, {
      details: { name },
    });
  }
  return [offsets[0] as number, offsets[1] as number];
}

/** Tensors must tile the data region exactly: from 0, back to back, to the last byte. */
function checkLayout(entries: readonly Entry[], dataLength: number): void {
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end || compareNames(a.name, b.name));
  let cursor = 0;
  let previous = "the start of the data";
  for (const e of byOffset) {
    if (e.begin !== cursor) {
      const gap = e.begin > cursor;
      throw new SafetensorsError(gap ? "offsets-gap" : "offsets-overlap", `tensor ${JSON.stringify(e.name)} starts at byte ${e.begin} but ${previous} ends at byte ${cursor}: ${gap ? "a gap" : "they overlap"}`, {
        details: { name: e.name, expected: cursor, found: e.begin },
      });
    }
    cursor = e.end;
    previous = `tensor ${JSON.stringify(e.name)}`;
  }
  if (cursor !== dataLength) {
    throw new SafetensorsError("data-size", `the tensors cover ${cursor} bytes of data but the file holds ${dataLength}: ${dataLength - cursor} trailing bytes`, {
      details: { expected: cursor, found: dataLength },
    });
  }
}

/** The tensors must be exactly the expected ones (names and shapes); a spec-mismatch error lists every difference. */
export function checkExpected(entries: readonly TensorShape[], expected: readonly TensorShape[]): void {
  const found = new Map(entries.map((e) => [e.name, e.shape]));
  const wanted = new Map(expected.map((s) => [s.name, s.shape]));
  const problems: string[] = [];
  const missing = [...wanted.keys()].filter((n) => !found.has(n)).sort(compareNames);
  const unexpected = [...found.keys()].filter((n) => !wanted.has(n)).sort(compareNames);
  const wrongShape = [...wanted.keys()]
    .filter((n) => found.has(n) && found.get(n)!.join() !== wanted.get(n)!.join())
    .sort(compareNames);
  if (missing.length > 0) problems.push(`missing ${missing.map((n) => JSON.stringify(n)).join(", ")}`);
  if (unexpected.length > 0) problems.push(`unexpected ${unexpected.map((n) => JSON.stringify(n)).join(", ")}`);
  for (const n of wrongShape) {
    problems.push(`${JSON.stringify(n)} has shape [${found.get(n)!.join(", ")}], expected [${wanted.get(n)!.join(", ")}]`);
  }
  if (problems.length > 0) {
    throw new SafetensorsError("spec-mismatch", `tensors do not match the model spec: ${problems.join("; ")}`, {
      details: { missing, unexpected, wrongShape },
    });
  }
}

/** Refuses NaN and infinities in F32 data, and the F16 bit patterns that mean them (exponent all ones). */
function checkStoredFinite(t: StoredTensor): void {
  if (t.dtype === "F32") checkFinite(t);
  if (t.dtype !== "F16") return;
  const bad = t.data.findIndex((bits) => (bits & 0x7c00) === 0x7c00);
  if (bad >= 0) nonFinite(t, bad, (t.data[bad] & 0x3ff) !== 0 ? NaN : t.data[bad] & 0x8000 ? -Infinity : Infinity);
}

/** Refuses NaN and infinities, naming the tensor and the first bad position. */
export function checkFinite(t: Tensor): void {
  const { data } = t;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) nonFinite(t, i, data[i]);
}

function nonFinite(t: TensorShape, index: number, value: number): never {
  throw new SafetensorsError("non-finite", `tensor ${JSON.stringify(t.name)} has ${value} at index ${index} (position [${position(index, t.shape).join(", ")}]); values must be finite`, {
    details: { name: t.name, index, value: String(value) },
  });
}

/** The multi-dimensional position of a flat (row-major) index. */
function position(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let k = shape.length - 1; k >= 0; k--) {
    out[k] = index % shape[k];
    index = Math.floor(index / shape[k]);
  }
  return out;
}

function jsonType(value: JsonValue | undefined): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (value instanceof Map) return "an object";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}
