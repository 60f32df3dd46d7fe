// The participant's decisions as pure functions of chain facts, so each can be tested alone:
// whether to commit now, and what to do with a journal entry found on start.
import type { Phase } from "../../lib/chain/coordinator.js";

/** Seconds kept between the commit transaction and the commit deadline by default. */
export const DEFAULT_SAFETY_MARGIN_S = 15;

export type CommitDecision =
  | { readonly action: "commit" }
  /** This round's commits are closed or about to close: sit it out. */
  | { readonly action: "too-late"; readonly reason: string }
  /** Nothing to do in this round (none open, or already committed): poll for the next. */
  | { readonly action: "wait"; readonly reason: string };

export interface CommitFacts {
  readonly phase: Phase;
  /** Chain time, seconds. */
  readonly now: bigint;
  readonly commitEnd: bigint;
  readonly revealEnd: bigint;
  /** The participant's last committed round is this one. */
  readonly alreadyCommitted: boolean;
  readonly safetyMarginS?: number;
}

/**
 * Commit only when the commit can land before the deadline with a margin to spare, and only
 * when the reveal window leaves room for the reveal: a client that cannot reveal must not
 * commit, or it is slashed for no reveal.
 */
export function decideCommit(f: CommitFacts): CommitDecision {
  const margin = BigInt(f.safetyMarginS ?? DEFAULT_SAFETY_MARGIN_S);
  if (f.phase === "None" || f.phase === "Finalized" || f.phase === "Failed") return { action: "wait", reason: `no round is open for commits (phase ${f.phase})` };
  if (f.phase !== "Commit") return { action: "too-late", reason: `commits are closed (phase ${f.phase})` };
  if (f.alreadyCommitted) return { action: "wait", reason: "already committed in this round" };
  if (f.now + margin >= f.commitEnd) {
    return { action: "too-late", reason: `the commit deadline is ${f.commitEnd - f.now} s away, within the ${margin} s safety margin` };
  }
  if (f.revealEnd - f.commitEnd < margin) {
    return { action: "too-late", reason: `the reveal window (${f.revealEnd - f.commitEnd} s) is shorter than the ${margin} s safety margin` };
  }
  return { action: "commit" };
}

export type RecoveryAction =
  /** Committed and the round is in Reveal: reveal now. */
  | "reveal"
  /** Committed and commits are still open: reveal when the Reveal phase starts. */
  | "await-reveal"
  /** Committed but the reveal phase is over: the stake will be slashed for no reveal. */
  | "missed"
  /** The chain already shows the reveal. */
  | "revealed"
  /** Not on chain yet, but commits are open and the account has transactions waiting to be mined: wait for it. */
  | "await-commit"
  /** The commit transaction never landed: nothing is at stake. */
  | "not-committed";

export interface EntryFacts {
  /** Phase of the entry's round now. */
  readonly phase: Phase;
  /** Whether the chain holds exactly this entry's commitment (or its reveal) for this round. */
  readonly committedOnChain: boolean;
  readonly revealedOnChain: boolean;
  /**
   * Whether the account has sent transactions the chain has not mined yet (its pending nonce is
   * above its mined one): on a network that keeps transactions pending, the entry's commit may be
   * one of them.
   */
  readonly sendsPending: boolean;
}

/** What to do with an unrevealed journal entry found on start (see RecoveryAction). */
export function decideRecovery(f: EntryFacts): RecoveryAction {
  // Dropping a commit that is only pending would lose its salt: once mined it could not be
  // revealed, and the stake would be slashed for no reveal. Past Commit it can no longer land.
  if (!f.committedOnChain) return f.phase === "Commit" && f.sendsPending ? "await-commit" : "not-committed";
  if (f.revealedOnChain) return "revealed";
  if (f.phase === "Commit") return "await-reveal";
  if (f.phase === "Reveal") return "reveal";
  return "missed";
}
