// Creating a task: publish the model spec and the genesis model to the content store, then
// create the task on-chain with their digests, fund its reward escrow and open the first round.
import { getAddress, type Signer } from "ethers";
import { genesisWeights } from "../../client/model/build.js";
import { encodeModelSpec, modelSpecDigest, type ModelSpec } from "../../client/model/spec.js";
import type { IAnchorCoordinator } from "../../types/ethers-contracts/AnchorCoordinator.js";
import { DemoToken__factory } from "../../types/ethers-contracts/index.js";
import { send, type AnchorCoordinator } from "../chain/coordinator.js";
import { encodeUpdate } from "../codec/update-file.js";
import { ZERO_ROOT, type ContentStore, type StoredContent } from "../store/index.js";
import { AnchorFLError } from "../errors.js";

export class TaskSetupError extends AnchorFLError {}

export type TaskConfig = IAnchorCoordinator.TaskConfigStruct;

export interface PublishedGenesis {
  readonly spec: StoredContent;
  readonly model: StoredContent;
}

/** Stores and pins the spec and its genesis model (round 0, no base). Both are one raw block for the shipped models. */
export async function publishGenesis(store: ContentStore, spec: ModelSpec, author: string): Promise<PublishedGenesis> {
  const specFile = await store.put(encodeModelSpec(spec));
  await store.pin(specFile.cid);
  const weights = await genesisWeights(spec);
  const bytes = encodeUpdate(weights, {
    taskId: 0n,
    round: 0n,
    participant: getAddress(author),
    baseModelDigest: ZERO_ROOT,
    numSamples: 0,
    kind: "model",
    modelSpecDigest: modelSpecDigest(spec),
    extra: {},
  });
  const model = await store.put(bytes);
  await store.pin(model.cid);
  if (model.contentRoot !== ZERO_ROOT || specFile.contentRoot !== ZERO_ROOT) {
    throw new TaskSetupError(`the genesis model (${model.size} bytes) and spec must each fit one 1 MiB block`, {
      hint: "participants locate the genesis model by its digest alone; use a smaller model",
    });
  }
  return { spec: specFile, model };
}

/** Creates the task and returns its id (from the TaskCreated event). */
export async function createTask(c: AnchorCoordinator, config: TaskConfig): Promise<bigint> {
  const receipt = await send("create task", () => c.createTask(config));
  for (const log of receipt.logs) {
    const parsed = c.interface.parseLog(log);
    if (parsed?.name === "TaskCreated") return parsed.args.taskId as bigint;
  }
  throw new TaskSetupError(`create task: transaction ${receipt.hash} emitted no TaskCreated event`);
}

/** Approves and funds the task's reward escrow from `funder`'s tokens. */
export async function fundTask(c: AnchorCoordinator, funder: Signer, taskId: bigint, amount: bigint): Promise<void> {
  const token = DemoToken__factory.connect((await c.taskConfig(taskId)).stakeToken, funder);
  const balance = await token.balanceOf(funder);
  if (balance < amount) {
    throw new TaskSetupError(`funding task ${taskId} needs ${amount} token units, ${await funder.getAddress()} holds ${balance}`, {
      hint: "get tokens first (demo token: `npm run anchorfl -- token mint --to <address> --amount <tokens>`)",
    });
  }
  await send("approve rewards", () => token.approve(c.getAddress(), amount));
  await send("fund rewards", () => c.connect(funder).fund(taskId, amount));
}

/** Opens the task's next round; returns its number. */
export async function openRound(c: AnchorCoordinator, taskId: bigint): Promise<bigint> {
  const receipt = await send("open round", () => c.openRound(taskId));
  for (const log of receipt.logs) {
    const parsed = c.interface.parseLog(log);
    if (parsed?.name === "RoundOpened") return parsed.args.round as bigint;
  }
  throw new TaskSetupError(`open round: transaction ${receipt.hash} emitted no RoundOpened event`);
}
