// One fixture for the tests that play real rounds: a fresh DemoToken and AnchorCoordinator on the
// in-process Hardhat chain, a real embedded Helia store in a temp folder, the wasm tfjs backend,
// and the CLI's Context for any signer. Tasks and participants on top of it come from the small
// helpers below, so each test file only states what is particular to it.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";
import type { Signer } from "ethers";
import { subset, type Dataset } from "../../client/data/dataset.js";
import { initBackend } from "../../client/model/backend.js";
import { modelSpecDigest, type ModelSpec } from "../../client/model/spec.js";
import { join } from "../../client/participant/account.js";
import { Participant, type ParticipantOptions } from "../../client/participant/round.js";
import { trainLocal } from "../../client/train/train.js";
import type { RoundResult } from "../../lib/aggregator/round.js";
import { send, slashReasonCode } from "../../lib/chain/coordinator.js";
import { encodeUpdate } from "../../lib/codec/update-file.js";
import { commitmentOf, randomSalt } from "../../lib/commitment.js";
import { resolveSettings } from "../../lib/config.js";
import { sha256Digest, type Hex32 } from "../../lib/digest.js";
import { createTask, fundTask, publishGenesis, type PublishedGenesis, type TaskConfig } from "../../lib/protocol/task.js";
import { EmbeddedStore, ZERO_ROOT } from "../../lib/store/index.js";
import type { Tensor } from "../../lib/tensors.js";
import { makeContext, type Context } from "../../scripts/commands/context.js";
import { AnchorCoordinator__factory, DemoToken__factory, type AnchorCoordinator, type DemoToken } from "../../types/ethers-contracts/index.js";

export const TOKEN = 10n ** 18n;
export type Account = Signer & { address: string };

export interface TaskWorld {
  dir: string;
  store: EmbeddedStore;
  /** signers[0]: deployer, token minter, task creator and funder. */
  owner: Account;
  signers: Account[];
  token: DemoToken;
  tokenAddress: string;
  coordinatorAddress: string;
  chainId: bigint;
  /** The coordinator's deployment block: where log scans start. */
  fromBlock: number;
  coordinator(signer?: Signer): AnchorCoordinator;
  /** What makeContext needs besides the store, for tests that pick their own store. */
  partsFor(signer: Signer): Omit<Parameters<typeof makeContext>[0], "storeConfig" | "sharedStore">;
  contextFor(signer: Signer): Context;
  /** Closes the store; removes the folder unless the caller passed its own. */
  close(): Promise<void>;
}

export interface WorldOptions {
  /** Temp folder name prefix, so a leftover folder says which test made it. */
  prefix: string;
  /** How many signers, from signers[0], get 1,000 tokens each. */
  funded: number;
  /** A folder the caller owns (and removes); otherwise a fresh temp folder removed by close(). */
  dir?: string;
}

export async function openTaskWorld(ethers: HardhatEthers, options: WorldOptions): Promise<TaskWorld> {
  const dir = options.dir ?? (await mkdtemp(path.join(tmpdir(), options.prefix)));
  const dataDir = path.join(dir, "ipfs");
  const store = await EmbeddedStore.open({ dataDir });
  await initBackend("wasm", { log: () => {} });
  const signers = (await ethers.getSigners()) as Account[];
  const owner = signers[0];
  const chainId = (await ethers.provider.getNetwork()).chainId;
  const token = await new DemoToken__factory(owner).deploy(owner.address);
  await token.waitForDeployment();
  const deployed = await new AnchorCoordinator__factory(owner).deploy();
  const fromBlock = (await deployed.deploymentTransaction()!.wait())!.blockNumber;
  const coordinatorAddress = await deployed.getAddress();
  for (const s of signers.slice(0, options.funded)) await (await token.mint(s.address, 1_000n * TOKEN)).wait();

  const coordinator = (signer: Signer = owner) => AnchorCoordinator__factory.connect(coordinatorAddress, signer);
  const partsFor = (signer: Signer) => ({ settings: resolveSettings({}, { home: dir }), provider: ethers.provider, chainId, signer, coordinator: coordinator(signer), fromBlock });
  return {
    dir,
    store,
    owner,
    signers,
    token,
    tokenAddress: await token.getAddress(),
    coordinatorAddress,
    chainId,
    fromBlock,
    coordinator,
    partsFor,
    contextFor: (signer) => makeContext({ ...partsFor(signer), storeConfig: { kind: "embedded", dataDir }, sharedStore: store }),
    close: async () => {
      await store.close();
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TestTaskOptions {
  spec: ModelSpec;
  /** Anything that differs from the defaults below (aggregators defaults to [owner]). */
  config?: Partial<TaskConfig>;
  /** Tokens the owner puts into the task's reward pool. */
  fund?: bigint;
  /** Accounts that join (stake) right away, each with `stake`. */
  joiners?: Account[];
  stake?: bigint;
}

/**
 * Publishes the genesis model, creates a task with the tests' usual settings (10-minute windows,
 * 100-token minimum stake, 90 tokens a round, quorum 1), funds it and lets `joiners` stake.
 */
export async function createTestTask(world: TaskWorld, options: TestTaskOptions): Promise<{ taskId: bigint; genesis: PublishedGenesis }> {
  const genesis = await publishGenesis(world.store, options.spec, world.owner.address);
  const taskId = await createTask(world.coordinator(), {
    stakeToken: world.tokenAddress,
    minStake: 100n * TOKEN,
    rewardPerRound: 90n * TOKEN,
    aggregatorBond: 10n * TOKEN,
    commitWindow: 600,
    revealWindow: 600,
    aggregationWindow: 600,
    unbondingDelay: 60,
    maxParticipants: 3,
    outlierSlashBps: 1000,
    noRevealSlashBps: 2000,
    invalidSlashBps: 5000,
    duplicateSlashBps: 3000,
    dissentPenaltyBps: 1000,
    quorum: 1,
    aggregators: [world.owner.address],
    ...options.config,
    genesisModelDigest: genesis.model.digest,
    modelSpecDigest: genesis.spec.digest,
  });
  await fundTask(world.coordinator(), world.owner, taskId, options.fund ?? 500n * TOKEN);
  for (const p of options.joiners ?? []) await join(world.contextFor(p), taskId, options.stake ?? 150n * TOKEN);
  return { taskId, genesis };
}

/** Client i's 100 digits: disjoint shards of the training pool. */
export const shard = (pool: Dataset, i: number): Dataset => subset(pool, Array.from({ length: 100 }, (_, k) => i * 100 + k));

export interface TestParticipantOptions extends Partial<Omit<ParticipantOptions, "ctx" | "taskId" | "data" | "training">> {
  signer: Signer;
  taskId: bigint;
  data: Dataset;
  /** The training seed: one epoch of plain SGD, batches of 32, learning rate 0.1. */
  seed: number;
}

/** A real client with the tests' usual training and a 20 ms poll; `rest` overrides anything else. */
export function testParticipant(world: TaskWorld, { signer, taskId, data, seed, ...rest }: TestParticipantOptions): Participant {
  return new Participant({
    ctx: world.contextFor(signer),
    taskId,
    data,
    training: { epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed },
    pollMs: 20,
    ...rest,
  });
}

/**
 * Client i of `people` trains honestly on shard i of `pool` from `base` (one epoch of SGD, seed
 * 100 i + round), pins its update and commits; once all have committed, all reveal.
 */
export async function honestRound(
  world: TaskWorld,
  at: { taskId: bigint; round: bigint; spec: ModelSpec; pool: Dataset; people: readonly Account[]; base: { digest: Hex32; tensors: readonly Tensor[] } },
): Promise<void> {
  const { taskId, round, spec, base } = at;
  const reveals: (() => Promise<unknown>)[] = [];
  for (const [i, person] of at.people.entries()) {
    const { delta } = await trainLocal({ spec, globalWeights: base.tensors, data: shard(at.pool, i), epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: i * 100 + Number(round) });
    const bytes = encodeUpdate(delta, { taskId, round, participant: person.address, baseModelDigest: base.digest, numSamples: 100, kind: "delta", modelSpecDigest: modelSpecDigest(spec), extra: {} });
    await world.store.pin((await world.store.put(bytes)).cid);
    const digest = sha256Digest(bytes);
    const salt = randomSalt();
    const commitment = commitmentOf({ chainId: world.chainId, coordinator: world.coordinatorAddress, taskId, round, participant: person.address, updateDigest: digest, salt });
    await send("commit", () => world.coordinator(person).commit(taskId, round, commitment));
    reveals.push(() => send("reveal", () => world.coordinator(person).reveal(taskId, round, digest, 100n, salt, ZERO_ROOT)));
  }
  for (const reveal of reveals) await reveal();
}

/**
 * What submitResult takes for a computed round, naming `reportDigest` as its report: the tests that
 * publish a tampered report next to the honest model, rewards and slashes.
 */
export function submittedResult(r: RoundResult, reportDigest: Hex32) {
  return {
    newModelDigest: r.newModelDigest,
    reportDigest,
    rewardsRoot: r.rewardsRoot,
    rewardsTotal: r.rewardsTotal,
    slashes: r.slashes.map((s) => ({ participant: s.participant, reason: slashReasonCode(s.reason) })),
  };
}
