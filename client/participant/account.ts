// A participant's money in a task: stake with a permit (one transaction), claim rewards with a
// Merkle proof rebuilt from the round's pinned report (and checked against the on-chain root
// before anything is sent), request and complete withdrawals, and a status summary.
import { Signature, TypedDataEncoder, getAddress, type Provider, type TransactionReceipt } from "ethers";
import { phaseName, requireTask, send, type Phase } from "../../lib/chain/coordinator.js";
import { allEvents } from "../../lib/chain/logs.js";
import { fetchReport } from "../../lib/protocol/models.js";
import { buildRewardsTree } from "../../lib/rewards.js";
import type { Context } from "../../scripts/commands/context.js";
import { DemoToken__factory } from "../../types/ethers-contracts/index.js";
import { RewardReportMismatchError, StakeTokenError, explainRevert } from "./errors.js";

/** How long a permit signature stays valid. */
const PERMIT_LIFETIME_S = 3_600n;

async function me(ctx: Context): Promise<string> {
  return getAddress(await ctx.signer.getAddress());
}

/** Chain time: the later of the last block's timestamp and the wall clock (so a quiet chain never looks early). */
export async function chainNow(provider: Provider): Promise<bigint> {
  const block = await provider.getBlock("latest");
  return BigInt(Math.max(block?.timestamp ?? 0, Math.floor(Date.now() / 1000)));
}

async function sendAs(taskId: bigint, action: string, tx: Parameters<typeof send>[1]): Promise<TransactionReceipt> {
  try {
    return await send(action, tx);
  } catch (error) {
    throw explainRevert(error, taskId);
  }
}

/**
 * Stakes `amount` (token base units) in one transaction: signs an EIP-2612 permit for the
 * coordinator with the token's own EIP-712 domain (checked against its DOMAIN_SEPARATOR), then
 * calls depositWithPermit. Returns the stake after the deposit.
 */
export async function join(ctx: Context, taskId: bigint, amount: bigint): Promise<bigint> {
  const c = ctx.coordinator;
  await requireTask(c, taskId);
  if (amount <= 0n) throw new StakeTokenError(`the stake must be positive, got ${amount}`);
  const owner = await me(ctx);
  const spender = getAddress(await c.getAddress());
  const token = DemoToken__factory.connect((await c.taskConfig(taskId)).stakeToken, ctx.signer);
  const balance = await token.balanceOf(owner);
  if (balance < amount) {
    throw new StakeTokenError(`staking ${amount} token units needs them in ${owner}, which holds ${balance}`, {
      hint: "get tokens first (demo token: `anchorfl token mint --to <address> --amount <tokens>`, or its faucet)",
      details: { needed: amount, balance },
    });
  }
  const [name, nonce, separator] = await Promise.all([token.name(), token.nonces(owner), token.DOMAIN_SEPARATOR()]);
  const domain = { name, version: await permitVersion(token), chainId: ctx.chainId, verifyingContract: await token.getAddress() };
  if (TypedDataEncoder.hashDomain(domain) !== separator) {
    throw new StakeTokenError(`cannot rebuild the permit domain of token ${domain.verifyingContract}: its DOMAIN_SEPARATOR is ${separator}`, {
      hint: "the stake token must implement EIP-2612 permit with an EIP-712 domain of name, version, chainId, verifyingContract",
    });
  }
  const deadline = (await chainNow(ctx.provider)) + PERMIT_LIFETIME_S;
  const types = {
    Permit: [
      { name: "owner", type: "address" },
      { name: "spender", type: "address" },
      { name: "value", type: "uint256" },
      { name: "nonce", type: "uint256" },
      { name: "deadline", type: "uint256" },
    ],
  };
  const sig = Signature.from(await ctx.signer.signTypedData(domain, types, { owner, spender, value: amount, nonce, deadline }));
  await sendAs(taskId, "deposit with permit", () => c.depositWithPermit(taskId, amount, deadline, sig.v, sig.r, sig.s));
  return (await c.participantInfo(taskId, owner)).stake;
}

/** The version field of the token's EIP-712 domain (ERC-5267), "1" for tokens that predate it. */
async function permitVersion(token: ReturnType<typeof DemoToken__factory.connect>): Promise<string> {
  try {
    return (await token.eip712Domain()).version;
  } catch {
    return "1";
  }
}

export interface Claimable {
  readonly round: bigint;
  readonly amount: bigint;
  readonly proof: `0x${string}`[];
}

export interface ClaimScan {
  readonly claimable: Claimable[];
  /** Rounds whose report could not back a claim, with the reason (no claim is sent for them). */
  readonly problems: { round: bigint; error: Error }[];
}

/**
 * Rewards `account` can still claim: every finalized round with rewards that it has not claimed,
 * whose report (fetched by the digest in RoundFinalized) allocates it an amount and rebuilds to
 * exactly the on-chain rewards root.
 */
export async function scanRewards(ctx: Context, taskId: bigint, account: string): Promise<ClaimScan> {
  const c = ctx.coordinator;
  const store = await ctx.store();
  const claimable: Claimable[] = [];
  const problems: ClaimScan["problems"] = [];
  for (const log of await allEvents(c, c.filters.RoundFinalized(taskId), { fromBlock: ctx.fromBlock })) {
    const { args } = c.interface.parseLog(log)!;
    const round = args.round as bigint;
    if ((args.rewardsTotal as bigint) === 0n || (await c.hasClaimed(taskId, round, account))) continue;
    try {
      const report = await fetchReport(store, args.reportDigest);
      const allocations = report.rewards.allocations.map((a) => ({ account: getAddress(a.account), amount: BigInt(a.amount) }));
      if (!allocations.some((a) => a.account === account)) continue;
      const tree = buildRewardsTree(allocations);
      if (tree.root !== args.rewardsRoot) {
        throw new RewardReportMismatchError(`round ${round}'s report ${args.reportDigest} rebuilds the rewards root ${tree.root}, the chain holds ${args.rewardsRoot}`);
      }
      claimable.push({ round, ...tree.proof(account) });
    } catch (error) {
      problems.push({ round, error: error as Error });
    }
  }
  return { claimable, problems };
}

/** Claims every claimable reward; returns what was claimed and the rounds that could not be. */
export async function claimAll(ctx: Context, taskId: bigint, log: (line: string) => void = () => {}): Promise<ClaimScan> {
  await requireTask(ctx.coordinator, taskId);
  const scan = await scanRewards(ctx, taskId, await me(ctx));
  for (const r of scan.claimable) {
    await sendAs(taskId, `claim round ${r.round}`, () => ctx.coordinator.claim(taskId, r.round, r.amount, r.proof));
    log(`claimed ${r.amount} token units for round ${r.round}`);
  }
  for (const p of scan.problems) log(`round ${p.round}: not claimed: ${p.error.message.split("\n")[0]}`);
  return scan;
}

/** Marks `amount` of free stake for withdrawal; returns when it unlocks (chain time, seconds). */
export async function requestWithdrawal(ctx: Context, taskId: bigint, amount: bigint): Promise<bigint> {
  await requireTask(ctx.coordinator, taskId);
  await sendAs(taskId, "request withdrawal", () => ctx.coordinator.requestWithdrawal(taskId, amount));
  return (await ctx.coordinator.participantInfo(taskId, await me(ctx))).unlockAt;
}

/** Pays out the unlocked pending withdrawal; returns the stake left. */
export async function completeWithdrawal(ctx: Context, taskId: bigint): Promise<{ withdrawn: bigint; stakeAfter: bigint }> {
  await requireTask(ctx.coordinator, taskId);
  const c = ctx.coordinator;
  const receipt = await sendAs(taskId, "withdraw", () => c.withdraw(taskId));
  for (const log of receipt.logs) {
    const parsed = c.interface.parseLog(log);
    if (parsed?.name === "Withdrawn") return { withdrawn: parsed.args.amount as bigint, stakeAfter: parsed.args.stakeAfter as bigint };
  }
  return { withdrawn: 0n, stakeAfter: (await c.participantInfo(taskId, await me(ctx))).stake };
}

export interface ParticipantStatus {
  readonly account: string;
  readonly stake: bigint;
  readonly minStake: bigint;
  readonly pendingWithdrawal: bigint;
  readonly unlockAt: bigint;
  readonly lastRound: bigint;
  readonly revealed: boolean;
  readonly slashed: boolean;
  readonly claimable: bigint;
  readonly currentRound: bigint;
  readonly phase: Phase;
  readonly problems: ClaimScan["problems"];
}

export async function participantStatus(ctx: Context, taskId: bigint): Promise<ParticipantStatus> {
  const c = ctx.coordinator;
  await requireTask(c, taskId);
  const account = await me(ctx);
  const [info, config, currentRound] = await Promise.all([c.participantInfo(taskId, account), c.taskConfig(taskId), c.currentRound(taskId)]);
  const phase = currentRound === 0n ? "None" : phaseName(await c.roundPhase(taskId, currentRound));
  const scan = await scanRewards(ctx, taskId, account);
  return {
    account,
    stake: info.stake,
    minStake: config.minStake,
    pendingWithdrawal: info.pendingWithdrawal,
    unlockAt: info.unlockAt,
    lastRound: info.lastRound,
    revealed: info.revealed,
    slashed: info.slashed,
    claimable: scan.claimable.reduce((s, r) => s + r.amount, 0n),
    currentRound,
    phase,
    problems: scan.problems,
  };
}
