// Typed access to the AnchorCoordinator for every tool: connecting (with a clear error when no
// contract is there), reading task and round state, reading a round's commits and reveals from
// events, and sending transactions whose reverts name the contract's custom error.
import { getAddress, type ContractRunner, type ContractTransactionResponse, type Provider, type TransactionReceipt } from "ethers";
import { AnchorCoordinator__factory, DemoToken__factory, type AnchorCoordinator } from "../../types/ethers-contracts/index.js";
import { AnchorFLError } from "../errors.js";
import { allEvents, type PagingOptions } from "./logs.js";
import { sendTransaction } from "./revert.js";

export type { AnchorCoordinator };

export class CoordinatorError extends AnchorFLError {}

export const PHASES = ["None", "Commit", "Reveal", "Aggregation", "Finalized", "Failed"] as const;
export type Phase = (typeof PHASES)[number];

export const SLASH_REASONS = ["None", "Outlier", "Invalid", "Duplicate", "NoReveal"] as const;
export type SlashReasonName = (typeof SLASH_REASONS)[number];

export function phaseName(value: bigint | number): Phase {
  const name = PHASES[Number(value)];
  if (!name) throw new CoordinatorError(`unknown round phase ${value}`);
  return name;
}

export function slashReasonCode(name: SlashReasonName): number {
  return SLASH_REASONS.indexOf(name);
}

const decodeInterfaces = [AnchorCoordinator__factory.createInterface(), DemoToken__factory.createInterface()];

/** Connects to the coordinator at `address`, checking that a contract is deployed there. */
export async function connectCoordinator(address: string, runner: ContractRunner): Promise<AnchorCoordinator> {
  const provider = (runner.provider ?? runner) as Provider;
  const code = await provider.getCode(address);
  if (code === "0x") {
    const { chainId } = await provider.getNetwork();
    throw new CoordinatorError(`no contract at ${address} on chain ${chainId}`, {
      hint: "a local chain loses its contracts when it restarts: run `npm run deploy` again",
      details: { address, chainId },
    });
  }
  return AnchorCoordinator__factory.connect(address, runner);
}

/** Sends one coordinator (or token) transaction and waits for it; reverts come back as ContractRevertError. */
export function send(action: string, transaction: () => Promise<ContractTransactionResponse>): Promise<TransactionReceipt> {
  return sendTransaction(action, decodeInterfaces, transaction);
}

/**
 * A gas limit for a transaction whose cost depends on what lands before it: the commit or reveal
 * that fills a round closes its phase, and the result that reaches quorum finalizes the round
 * and applies its slashes (about 17k gas each). Estimated before others' transactions landed,
 * such a transaction would run out of gas; unused gas is not charged.
 */
export function withRaceHeadroom(estimate: bigint, slashes = 0): bigint {
  return estimate + 80_000n + 20_000n * BigInt(slashes);
}

export interface RoundState {
  readonly taskId: bigint;
  readonly round: bigint;
  readonly phase: Phase;
  readonly commitEnd: bigint;
  readonly revealEnd: bigint;
  readonly aggregationEnd: bigint;
  readonly commitCount: bigint;
  readonly revealCount: bigint;
  readonly budget: bigint;
  readonly resultHash: string;
  readonly rewardsRoot: string;
}

export async function readRound(c: AnchorCoordinator, taskId: bigint, round: bigint): Promise<RoundState> {
  const info = await c.roundInfo(taskId, round);
  return {
    taskId,
    round,
    phase: phaseName(info.phase),
    commitEnd: info.commitEnd,
    revealEnd: info.revealEnd,
    aggregationEnd: info.aggregationEnd,
    commitCount: info.commitCount,
    revealCount: info.revealCount,
    budget: info.budget,
    resultHash: info.resultHash,
    rewardsRoot: info.rewardsRoot,
  };
}

/** Fails with a clear message when `taskId` does not exist. */
export async function requireTask(c: AnchorCoordinator, taskId: bigint): Promise<void> {
  const next = await c.nextTaskId();
  if (taskId < 1n || taskId >= next) {
    throw new CoordinatorError(`task ${taskId} does not exist on coordinator ${await c.getAddress()} (tasks are 1..${next - 1n})`, {
      hint: "create one with `npm run anchorfl -- task create`",
    });
  }
}

export interface RevealRecord {
  readonly participant: string;
  readonly updateDigest: `0x${string}`;
  readonly numSamples: bigint;
  readonly contentRoot: `0x${string}`;
  readonly blockNumber: number;
  readonly transactionHash: string;
}

/** The round's reveals, in canonical order (sorted by participant address). */
export async function readReveals(c: AnchorCoordinator, taskId: bigint, round: bigint, paging: PagingOptions = {}): Promise<RevealRecord[]> {
  const logs = await allEvents(c, c.filters.Revealed(taskId, round), paging);
  const out = logs.map((log) => {
    const { args } = c.interface.parseLog(log)!;
    return {
      participant: getAddress(args.participant),
      updateDigest: args.updateDigest as `0x${string}`,
      numSamples: args.numSamples as bigint,
      contentRoot: args.contentRoot as `0x${string}`,
      blockNumber: log.blockNumber,
      transactionHash: log.transactionHash,
    };
  });
  return out.sort((a, b) => compareAddresses(a.participant, b.participant));
}

/** The round's committers, in canonical order. */
export async function readCommitters(c: AnchorCoordinator, taskId: bigint, round: bigint, paging: PagingOptions = {}): Promise<string[]> {
  const logs = await allEvents(c, c.filters.Committed(taskId, round), paging);
  return logs.map((log) => getAddress(c.interface.parseLog(log)!.args.participant)).sort(compareAddresses);
}

/** Canonical participant order: by address as a 160-bit number (the same as lowercase hex order). */
export function compareAddresses(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

export interface WaitOptions {
  readonly pollMs?: number;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Polls until `round` is in one of `phases`; returns the phase reached. */
export async function waitForPhase(
  c: AnchorCoordinator,
  taskId: bigint,
  round: bigint,
  phases: readonly Phase[],
  options: WaitOptions = {},
): Promise<Phase> {
  const deadline = Date.now() + (options.timeoutMs ?? 3_600_000);
  for (;;) {
    const phase = phaseName(await c.roundPhase(taskId, round));
    if (phases.includes(phase)) return phase;
    if (Date.now() > deadline) {
      throw new CoordinatorError(`task ${taskId} round ${round} is still in phase ${phase}; waited for ${phases.join(" or ")}`);
    }
    if (options.signal?.aborted) throw new CoordinatorError("wait aborted");
    await new Promise((r) => setTimeout(r, options.pollMs ?? 1_000));
  }
}
