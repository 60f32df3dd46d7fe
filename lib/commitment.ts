// The commit-reveal commitment, computed exactly as the coordinator contract recomputes it at
// reveal time: keccak256(abi.encode(chainId, coordinator, taskId, round, participant,
// updateDigest, salt)). abi.encode (not encodePacked) keeps every field 32 bytes wide, so no two
// different field lists can produce the same preimage; chain id and contract address keep a
// commitment from being replayed on another deployment.
import { randomBytes } from "node:crypto";
import { AbiCoder, concat, hexlify, keccak256, type BigNumberish } from "ethers";
import type { Hex32 } from "./digest.js";
import { AnchorFLError } from "./errors.js";

export interface CommitmentInput {
  readonly chainId: BigNumberish;
  readonly coordinator: string;
  readonly taskId: BigNumberish;
  readonly round: BigNumberish;
  readonly participant: string;
  /** sha-256 digest of the update file (see sha256Digest). */
  readonly updateDigest: Hex32;
  /** 32 random bytes kept secret until reveal, so the digest cannot be guessed from the commitment. */
  readonly salt: Hex32;
}

export class CommitmentInputError extends AnchorFLError {}

// Field order and Solidity types, exactly as in the contract's abi.encode.
const FIELDS = [
  ["chainId", "uint256"],
  ["coordinator", "address"],
  ["taskId", "uint256"],
  ["round", "uint256"],
  ["participant", "address"],
  ["updateDigest", "bytes32"],
  ["salt", "bytes32"],
] as const satisfies readonly (readonly [keyof CommitmentInput, string])[];

/** The bytes32 commitment a participant submits during the commit phase. */
export function commitmentOf(input: CommitmentInput): Hex32 {
  // abi.encode of static types is the concatenation of each field's 32-byte word, so encoding
  // field by field gives the same bytes and lets an error name the field that was wrong.
  return keccak256(concat(FIELDS.map(([field, type]) => encodeField(field, type, input[field])))) as Hex32;
}

function encodeField(field: string, type: string, value: BigNumberish): string {
  try {
    return AbiCoder.defaultAbiCoder().encode([type], [value]);
  } catch (cause) {
    throw new CommitmentInputError(`commitment field ${field} must be a valid ${type}, found ${JSON.stringify(String(value))}`, {
      cause,
      details: { field, type, found: String(value) },
    });
  }
}

/** A fresh salt from the operating system's cryptographic random source. */
export function randomSalt(): Hex32 {
  return hexlify(randomBytes(32)) as Hex32;
}
