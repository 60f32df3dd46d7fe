// `anchorfl client …`: what a participant runs. join stakes with a permit; run takes part in
// rounds (train on its shard, pin, journal, commit, reveal) until stopped or, with --once, in the
// current round; claim pulls rewards with proofs checked against the chain; withdraw requests or
// completes a withdrawal; status summarises stake, rewards and the round.
import type { Command } from "commander";
import { parseBehaviour, type Behaviour } from "../../client/attacks/behaviours.js";
import type { Dataset } from "../../client/data/dataset.js";
import { loadIdxDataset } from "../../client/data/idx.js";
import { loadMnist } from "../../client/data/mnist.js";
import { clientShard, parsePartitionSpec } from "../../client/data/partition.js";
import { initBackend, type BackendName } from "../../client/model/backend.js";
import { claimAll, completeWithdrawal, join, participantStatus, requestWithdrawal, type ParticipantStatus } from "../../client/participant/account.js";
import { Participant, type LocalTraining } from "../../client/participant/round.js";
import { progressReporter } from "../../client/train/progress.js";
import type { OptimizerName } from "../../client/train/train.js";
import { CommandOptionError, formatTokens, parseInteger, parsePositiveNumber, parseTokens } from "./task.js";
import { parseId, withContext } from "./context.js";

/** The --attack forms: the behaviour syntax plus short aliases. */
export const ATTACK_SYNTAX = "none|label-flip|sign-flip|scale:L|noise:S[:add]|alie[:Z]|ipm[:E]|zero|stale|copy|withhold|malformed[:nan|truncate|wrong-shape|bad-header]";

/** Default epsilon of `--attack ipm` (Xie et al. use small epsilons against median-type rules). */
export const DEFAULT_IPM_EPSILON = 0.5;

/** Parses --attack: aliases first ("none", "noise:S", "zero", "malformed", "ipm"), then the behaviour syntax. */
export function parseAttack(text: string): Behaviour {
  const t = text.trim();
  if (t === "none") return { kind: "honest" };
  if (t === "zero" || t === "stale" || t === "copy") return { kind: "free-ride", mode: t };
  if (t === "malformed") return { kind: "malformed", corruption: "nan" };
  if (t === "ipm") return { kind: "ipm", epsilon: DEFAULT_IPM_EPSILON };
  return parseBehaviour(t.startsWith("noise:") ? `gaussian:${t.slice("noise:".length)}` : t);
}

export interface RunOptions {
  task: string;
  once?: boolean;
  shard: string;
  of: string;
  partition: string;
  seed: string;
  epochs: string;
  batchSize: string;
  lr: string;
  optimizer: string;
  proxMu?: string;
  clip?: string;
  dpNoise?: string;
  attack: string;
  dataPath?: string;
  labelsPath?: string;
  backend?: string;
  safetyMargin: string;
  poll: string;
}

/** Local training settings from the command options, validated before anything is fetched. */
export function trainingFrom(o: RunOptions): LocalTraining {
  if (o.optimizer !== "sgd" && o.optimizer !== "adam") throw new CommandOptionError(`--optimizer must be sgd or adam, got "${o.optimizer}"`);
  const clipNorm = parsePositiveNumber(o.clip, "--clip");
  const dpNoiseMultiplier = parsePositiveNumber(o.dpNoise, "--dp-noise");
  if (dpNoiseMultiplier !== undefined && clipNorm === undefined) throw new CommandOptionError("--dp-noise needs --clip: noise only bounds privacy loss on a clipped update");
  return {
    epochs: parseInteger(o.epochs, "--epochs", 1, 1_000),
    batchSize: parseInteger(o.batchSize, "--batch-size", 1, 65_536),
    learningRate: parsePositiveNumber(o.lr, "--lr"),
    optimizer: o.optimizer as OptimizerName,
    proxMu: parsePositiveNumber(o.proxMu, "--prox-mu", true),
    clipNorm,
    dpNoiseMultiplier,
    seed: parseInteger(o.seed, "--seed", 0, 2 ** 31 - 1),
  };
}

/** This client's shard: the packaged MNIST digits' training pool (or IDX files), divided by the partition spec. */
export async function loadShard(o: Pick<RunOptions, "shard" | "of" | "partition" | "seed" | "dataPath" | "labelsPath">): Promise<Dataset> {
  if ((o.dataPath === undefined) !== (o.labelsPath === undefined)) throw new CommandOptionError("--data-path and --labels-path go together");
  const of = parseInteger(o.of, "--of", 1, 100_000);
  const shard = parseInteger(o.shard, "--shard", 0, of - 1);
  const pool = o.dataPath ? await loadIdxDataset(o.dataPath, o.labelsPath!) : (await loadMnist()).train;
  return clientShard(pool, parsePartitionSpec(o.partition), of, shard, parseInteger(o.seed, "--seed", 0, 2 ** 31 - 1));
}

export function formatStatus(taskId: bigint, s: ParticipantStatus): string[] {
  const free = s.stake - s.pendingWithdrawal;
  const lines = [
    `account ${s.account} in task ${taskId}`,
    `  stake ${formatTokens(s.stake)} tokens (free ${formatTokens(free)}, task minimum ${formatTokens(s.minStake)})${free < s.minStake ? " - too little to commit" : ""}`,
    s.pendingWithdrawal > 0n
      ? `  pending withdrawal ${formatTokens(s.pendingWithdrawal)} tokens, unlocks ${new Date(Number(s.unlockAt) * 1000).toISOString()}`
      : "  no pending withdrawal",
    s.lastRound === 0n ? "  never committed" : `  last committed round ${s.lastRound}: ${s.slashed ? "slashed" : s.revealed ? "revealed" : "not revealed"}`,
    `  claimable rewards ${formatTokens(s.claimable)} tokens`,
    s.currentRound === 0n ? "  no round opened yet" : `  current round ${s.currentRound}: ${s.phase}`,
  ];
  for (const p of s.problems) lines.push(`  round ${p.round}: rewards not claimable: ${p.error.message.split("\n")[0]}`);
  return lines;
}

const taskOf = (o: { task: string }) => parseId(o.task, "--task");

export function register(program: Command): void {
  const client = program.command("client").description("take part in a task as a participant: stake, train and submit, claim, withdraw");
  client
    .command("join")
    .description("stake in a task (one transaction, with an EIP-2612 permit)")
    .requiredOption("--task <id>", "task id")
    .requiredOption("--stake <tokens>", "tokens to stake")
    .action(async (o: { task: string; stake: string }, cmd: Command) => {
      const taskId = taskOf(o);
      const amount = parseTokens(o.stake, "--stake");
      await withContext(cmd.optsWithGlobals(), async (ctx) => {
        const stake = await join(ctx, taskId, amount);
        console.log(`staked ${o.stake} tokens in task ${taskId}; your stake is now ${formatTokens(stake)} tokens`);
      });
    });
  client
    .command("run")
    .description("take part in every round until stopped (Ctrl-C stops after the current step), or in the current one with --once")
    .requiredOption("--task <id>", "task id")
    .option("--once", "take part in the current round only; fail if it takes no commit now")
    .option("--shard <i>", "this client's shard (0-based)", "0")
    .option("--of <n>", "number of shards the data is divided into", "1")
    .option("--partition <spec>", "iid | dirichlet:ALPHA | shards:K | quantity:ALPHA", "iid")
    .option("--seed <n>", "seed of the partition and of the training data order", "0")
    .option("--epochs <n>", "local epochs", "1")
    .option("--batch-size <n>", "batch size", "32")
    .option("--lr <rate>", "learning rate", "0.1")
    .option("--optimizer <name>", "sgd or adam", "sgd")
    .option("--prox-mu <mu>", "FedProx proximal term (0 = off)")
    .option("--clip <norm>", "clip the update's L2 norm")
    .option("--dp-noise <multiplier>", "local differential privacy: Gaussian noise multiplier (needs --clip)")
    .option("--attack <behaviour>", `Byzantine behaviour for experiments: ${ATTACK_SYNTAX}`, "none")
    .option("--data-path <file>", "IDX images file (plain or .gz) instead of the packaged MNIST digits")
    .option("--labels-path <file>", "IDX labels file matching --data-path")
    .option("--backend <name>", "tensorflow, wasm or cpu (default: the first that starts)")
    .option("--safety-margin <seconds>", "do not commit when the commit deadline is closer than this", "15")
    .option("--poll <ms>", "how often to poll the chain", "2000")
    .action(async (o: RunOptions, cmd: Command) => {
      const taskId = taskOf(o);
      const training = trainingFrom(o);
      const behaviour = parseAttack(o.attack);
      const data = await loadShard(o);
      const log = (line: string) => console.log(line);
      await initBackend(o.backend as BackendName | undefined, { log });
      log(`shard ${o.shard} of ${o.of} (${o.partition}): ${data.n} examples`);
      const stop = new AbortController();
      const onSigint = () => {
        log("stopping after the current step (Ctrl-C again to quit at once)");
        stop.abort();
      };
      process.once("SIGINT", onSigint);
      try {
        await withContext(cmd.optsWithGlobals(), async (ctx) => {
          const participant = new Participant({
            ctx,
            taskId,
            data,
            training,
            behaviour,
            safetyMarginS: parseInteger(o.safetyMargin, "--safety-margin", 0, 86_400),
            pollMs: parseInteger(o.poll, "--poll", 10, 3_600_000),
            signal: stop.signal,
            log,
            onProgress: progressReporter({ stream: process.stderr }),
          });
          log(`participant ${await participant.address()}, journal ${(await participant.journal()).file}`);
          const outcomes = await participant.run({ once: o.once });
          log(`done: ${outcomes.map((x) => `round ${x.round} ${x.kind}`).join(", ") || "no round taken part in"}`);
        });
      } finally {
        process.removeListener("SIGINT", onSigint);
      }
    });
  client
    .command("claim")
    .description("claim rewards of every finalized round, with proofs rebuilt from the round's report")
    .requiredOption("--task <id>", "task id")
    .action(async (o: { task: string }, cmd: Command) => {
      const taskId = taskOf(o);
      await withContext(cmd.optsWithGlobals(), async (ctx) => {
        const scan = await claimAll(ctx, taskId, (line) => console.log(line));
        const total = scan.claimable.reduce((s, r) => s + r.amount, 0n);
        console.log(scan.claimable.length ? `claimed ${formatTokens(total)} tokens in ${scan.claimable.length} round(s)` : "nothing to claim");
      });
    });
  client
    .command("withdraw")
    .description("request a withdrawal of stake (--amount), or complete one once unlocked (--complete)")
    .requiredOption("--task <id>", "task id")
    .option("--amount <tokens>", "tokens to mark for withdrawal")
    .option("--complete", "pay out the unlocked pending withdrawal")
    .action(async (o: { task: string; amount?: string; complete?: boolean }, cmd: Command) => {
      const taskId = taskOf(o);
      if ((o.amount === undefined) === !o.complete) throw new CommandOptionError("give exactly one of --amount <tokens> and --complete");
      await withContext(cmd.optsWithGlobals(), async (ctx) => {
        if (o.complete) {
          const { withdrawn, stakeAfter } = await completeWithdrawal(ctx, taskId);
          console.log(`withdrew ${formatTokens(withdrawn)} tokens; ${formatTokens(stakeAfter)} tokens remain staked`);
        } else {
          const unlockAt = await requestWithdrawal(ctx, taskId, parseTokens(o.amount!, "--amount"));
          console.log(`withdrawal of ${o.amount} tokens requested; complete it with --complete after ${new Date(Number(unlockAt) * 1000).toISOString()}`);
        }
      });
    });
  client
    .command("status")
    .description("your stake, pending withdrawal, last round, claimable rewards, and the task's current round")
    .requiredOption("--task <id>", "task id")
    .action(async (o: { task: string }, cmd: Command) => {
      const taskId = taskOf(o);
      await withContext(cmd.optsWithGlobals(), async (ctx) => {
        for (const line of formatStatus(taskId, await participantStatus(ctx, taskId))) console.log(line);
      });
    });
}
