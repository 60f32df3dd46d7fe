// Canonical JSON: object keys sorted (code-unit order), no whitespace, bigints as decimal
// strings. Numbers use ECMAScript's Number-to-string rule, which is exactly specified, so the
// same value gives the same bytes on every machine. Used wherever JSON is hashed.
import { AnchorFLError } from "./errors.js";

export class CanonicalJsonError extends AnchorFLError {}

export function canonicalJson(value: unknown): string {
  return encode(value, "$");
}

function encode(value: unknown, at: string): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "bigint":
      return JSON.stringify(value.toString());
    case "number":
      if (!Number.isFinite(value)) throw new CanonicalJsonError(`${at} is ${value}; canonical JSON holds finite numbers only`);
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map((v, i) => encode(v, `${at}[${i}]`)).join(",")}]`;
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${encode(v, `${at}.${k}`)}`).join(",")}}`;
    }
    default:
      throw new CanonicalJsonError(`${at} is a ${typeof value}, which JSON cannot hold`);
  }
}

/** Canonical JSON as UTF-8 bytes, the form that is hashed and stored. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value));
}
