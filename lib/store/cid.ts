// The content-addressing rules every AnchorFL store obeys, as pure functions: which CID a
// file gets, how a CID maps to the two bytes32 the contract stores, and how received bytes
// are checked against a reference. Every backend computes CIDs here, so a backend with
// different settings is caught instead of silently producing CIDs nobody else can rebuild.
//
// Rule (DESIGN.md): a file of at most 1 MiB is one raw block, CIDv1 raw + sha2-256, so its
// on-chain digest IS its CID. A larger file is UnixFS with fixed settings (CIDv1, raw
// leaves, fixed 1 MiB chunks, balanced layout with at most 174 children: Kubo's defaults
// for `--cid-version 1 --raw-leaves --chunker size-1048576`); the chain then stores the
// whole-file sha-256 (what the commitment binds) and the dag-pb root's digest (to find it).
import { importBytes, type WritableStorage } from "ipfs-unixfs-importer";
import { fixedSize } from "ipfs-unixfs-importer/chunker";
import { balanced } from "ipfs-unixfs-importer/layout";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { sha256Digest, type Hex32 } from "../digest.js";
import { IntegrityError, InvalidContentRefError } from "./errors.js";

/** What a `put` returns: the CID and its on-chain form. */
export interface StoredContent {
  /** CIDv1 string (base32). */
  cid: string;
  /** sha-256 of the whole file: what a commitment binds. */
  digest: Hex32;
  /** bytes32(0) for a one-block raw file, else the sha-256 of the UnixFS dag-pb root block. */
  contentRoot: Hex32;
  /** File length in bytes. */
  size: number;
}

/** A CID string, or the on-chain pair (`digest` is then also checked against the bytes). */
export type ContentRef = string | { digest: Hex32; contentRoot: Hex32 };

/** A reference resolved to the CID to fetch and the whole-file digest to expect, if known. */
export interface ResolvedRef {
  cid: CID;
  expectedDigest?: Hex32;
}

export const RAW_BLOCK_LIMIT = 1_048_576;
export const UNIXFS_CHUNK_SIZE = 1_048_576;
export const UNIXFS_MAX_CHILDREN = 174;
export const ZERO_ROOT: Hex32 = `0x${"00".repeat(32)}`;

const RAW_CODEC = 0x55;
const DAG_PB_CODEC = 0x70;
const SHA2_256 = 0x12;

/** The importer options that define AnchorFL's CIDs; passed explicitly, never defaulted. */
export function unixfsImportOptions() {
  return {
    cidVersion: 1 as const,
    rawLeaves: true,
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: UNIXFS_CHUNK_SIZE }),
    layout: balanced({ maxChildrenPerNode: UNIXFS_MAX_CHILDREN }),
  };
}

/** Chunks `bytes` with the fixed settings, writes the blocks to `blockstore`, returns the root CID. */
export async function importWithFixedSettings(bytes: Uint8Array, blockstore: WritableStorage): Promise<CID> {
  const { cid } = await importBytes(bytes, blockstore, unixfsImportOptions());
  return cid;
}

// A blockstore that keeps nothing: computing a CID needs the blocks hashed, not stored.
const discard: WritableStorage = { put: async (cid: CID) => cid };

/** The CID and on-chain form `bytes` get in any AnchorFL store (no storage touched). */
export async function describeContent(bytes: Uint8Array): Promise<StoredContent> {
  const cid = await importWithFixedSettings(bytes, discard);
  return storedContentOf(cid, bytes);
}

/** Builds the `put` result for bytes already known to have root `cid`. */
export function storedContentOf(cid: CID, bytes: Uint8Array): StoredContent {
  const digest = sha256Digest(bytes);
  const contentRoot = cid.code === RAW_CODEC ? ZERO_ROOT : hexOf(cid.multihash.digest);
  return { cid: cid.toString(), digest, contentRoot, size: bytes.length };
}

/** The CID the contract's (digest, contentRoot) pair points at. */
export function cidFromChain(digest: string, contentRoot: string): string {
  const root = parseHex32(contentRoot, "contentRoot");
  const whole = parseHex32(digest, "digest");
  const isRaw = root.every((b) => b === 0);
  return CID.createV1(isRaw ? RAW_CODEC : DAG_PB_CODEC, Digest.create(SHA2_256, isRaw ? whole : root)).toString();
}

/**
 * The on-chain form of a CID. A raw CID gives both values; a UnixFS CID gives only its
 * root, because the whole-file digest is not derivable from the CID (keep it from `put`).
 */
export function chainFormOf(cid: string): { contentRoot: Hex32; digest?: Hex32 } {
  const parsed = parseCid(cid);
  const hash = hexOf(parsed.multihash.digest);
  return parsed.code === RAW_CODEC ? { contentRoot: ZERO_ROOT, digest: hash } : { contentRoot: hash };
}

export function resolveRef(ref: ContentRef): ResolvedRef {
  if (typeof ref === "string") return { cid: parseCid(ref) };
  if (ref === null || typeof ref !== "object") {
    throw new InvalidContentRefError(`expected a CID string or { digest, contentRoot }, found ${String(ref)}`);
  }
  const cid = CID.parse(cidFromChain(ref.digest, ref.contentRoot));
  return { cid, expectedDigest: hexOf(parseHex32(ref.digest, "digest")) };
}

/**
 * Checks received bytes against the reference, whatever the backend claimed: a raw CID's
 * hash must be the bytes' sha-256; a UnixFS CID must be what re-chunking the bytes with
 * the fixed settings yields; a known whole-file digest must match too.
 */
export async function verifyContent(bytes: Uint8Array, ref: ResolvedRef, where: string): Promise<void> {
  const digest = sha256Digest(bytes);
  if (ref.expectedDigest !== undefined && digest !== ref.expectedDigest) {
    throw integrityError(ref.cid, where, `whole-file sha-256 ${ref.expectedDigest}`, digest);
  }
  if (ref.cid.code === RAW_CODEC) {
    const expected = hexOf(ref.cid.multihash.digest);
    if (digest !== expected) throw integrityError(ref.cid, where, `sha-256 ${expected}`, digest);
    return;
  }
  const rebuilt = await importWithFixedSettings(bytes, discard);
  if (rebuilt.toString() !== ref.cid.toString()) {
    throw integrityError(ref.cid, where, `UnixFS root ${ref.cid.toString()}`, rebuilt.toString());
  }
}

/** Parses a CID string and keeps only the kinds AnchorFL produces (v1 raw or dag-pb, sha2-256). */
export function parseCid(text: string): CID {
  let cid: CID;
  try {
    cid = CID.parse(String(text)).toV1();
  } catch (cause) {
    throw new InvalidContentRefError(`expected a CID, found "${String(text).slice(0, 100)}"`, { cause });
  }
  if (cid.multihash.code !== SHA2_256 || (cid.code !== RAW_CODEC && cid.code !== DAG_PB_CODEC)) {
    throw new InvalidContentRefError(
      `expected a raw or dag-pb CID hashed with sha2-256, found codec 0x${Number(cid.code).toString(16)} hash 0x${Number(cid.multihash.code).toString(16)} in ${String(cid)}`,
      { hint: "AnchorFL stores files as raw blocks (<= 1 MiB) or UnixFS (dag-pb) with sha2-256", details: { cid: cid.toString() } },
    );
  }
  return cid;
}

function integrityError(cid: CID, where: string, expected: string, found: string): IntegrityError {
  return new IntegrityError(`content ${cid.toString()} from ${where} does not match: expected ${expected}, found ${found}`, {
    hint: "the store returned altered or wrong bytes; they were refused",
    details: { cid: cid.toString(), where, expected, found },
  });
}

function parseHex32(value: string, name: string): Uint8Array {
  if (typeof value !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(value)) {
    throw new InvalidContentRefError(`expected ${name} as 0x followed by 64 hex digits, found ${JSON.stringify(value)}`);
  }
  return Uint8Array.from(Buffer.from(value.slice(2), "hex"));
}

function hexOf(bytes: Uint8Array): Hex32 {
  return `0x${Buffer.from(bytes).toString("hex")}`;
}
