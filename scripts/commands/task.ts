// `anchorfl task …` and `anchorfl token …`: what a task owner runs. Creating a task publishes the
// model spec and genesis model to the content store, creates the task on-chain, funds its
// reward escrow and (with --open) opens the first round.
import type { Command } from "commander";
import { formatUnits, getAddress, parseUnits } from "ethers";
import { cnnSpec, mlpSpec, type ModelSpec } from "../../client/model/spec.js";
import { checkTaskOptions, optionFromPairs, parseCompression, type ReputationOption, type TaskOptions } from "../../lib/protocol/options.js";
import { ensureBackend } from "../../client/model/backend.js";
import { readRound, requireTask, send } from "../../lib/chain/coordinator.js";
import { readDeployment } from "../../lib/config.js";
import { AnchorFLError } from "../../lib/errors.js";
import { createTask, fundTask, openRound, publishGenesis } from "../../lib/protocol/task.js";
import { DemoToken__factory } from "../../types/ethers-contracts/index.js";
import { parseId, withContext, type Context } from "./context.js";

export class CommandOptionError extends AnchorFLError {}

export const TOKEN_DECIMALS = 18;

/** Whole tokens as typed by a person ("12.5") to base units. */
export function parseTokens(text: string, what = "amount"): bigint {
  try {
    const value = parseUnits(text.trim(), TOKEN_DECIMALS);
    if (value < 0n) throw new Error("negative");
    return value;
  } catch {
    throw new CommandOptionError(`${what} must be a non-negative number of tokens (e.g. 10 or 0.5), got "${text}"`);
  }
}

export const formatTokens = (value: bigint): string => formatUnits(value, TOKEN_DECIMALS).replace(/\.0$/, "");

export function parseInteger(text: string, what: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new CommandOptionError(`${what} must be an integer from ${min} to ${max}, got "${text}"`);
  return n;
}

/** A positive (with allowZero: non-negative) finite number from a flag; an absent flag stays undefined. */
export function parsePositiveNumber(text: string, what: string, allowZero?: boolean): number;
export function parsePositiveNumber(text: string | undefined, what: string, allowZero?: boolean): number | undefined;
export function parsePositiveNumber(text: string | undefined, what: string, allowZero = false): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v) || v < 0 || (v === 0 && !allowZero)) {
    throw new CommandOptionError(`${what} must be a ${allowZero ? "non-negative" : "positive"} number, got "${text}"`);
  }
  return v;
}

/** The shipped spec by name, carrying the task's options when any is set. */
export function modelSpecByName(name: string, seed: number, options: TaskOptions = {}): ModelSpec {
  const withOptions = (spec: ModelSpec): ModelSpec => (Object.keys(options).length > 0 ? { ...spec, options: checkTaskOptions(options) } : spec);
  if (name === "mlp") return withOptions(mlpSpec({ seed }));
  if (name === "cnn") return withOptions(cnnSpec({ seed }));
  throw new CommandOptionError(`model must be "mlp" or "cnn", got "${name}"`);
}

const REPUTATION_KEYS: Readonly<Record<string, keyof ReputationOption>> = {
  weighting: "weighting",
  select: "select",
  "half-life": "halfLife",
  window: "window",
  prior: "prior",
  "prior-weight": "priorWeight",
};

/**
 * `--reputation on` or a comma list of `weighting`, `select=K`, `half-life=H`, `window=W`,
 * `prior=P`, `prior-weight=A` into the task option (its ranges are checked with the other options).
 */
export function parseReputationOption(text: string): ReputationOption {
  if (text.trim() === "on") return {};
  const out: Record<string, number | boolean> = {};
  for (const item of text.split(",").map((x) => x.trim())) {
    const [key, value] = item.split("=");
    const name = Object.hasOwn(REPUTATION_KEYS, key) ? REPUTATION_KEYS[key] : undefined;
    if (!name) throw new CommandOptionError(`--reputation: unknown item "${item}" (known: on, ${Object.keys(REPUTATION_KEYS).join(", ")})`);
    if (name === "weighting") {
      if (value !== undefined) throw new CommandOptionError(`--reputation: "weighting" takes no value, got "${item}"`);
      out.weighting = true;
    } else {
      const n = Number(value);
      if (value === undefined || value.trim() === "" || !Number.isFinite(n)) throw new CommandOptionError(`--reputation: ${key} needs a number, got "${item}"`);
      out[name] = n;
    }
  }
  return out as ReputationOption;
}

/** `task create`'s defaults, also the base of the demo's and the benchmarks' tasks. */
export const TASK_DEFAULTS = {
  model: "mlp",
  seed: "0",
  minStake: "10",
  reward: "100",
  fund: "1000",
  bond: "50",
  commitWindow: "300",
  revealWindow: "300",
  aggregationWindow: "600",
  unbonding: "60",
  maxParticipants: "16",
  slashOutlier: "1000",
  slashNoReveal: "2000",
  slashInvalid: "5000",
  slashDuplicate: "3000",
  dissent: "1000",
  quorum: "1",
} as const;

export interface TaskCreateOptions {
  model: string;
  seed: string;
  minStake: string;
  reward: string;
  fund: string;
  bond: string;
  commitWindow: string;
  revealWindow: string;
  aggregationWindow: string;
  unbonding: string;
  maxParticipants: string;
  slashOutlier: string;
  slashNoReveal: string;
  slashInvalid: string;
  slashDuplicate: string;
  dissent: string;
  aggregators?: string;
  quorum: string;
  token?: string;
  open?: boolean;
  /** Off-chain task options, written into the model spec (built from the option flags). */
  options?: TaskOptions;
  /** --telemetry [k=v,...]: plausibility bounds for training telemetry (TelemetryOption). */
  telemetry?: string | boolean;
  /** --anomaly [k=v,...]: the anomaly detector feeds the policy (AnomalyOption). */
  anomaly?: string | boolean;
  /** --reputation: see parseReputationOption. */
  reputation?: string;
  /** --compression f16 | i8 | topk:FRACTION[:no-ef]: how participants encode their updates (CompressionOption). */
  compression?: string;
}

/** The telemetry and anomaly sections from their flags (absent flag: no section). */
function detectionOptions(o: TaskCreateOptions): TaskOptions {
  return {
    ...(o.telemetry !== undefined ? { telemetry: optionFromPairs("--telemetry", o.telemetry) } : {}),
    ...(o.anomaly !== undefined ? { anomaly: optionFromPairs("--anomaly", o.anomaly) } : {}),
  };
}

/** Creates a task from command options; returns its id. Shared by the CLI and the demo. */
export async function createTaskFromOptions(ctx: Context, o: TaskCreateOptions, log: (line: string) => void): Promise<bigint> {
  const me = await ctx.signer.getAddress();
  const taskOptions: TaskOptions = { ...o.options, ...detectionOptions(o), ...(o.reputation ? { reputation: parseReputationOption(o.reputation) } : {}), ...(o.compression ? { compression: parseCompression(o.compression) } : {}) };
  const spec = modelSpecByName(o.model, parseInteger(o.seed, "seed", 0, 2 ** 31), taskOptions);
  await ensureBackend();
  const store = await ctx.store();
  const genesis = await publishGenesis(store, spec, me);
  log(`model spec ${genesis.spec.cid} and genesis model ${genesis.model.cid} pinned in ${store.description}`);
  const bps = (text: string, what: string) => parseInteger(text, what, 0, 10_000);
  const aggregators = (o.aggregators ? o.aggregators.split(",") : [me]).map((a) => {
    try {
      return getAddress(a.trim());
    } catch {
      throw new CommandOptionError(`aggregator "${a}" is not an address`);
    }
  });
  const token = o.token ?? (await defaultToken(ctx));
  const taskId = await createTask(ctx.coordinator, {
    stakeToken: token,
    minStake: parseTokens(o.minStake, "--min-stake"),
    rewardPerRound: parseTokens(o.reward, "--reward"),
    aggregatorBond: parseTokens(o.bond, "--bond"),
    commitWindow: parseInteger(o.commitWindow, "--commit-window", 1, 2 ** 31),
    revealWindow: parseInteger(o.revealWindow, "--reveal-window", 1, 2 ** 31),
    aggregationWindow: parseInteger(o.aggregationWindow, "--aggregation-window", 1, 2 ** 31),
    unbondingDelay: parseInteger(o.unbonding, "--unbonding", 0, 2 ** 31),
    maxParticipants: parseInteger(o.maxParticipants, "--max-participants", 1, 65_535),
    outlierSlashBps: bps(o.slashOutlier, "--slash-outlier"),
    noRevealSlashBps: bps(o.slashNoReveal, "--slash-no-reveal"),
    invalidSlashBps: bps(o.slashInvalid, "--slash-invalid"),
    duplicateSlashBps: bps(o.slashDuplicate, "--slash-duplicate"),
    dissentPenaltyBps: bps(o.dissent, "--dissent"),
    quorum: parseInteger(o.quorum, "--quorum", 1, aggregators.length),
    genesisModelDigest: genesis.model.digest,
    modelSpecDigest: genesis.spec.digest,
    aggregators,
  });
  log(`task ${taskId} created (model ${spec.name}, aggregators ${aggregators.join(", ")})`);
  const funding = parseTokens(o.fund, "--fund");
  if (funding > 0n) {
    await fundTask(ctx.coordinator, ctx.signer, taskId, funding);
    log(`task ${taskId} reward escrow funded with ${formatTokens(funding)} tokens`);
  }
  if (o.open) log(`round ${await openRound(ctx.coordinator, taskId)} of task ${taskId} is open for commits`);
  return taskId;
}

async function defaultToken(ctx: Context): Promise<string> {
  return (await readDeployment(ctx.settings.home, ctx.chainId)).token;
}

export function register(program: Command): void {
  const task = program.command("task").description("create and run training tasks (task owner)");
  task
    .command("create")
    .description("publish the model spec and genesis model, create the task, fund its rewards")
    .option("--model <name>", "mlp or cnn", TASK_DEFAULTS.model)
    .option("--seed <n>", "seed of the genesis model's initializers", TASK_DEFAULTS.seed)
    .option("--token <address>", "stake and reward token (default: the deployed DemoToken)")
    .option("--min-stake <tokens>", "stake needed to commit", TASK_DEFAULTS.minStake)
    .option("--reward <tokens>", "reward budget per round", TASK_DEFAULTS.reward)
    .option("--fund <tokens>", "tokens to put in the reward escrow now", TASK_DEFAULTS.fund)
    .option("--bond <tokens>", "bond each aggregator must hold", TASK_DEFAULTS.bond)
    .option("--commit-window <seconds>", "commit phase length (closes early when full)", TASK_DEFAULTS.commitWindow)
    .option("--reveal-window <seconds>", "reveal phase length (closes early when all revealed)", TASK_DEFAULTS.revealWindow)
    .option("--aggregation-window <seconds>", "time for aggregators to reach quorum", TASK_DEFAULTS.aggregationWindow)
    .option("--unbonding <seconds>", "delay between a withdrawal request and the withdrawal", TASK_DEFAULTS.unbonding)
    .option("--max-participants <n>", "commits accepted per round", TASK_DEFAULTS.maxParticipants)
    .option("--slash-outlier <bps>", "stake share slashed for an outlier update (basis points)", TASK_DEFAULTS.slashOutlier)
    .option("--slash-no-reveal <bps>", "stake share slashed for committing without revealing", TASK_DEFAULTS.slashNoReveal)
    .option("--slash-invalid <bps>", "stake share slashed for an invalid or unavailable update", TASK_DEFAULTS.slashInvalid)
    .option("--slash-duplicate <bps>", "stake share slashed for a copied or stale update", TASK_DEFAULTS.slashDuplicate)
    .option("--dissent <bps>", "bond share an aggregator loses for a result that differs from the final one", TASK_DEFAULTS.dissent)
    .option("--aggregators <addresses>", "comma-separated aggregator set (default: you)")
    .option("--quorum <n>", "identical results needed to finalize", TASK_DEFAULTS.quorum)
    .option("--compression <scheme>", "participants send f16, i8 or topk:FRACTION updates (top-k with error feedback; topk:FRACTION:no-ef without); default float32")
    .option("--reputation <spec>", "score participants by their verdict history: on, or weighting,select=K,half-life=H,window=W,prior=P,prior-weight=A")
    .option("--open", "open the first round right away")
    .option("--telemetry [k=v,...]", "check training telemetry: minSamples, maxSamples (outside: invalid), maxEpochs, maxLossRatio (flagged)")
    .option("--anomaly [k=v,...]", "anomaly detector scores in the report: threshold (default 6), dims (16), slashThreshold (default: never slash)")
    .action(async (o: TaskCreateOptions, cmd: Command) => {
      await withContext(cmd.optsWithGlobals(), (ctx) => createTaskFromOptions(ctx, o, (l) => console.log(l)));
    });
  task
    .command("fund")
    .description("add tokens to a task's reward escrow")
    .requiredOption("--task <id>", "task id")
    .requiredOption("--amount <tokens>", "tokens to add")
    .action(async (o: { task: string; amount: string }, cmd: Command) => {
      await withContext(cmd.optsWithGlobals(), async (ctx) => {
        const taskId = parseId(o.task, "--task");
        await requireTask(ctx.coordinator, taskId);
        await fundTask(ctx.coordinator, ctx.signer, taskId, parseTokens(o.amount));
        console.log(`funded task ${taskId} with ${o.amount} tokens`);
      });
    });
  task
    .command("open-round")
    .description("open the task's next round (task owner or aggregator)")
    .requiredOption("--task <id>", "task id")
    .action(async (o: { task: string }, cmd: Command) => {
      await withContext(cmd.optsWithGlobals(), async (ctx) => {
        const taskId = parseId(o.task, "--task");
        await requireTask(ctx.coordinator, taskId);
        console.log(`round ${await openRound(ctx.coordinator, taskId)} of task ${taskId} is open for commits`);
      });
    });
  task
    .command("show")
    .description("print a task's config and current round")
    .requiredOption("--task <id>", "task id")
    .action(async (o: { task: string }, cmd: Command) => {
      await withContext(cmd.optsWithGlobals(), async (ctx) => {
        const taskId = parseId(o.task, "--task");
        await requireTask(ctx.coordinator, taskId);
        const [config, info] = await Promise.all([ctx.coordinator.taskConfig(taskId), ctx.coordinator.taskInfo(taskId)]);
        console.log(`task ${taskId}: owner ${info.owner}, escrow ${formatTokens(info.rewardEscrow)} tokens, global model ${info.globalModelDigest}`);
        console.log(`  min stake ${formatTokens(config.minStake)}, reward/round ${formatTokens(config.rewardPerRound)}, windows ${config.commitWindow}/${config.revealWindow}/${config.aggregationWindow} s, max ${config.maxParticipants} participants`);
        console.log(`  aggregators ${config.aggregators.join(", ")} (quorum ${config.quorum})`);
        if (info.currentRound > 0n) {
          const r = await readRound(ctx.coordinator, taskId, info.currentRound);
          console.log(`  round ${r.round}: ${r.phase}, ${r.commitCount} commits, ${r.revealCount} reveals`);
        } else console.log("  no round opened yet");
      });
    });

  const token = program.command("token").description("the demo stake token");
  token
    .command("mint")
    .description("mint demo tokens (token owner, i.e. the deployer)")
    .requiredOption("--to <addresses>", "comma-separated recipients")
    .requiredOption("--amount <tokens>", "tokens each")
    .action(async (o: { to: string; amount: string }, cmd: Command) => {
      await withContext(cmd.optsWithGlobals(), async (ctx) => {
        const t = DemoToken__factory.connect(await defaultToken(ctx), ctx.signer);
        for (const to of o.to.split(",")) {
          await send("mint", () => t.mint(getAddress(to.trim()), parseTokens(o.amount)));
          console.log(`minted ${o.amount} tokens to ${getAddress(to.trim())}`);
        }
      });
    });
}
