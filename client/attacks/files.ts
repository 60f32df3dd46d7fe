// Malformed update files: valid encoded bytes in, bytes a strict decoder must refuse out.
// Works on the raw safetensors framing (u64 little-endian header length, JSON header, data)
// so it does not depend on the codec it is meant to test.
import { AnchorFLError } from "../../lib/errors.js";

export class MalformedFileError extends AnchorFLError {}

export const CORRUPTIONS = ["nan", "truncate", "wrong-shape", "bad-header"] as const;
export type Corruption = (typeof CORRUPTIONS)[number];

interface Framing {
  readonly headerLength: number;
  readonly header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
}

function readFraming(bytes: Uint8Array): Framing {
  if (bytes.length < 8) throw new MalformedFileError(`expected a safetensors file to corrupt, found only ${bytes.length} bytes`);
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true));
  if (8 + headerLength > bytes.length) throw new MalformedFileError(`expected a valid safetensors file to corrupt, found a header length ${headerLength} beyond the file`);
  return { headerLength, header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) };
}

function tensorEntries(f: Framing) {
  return Object.entries(f.header).filter(([name]) => name !== "__metadata__") as [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][];
}

/** Writes the header back (space-padded to 8 bytes, as safetensors writers do) in front of the same data. */
function withHeader(bytes: Uint8Array, f: Framing, header: Framing["header"]): Uint8Array {
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const data = bytes.subarray(8 + f.headerLength);
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

/**
 * Corrupts a valid update file:
 * - "nan": the first value stored in the data section becomes NaN (framing stays valid);
 * - "truncate": the last 4 bytes are cut off, so the data is shorter than the header says;
 * - "wrong-shape": the first tensor's shape is reversed (or [n] becomes [1, n]): the file is
 *   self-consistent but no longer matches the model;
 * - "bad-header": the header length field points past the end of the file.
 */
export function corruptUpdateFile(bytes: Uint8Array, corruption: Corruption): Uint8Array {
  const f = readFraming(bytes);
  const entries = tensorEntries(f);
  if (entries.length === 0) throw new MalformedFileError("expected at least one tensor in the file to corrupt, found none");
  switch (corruption) {
    case "nan": {
      const nonEmpty = entries.filter(([, e]) => e.data_offsets[1] > e.data_offsets[0]);
      if (nonEmpty.length === 0) throw new MalformedFileError("expected a tensor with at least one value to put a NaN in, found only empty tensors");
      const [, first] = nonEmpty.reduce((a, b) => (b[1].data_offsets[0] < a[1].data_offsets[0] ? b : a));
      const out = bytes.slice();
      new DataView(out.buffer).setFloat32(8 + f.headerLength + first.data_offsets[0], Number.NaN, true);
      return out;
    }
    case "truncate":
      return bytes.slice(0, bytes.length - 4);
    case "wrong-shape": {
      const reversible = ([, e]: (typeof entries)[number]) => e.shape.join() !== [...e.shape].reverse().join();
      const [name, entry] = entries.find(reversible) ?? entries[0];
      const shape = reversible([name, entry]) ? [...entry.shape].reverse() : [1, ...entry.shape];
      return withHeader(bytes, f, { ...f.header, [name]: { ...entry, shape } });
    }
    case "bad-header": {
      const out = bytes.slice();
      new DataView(out.buffer).setBigUint64(0, BigInt(bytes.length), true);
      return out;
    }
    default:
      throw new MalformedFileError(`expected a corruption among ${CORRUPTIONS.join(", ")}, found "${corruption as string}"`);
  }
}
