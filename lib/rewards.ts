// Rewards for a round as a Merkle tree: the aggregator publishes only the root on-chain and
// each participant pulls its own amount with a proof. Pure and deterministic, so `verify`
// rebuilds the same root from the same verdicts.
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { getAddress, ZeroHash } from "ethers";
import { AnchorFLError } from "./errors.js";

export class RewardsError extends AnchorFLError {}

export const REWARD_LEAF_TYPES = ["address", "uint256"] as const;

export interface RewardShare {
  readonly account: string;
  /** Weight of the share, e.g. accepted samples. */
  readonly weight: bigint;
}

export interface RewardAllocation {
  readonly account: string;
  readonly amount: bigint;
}

/**
 * Splits `budget` in proportion to the weights, rounding down; the remainder (at most one unit
 * per account) stays unallocated and returns to the task's escrow. Accounts are checksummed and
 * sorted, zero amounts dropped, duplicates refused.
 */
export function allocateRewards(budget: bigint, shares: readonly RewardShare[]): RewardAllocation[] {
  if (budget < 0n) throw new RewardsError(`reward budget must be >= 0, got ${budget}`);
  const seen = new Set<string>();
  const normalized = shares.map((s) => {
    const account = getAddress(s.account);
    if (seen.has(account)) throw new RewardsError(`account ${account} appears twice in the reward shares`);
    seen.add(account);
    if (s.weight < 0n) throw new RewardsError(`weight of ${account} must be >= 0, got ${s.weight}`);
    return { account, weight: s.weight };
  });
  const total = normalized.reduce((sum, s) => sum + s.weight, 0n);
  if (total === 0n) return [];
  return normalized
    .map((s) => ({ account: s.account, amount: (budget * s.weight) / total }))
    .filter((a) => a.amount > 0n)
    .sort((a, b) => (a.account.toLowerCase() < b.account.toLowerCase() ? -1 : 1));
}

export interface RewardsTree {
  /** bytes32(0) when nobody is rewarded. */
  readonly root: `0x${string}`;
  readonly total: bigint;
  readonly allocations: readonly RewardAllocation[];
  proof(account: string): { amount: bigint; proof: `0x${string}`[] };
  /** The OpenZeppelin tree dump, for publishing beside the report. */
  dump(): unknown;
}

/** Builds the OpenZeppelin StandardMerkleTree over (account, amount) leaves. */
export function buildRewardsTree(allocations: readonly RewardAllocation[]): RewardsTree {
  const total = allocations.reduce((sum, a) => sum + a.amount, 0n);
  if (allocations.length === 0) {
    return {
      root: ZeroHash as `0x${string}`,
      total,
      allocations,
      proof: (account) => {
        throw new RewardsError(`${account} has no reward in this round`);
      },
      dump: () => null,
    };
  }
  const tree = StandardMerkleTree.of(
    allocations.map((a) => [a.account, a.amount.toString()]),
    [...REWARD_LEAF_TYPES],
  );
  const position = new Map<string, number>();
  for (const [i, [account]] of tree.entries()) position.set(String(account).toLowerCase(), i);
  return {
    root: tree.root as `0x${string}`,
    total,
    allocations,
    proof: (account) => {
      const i = position.get(account.toLowerCase());
      if (i === undefined) throw new RewardsError(`${account} has no reward in this round`);
      return { amount: BigInt(tree.at(i)![1] as string), proof: tree.getProof(i) as `0x${string}`[] };
    },
    dump: () => tree.dump(),
  };
}
