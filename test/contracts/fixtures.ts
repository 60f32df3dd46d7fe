// Shared setup for the coordinator's tests: a real in-process chain with the DemoToken and
// AnchorCoordinator deployed, one task created from a default config, funded participants and
// bonded aggregators, plus helpers that drive a round through its phases with real transactions.
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { AbiCoder, keccak256, type BigNumberish, type Signer } from "ethers";
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { AnchorCoordinator, DemoToken } from "../../types/ethers-contracts/index.js";

export const { ethers, networkHelpers } = await network.create();

export const TOKEN = 10n ** 18n;

export enum Phase {
  None,
  Commit,
  Reveal,
  Aggregation,
  Finalized,
  Failed,
}

export enum Reason {
  None,
  Outlier,
  Invalid,
  Duplicate,
  NoReveal,
}

export enum Field {
  StakeToken,
  MinStake,
  CommitWindow,
  RevealWindow,
  AggregationWindow,
  UnbondingDelay,
  MaxParticipants,
  OutlierSlashBps,
  NoRevealSlashBps,
  InvalidSlashBps,
  DuplicateSlashBps,
  DissentPenaltyBps,
  Aggregators,
  Quorum,
  AggregatorBond,
  GenesisModelDigest,
  ModelSpecDigest,
}

/** The bitmap the contract puts in UnexpectedRoundPhase: one bit per allowed phase. */
export function phases(...allowed: Phase[]): string {
  return ethers.toBeHex(
    allowed.reduce((bits, p) => bits | (1n << BigInt(p)), 0n),
    32,
  );
}

export const WINDOW = 100n;
export const DEFAULTS = {
  minStake: 100n * TOKEN,
  rewardPerRound: 1_000n * TOKEN,
  aggregatorBond: 500n * TOKEN,
  commitWindow: WINDOW,
  revealWindow: WINDOW,
  aggregationWindow: WINDOW,
  unbondingDelay: 50n,
  maxParticipants: 3n,
  outlierSlashBps: 1_000n,
  noRevealSlashBps: 2_000n,
  invalidSlashBps: 5_000n,
  duplicateSlashBps: 3_000n,
  dissentPenaltyBps: 1_000n,
  quorum: 2n,
  genesisModelDigest: ethers.id("genesis model"),
  modelSpecDigest: ethers.id("model spec"),
};

export type Config = Parameters<AnchorCoordinator["createTask"]>[0];

export function makeConfig(token: string, aggregators: string[], overrides: Partial<Record<string, unknown>> = {}) {
  return { stakeToken: token, ...DEFAULTS, aggregators, ...overrides } as Config;
}

export interface World {
  token: DemoToken;
  coordinator: AnchorCoordinator;
  coordinatorAddress: string;
  owner: HardhatEthersSigner;
  aggregators: HardhatEthersSigner[];
  participants: HardhatEthersSigner[];
  outsider: HardhatEthersSigner;
  taskId: bigint;
  chainId: bigint;
}

/** Token, coordinator, one funded task, 6 participants with 1,000 tokens staked-ready, 3 aggregators. */
export async function deployWorld(): Promise<World> {
  const signers = await ethers.getSigners();
  const [owner, a1, a2, a3, p1, p2, p3, p4, p5, p6, outsider] = signers;
  const token = await ethers.deployContract("DemoToken", [owner.address]);
  const coordinator = await ethers.deployContract("AnchorCoordinator");
  const coordinatorAddress = await coordinator.getAddress();
  const aggregators = [a1, a2, a3];
  const participants = [p1, p2, p3, p4, p5, p6];
  for (const s of [...aggregators, ...participants, outsider]) {
    await token.mint(s.address, 10_000n * TOKEN);
    await token.connect(s).approve(coordinatorAddress, ethers.MaxUint256);
  }
  await token.mint(owner.address, 100_000n * TOKEN);
  await token.approve(coordinatorAddress, ethers.MaxUint256);
  await coordinator.createTask(
    makeConfig(
      await token.getAddress(),
      aggregators.map((a) => a.address),
    ),
  );
  const taskId = 1n;
  await coordinator.fund(taskId, 10_000n * TOKEN);
  const chainId = (await ethers.provider.getNetwork()).chainId;
  return { token, coordinator, coordinatorAddress, owner, aggregators, participants, outsider, taskId, chainId };
}

/** Creates another task on the same token and aggregators (unfunded); returns its id. */
export async function createTask(w: World, overrides: Partial<Record<string, unknown>> = {}): Promise<bigint> {
  const taskId = await w.coordinator.nextTaskId();
  const config = makeConfig(
    await w.token.getAddress(),
    w.aggregators.map((a) => a.address),
    overrides,
  );
  await w.coordinator.createTask(config);
  return taskId;
}

/** deployWorld plus staked participants and bonded aggregators. */
export async function deployStaked(): Promise<World> {
  const w = await deployWorld();
  for (const p of w.participants) await w.coordinator.connect(p).deposit(w.taskId, 1_000n * TOKEN);
  for (const a of w.aggregators) await w.coordinator.connect(a).bondAggregator(w.taskId);
  return w;
}

/** deployStaked with round 1 open. */
export async function deployRoundOpen(): Promise<World> {
  const w = await deployStaked();
  await w.coordinator.openRound(w.taskId);
  return w;
}

/** The commitment exactly as specified, computed independently of the contract. */
export function commitmentFor(
  w: Pick<World, "chainId" | "coordinatorAddress">,
  taskId: BigNumberish,
  round: BigNumberish,
  participant: string,
  digest: string,
  salt: string,
): string {
  return keccak256(
    AbiCoder.defaultAbiCoder().encode(
      ["uint256", "address", "uint256", "uint256", "address", "bytes32", "bytes32"],
      [w.chainId, w.coordinatorAddress, taskId, round, participant, digest, salt],
    ),
  );
}

/** Anything that signs and knows its address: Hardhat's signers or fresh wallets. */
export type Account = Signer & { address: string };

export interface Update {
  signer: Account;
  digest: string;
  salt: string;
  samples: bigint;
}

/** A distinct update per participant and round. */
export function updateOf(signer: Account, round: bigint, samples = 600n): Update {
  return {
    signer,
    digest: ethers.id(`update ${signer.address} ${round}`),
    salt: ethers.id(`salt ${signer.address} ${round}`),
    samples,
  };
}

export async function commitUpdate(w: World, u: Update, round: bigint, taskId = w.taskId) {
  const c = commitmentFor(w, taskId, round, u.signer.address, u.digest, u.salt);
  return w.coordinator.connect(u.signer).commit(taskId, round, c);
}

export async function revealUpdate(w: World, u: Update, round: bigint, taskId = w.taskId, contentRoot = ethers.ZeroHash) {
  return w.coordinator.connect(u.signer).reveal(taskId, round, u.digest, u.samples, u.salt, contentRoot);
}

/** Moves the chain clock so that the next block is at `timestamp`. */
export async function nextBlockAt(timestamp: bigint) {
  await networkHelpers.time.setNextBlockTimestamp(timestamp);
}

/** Moves the clock past the current round's reveal deadline (next block is the first of Aggregation). */
export async function toAggregation(w: World) {
  const info = await w.coordinator.roundInfo(w.taskId, await w.coordinator.currentRound(w.taskId));
  const now = BigInt(await networkHelpers.time.latest());
  if (now < info.revealEnd) await networkHelpers.time.increaseTo(info.revealEnd);
}

/** Moves the clock to the end of the commit phase (the next block is the first of Reveal). */
export async function toReveal(w: World) {
  const info = await w.coordinator.roundInfo(w.taskId, await w.coordinator.currentRound(w.taskId));
  const now = BigInt(await networkHelpers.time.latest());
  if (now < info.commitEnd) await networkHelpers.time.increaseTo(info.commitEnd);
}

/** Moves the clock past the aggregation deadline: a round without quorum is Failed from then on. */
export async function toFailed(w: World) {
  const info = await w.coordinator.roundInfo(w.taskId, await w.coordinator.currentRound(w.taskId));
  await networkHelpers.time.increaseTo(info.aggregationEnd);
}

export interface Rewards {
  root: string;
  total: bigint;
  tree: StandardMerkleTree<[string, bigint]>;
}

export function rewardsTree(entries: [string, bigint][]): Rewards {
  const tree = StandardMerkleTree.of(entries, ["address", "uint256"]);
  return { root: tree.root, total: entries.reduce((s, [, a]) => s + a, 0n), tree };
}

export function proofFor(r: Rewards, account: string): string[] {
  for (const [i, [a]] of r.tree.entries()) if (a === account) return r.tree.getProof(i);
  throw new Error(`no reward leaf for ${account}`);
}

export interface ResultInput {
  newModelDigest: string;
  reportDigest: string;
  rewardsRoot: string;
  rewardsTotal: bigint;
  slashes: { participant: string; reason: Reason }[];
}

export function resultOf(label: string, rewards?: Rewards, slashes: ResultInput["slashes"] = []): ResultInput {
  return {
    newModelDigest: ethers.id(`model ${label}`),
    reportDigest: ethers.id(`report ${label}`),
    rewardsRoot: rewards?.root ?? ethers.ZeroHash,
    rewardsTotal: rewards?.total ?? 0n,
    slashes,
  };
}

/** Runs round `round`: everyone in `updates` commits and reveals, then the clock reaches Aggregation. */
export async function playCommitReveal(w: World, updates: Update[], round: bigint) {
  for (const u of updates) await commitUpdate(w, u, round);
  await toReveal(w);
  for (const u of updates) await revealUpdate(w, u, round);
  await toAggregation(w);
}
