// The one place AnchorFL computes content digests. An update's digest is the sha-256 of its
// file bytes: it is what participants commit to, what the chain stores, and (for files of one
// raw block) the multihash inside the file's CID, so every tool must compute it the same way.
import { createHash } from "node:crypto";

/** A 32-byte value as 0x-prefixed lowercase hex (Solidity bytes32). */
export type Hex32 = `0x${string}`;

/** sha-256 of the bytes as 0x-prefixed lowercase hex. */
export function sha256Digest(bytes: Uint8Array): Hex32 {
  return `0x${createHash("sha256").update(bytes).digest("hex")}`;
}
