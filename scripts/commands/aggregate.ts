// `anchorfl aggregate`, `anchorfl verify` and `anchorfl aggregate-files`: the aggregator process
// (stateless, resumes from the chain), the check anyone can run on a finalized round, and
// offline aggregation of update files.
import { readFile, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { rules, serverOptimisers, type RawParams } from "../../lib/aggregation/index.js";
import { aggregateFiles } from "../../lib/aggregator/offline.js";
import { DEFAULT_POLICY } from "../../lib/aggregator/policy.js";
import { DEFAULT_RULE } from "../../lib/aggregator/round.js";
import { runAggregator, type RunOptions } from "../../lib/aggregator/service.js";
import { DEFAULT_ROOT_DATA, DEFAULT_ROOT_TRAINING, DEFAULT_SERVER_UPDATE_TOLERANCE } from "../../lib/aggregator/state-fltrust.js";
import { formatVerify, verifyRound } from "../../lib/aggregator/verify.js";
import { describeContent } from "../../lib/store/index.js";

import { parseId, withContext, type GlobalOptions } from "./context.js";
import { CommandOptionError, parseInteger, parsePositiveNumber } from "./task.js";

interface RuleFlags {
  rule: string;
  f?: string;
  m?: string;
  beta?: string;
  trim?: string;
  clip?: string;
  param?: string[];
}

interface OptimizerFlags {
  optimizer?: string;
  serverLr?: string;
  serverMomentum?: string;
  beta1?: string;
  beta2?: string;
  tau?: string;
  biasCorrection?: boolean;
  optimizerParam?: string[];
}

/** FLTrust's root set flags: the aggregate command has them, aggregate-files (which reads a server update) does not. */
interface RootFlags {
  rootData?: string;
  rootEpochs?: string;
  rootBatchSize?: string;
  rootLr?: string;
}

interface AggregateFlags extends RuleFlags, OptimizerFlags, RootFlags {
  task: string;
  policy?: string[];
  concurrency: string;
  fetchTimeout: string;
  poll: string;
  once?: boolean;
  rounds?: string;
  openRounds?: boolean;
  eval?: string | boolean;
}

/** key=value pairs (repeatable flag, or comma-separated) to an object. */
export function parsePairs(items: readonly string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of (items ?? []).flatMap((i) => i.split(","))) {
    const eq = item.indexOf("=");
    if (eq <= 0 || eq === item.length - 1) throw new CommandOptionError(`${what} must be key=value, got "${item}"`);
    out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return out;
}

/** The rule's raw parameters from the shorthand flags and --param; the registry checks them. */
export function ruleParamsOf(o: RuleFlags): RawParams {
  return { ...parsePairs(o.param, "--param"), f: o.f, m: o.m, beta: o.beta, trim: o.trim, clip: o.clip };
}

/** The server optimiser's raw parameters from its flags; the registry checks them. */
export function optimizerParamsOf(o: OptimizerFlags): RawParams {
  return {
    ...parsePairs(o.optimizerParam, "--optimizer-param"),
    lr: o.serverLr,
    momentum: o.serverMomentum,
    beta1: o.beta1,
    beta2: o.beta2,
    tau: o.tau,
    biasCorrection: o.biasCorrection,
  };
}

/** FLTrust's root set and server training from their flags (undefined: the defaults). */
function rootOptionsOf(o: RootFlags): Pick<RunOptions, "rootData" | "rootTraining"> {
  const training = {
    ...(o.rootEpochs !== undefined ? { epochs: parseInteger(o.rootEpochs, "--root-epochs", 1, 1_000) } : {}),
    ...(o.rootBatchSize !== undefined ? { batchSize: parseInteger(o.rootBatchSize, "--root-batch-size", 1, 100_000) } : {}),
    ...(o.rootLr !== undefined ? { learningRate: parsePositiveNumber(o.rootLr, "--root-lr") } : {}),
  };
  return { ...(o.rootData !== undefined ? { rootData: o.rootData } : {}), ...(Object.keys(training).length > 0 ? { rootTraining: training } : {}) };
}

function addOptimizerOptions(command: Command): Command {
  return command
    .option("--optimizer <name>", `server optimiser on top of the rule, its state carried round to round: ${Object.keys(serverOptimisers).join(", ")}`)
    .option("--server-lr <x>", "server learning rate (defaults: fedavgm 1, fedadam 0.1, fedyogi 0.01)")
    .option("--server-momentum <x>", "fedavgm: momentum (default 0.9)")
    .option("--beta1 <x>", "fedadam, fedyogi: first-moment decay (default 0.9)")
    .option("--beta2 <x>", "fedadam, fedyogi: second-moment decay (default 0.99)")
    .option("--tau <x>", "fedadam, fedyogi: adaptivity added to sqrt(v) (defaults 1e-9, 1e-3)")
    .option("--bias-correction", "fedadam, fedyogi: Adam's bias correction")
    .option("--optimizer-param <key=value...>", "any server optimiser parameter by its name (lr, momentum, beta1, beta2, tau, biasCorrection)");
}

/** FLTrust's root set flags: only the aggregator trains a server update (aggregate-files reads one from a file). */
function addRootOptions(command: Command): Command {
  const t = DEFAULT_ROOT_TRAINING;
  return command
    .option("--root-data <name>", `fltrust: the root set the server update trains on, mnist-root:<seed>:<size> (default ${DEFAULT_ROOT_DATA})`)
    .option("--root-epochs <n>", `fltrust: server training epochs (default ${t.epochs})`)
    .option("--root-batch-size <n>", `fltrust: server training batch size (default ${t.batchSize})`)
    .option("--root-lr <x>", `fltrust: server training learning rate, plain SGD (default ${t.learningRate})`);
}

function addRuleOptions(command: Command): Command {
  return command
    .option("--rule <name>", `aggregation rule: ${Object.keys(rules).join(", ")}`, DEFAULT_RULE)
    .option("--f <n>", "Byzantine updates to tolerate (krum, multi-krum, bulyan; optional for median, geometric-median)")
    .option("--m <n>", "updates multi-krum averages (default n - f)")
    .option("--beta <x>", "trimmed-mean: fraction dropped at each end (default 0.2)")
    .option("--trim <n>", "trimmed-mean: values dropped at each end (instead of --beta)")
    .option("--clip <bound>", 'clip every update to this L2 bound, or "median", before the rule')
    .option("--param <key=value...>", "any other rule parameter (e.g. maxIterations=50)");
}

const seconds = (text: string, what: string) => parseInteger(text, what, 1, 86_400) * 1000;

export function register(program: Command): void {
  addRootOptions(
    addOptimizerOptions(
      addRuleOptions(
        program
          .command("aggregate")
          .description("aggregate a task's rounds: wait for Aggregation, fetch and judge the reveals, aggregate, pin the model and report, submit the result")
          .requiredOption("--task <id>", "task id"),
      ),
    ),
  )
    .option("--policy <key=value...>", `verdict policy parameters (defaults: ${Object.entries(DEFAULT_POLICY).map(([k, v]) => `${k}=${v}`).join(", ")})`)
    .option("--concurrency <n>", "revealed files fetched at once", "8")
    .option("--fetch-timeout <seconds>", "per file; a file not there in time is judged unavailable", "30")
    .option("--poll <seconds>", "how often to poll the chain while waiting", "2")
    .option("--once", "handle the current round only, then exit")
    .option("--rounds <n>", "stop after this many rounds")
    .option("--open-rounds", "open the next round once the current one has finished")
    .option("--eval [dataset]", "evaluate each new model on a held-out set and record it in the report (mnist-test)")
    .action(async (o: AggregateFlags, cmd: Command) => {
      if (o.eval !== undefined && o.eval !== true && o.eval !== "mnist-test") throw new CommandOptionError(`--eval supports mnist-test, got "${o.eval}"`);
      const options: RunOptions = {
        rule: o.rule,
        ruleParams: ruleParamsOf(o),
        ...(o.optimizer !== undefined ? { optimizer: o.optimizer } : {}),
        optimizerParams: optimizerParamsOf(o),
        ...rootOptionsOf(o),
        policy: parsePairs(o.policy, "--policy"),
        concurrency: parseInteger(o.concurrency, "--concurrency", 1, 256),
        fetchTimeoutMs: seconds(o.fetchTimeout, "--fetch-timeout"),
        pollMs: seconds(o.poll, "--poll"),
        once: o.once,
        rounds: o.rounds === undefined ? undefined : parseInteger(o.rounds, "--rounds", 1, 1_000_000),
        openRounds: o.openRounds,
        ...(o.eval !== undefined ? { evaluation: "mnist-test" as const } : {}),
        log: (line) => console.log(line),
      };
      const taskId = parseId(o.task, "--task");
      await withContext(cmd.optsWithGlobals(), async (ctx) => {
        const stop = new AbortController();
        const onSignal = () => {
          console.log("stopping after the current step (Ctrl-C again to force)");
          stop.abort();
          process.once("SIGINT", () => process.exit(130));
        };
        process.once("SIGINT", onSignal);
        try {
          await runAggregator(ctx, taskId, { ...options, signal: stop.signal });
        } finally {
          process.off("SIGINT", onSignal);
        }
      });
    });

  program
    .command("verify")
    .description("recompute a finalized round from the chain and the store and compare it with the on-chain result (exit 0 only on an exact match)")
    .requiredOption("--task <id>", "task id")
    .requiredOption("--round <n>", "round number")
    .option("--eval", "also recompute the held-out evaluation and compare it approximately")
    .option("--server-update-tolerance <x>", `fltrust: largest relative L2 distance between the re-trained and the pinned server update`, String(DEFAULT_SERVER_UPDATE_TOLERANCE))
    .option("--fetch-timeout <seconds>", "per file", "30")
    .option("--json", "print the comparison as JSON")
    .action(async (o: { task: string; round: string; eval?: boolean; serverUpdateTolerance: string; fetchTimeout: string; json?: boolean }, cmd: Command) => {
      await withContext(
        cmd.optsWithGlobals() as GlobalOptions,
        async (ctx) => {
          const ids = { chainId: ctx.chainId, taskId: parseId(o.task, "--task"), round: parseId(o.round, "--round"), fromBlock: ctx.fromBlock };
          const v = await verifyRound(ctx.coordinator, await ctx.store(), ids, {
            evaluate: o.eval,
            serverUpdateTolerance: parsePositiveNumber(o.serverUpdateTolerance, "--server-update-tolerance"),
            fetchTimeoutMs: seconds(o.fetchTimeout, "--fetch-timeout"),
          });
          console.log(o.json ? JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x), 2) : formatVerify(v).join("\n"));
          if (!v.ok) process.exitCode = 1;
        },
        { readOnly: true },
      );
    });

  addOptimizerOptions(
    addRuleOptions(
      program
        .command("aggregate-files")
        .description("aggregate update files offline (no chain) with a chosen rule and server optimiser, and write the result as safetensors")
        .argument("<files...>", "update files (safetensors deltas of one model and base)")
        .requiredOption("--out <file>", "where to write the result"),
    ),
  )
    .option("--base <model>", "the base model file: write base + aggregate as a model (else the aggregate delta; a server optimiser needs it)")
    .option("--producer <address>", "author written into the output (the coordinator address reproduces a round's model bytes)")
    .option("--server-update <file>", "fltrust: the round's server update (the fltrust-server-update file its report names)")
    .option("--state <file>", "with --optimizer: the state to start from, the server-optimizer file of the last finalized round (absent: zero state, as in a first round)")
    .option("--state-out <file>", "with --optimizer: where to write the optimiser state after this round")
    .action(async (files: string[], o: RuleFlags & OptimizerFlags & { out: string; base?: string; producer?: string; serverUpdate?: string; state?: string; stateOut?: string }) => {
      // Named as typed: the parameter names (lr, momentum) are not the flags (--server-lr, --server-momentum).
      const optimizerOnly = Object.entries({
        "--server-lr": o.serverLr,
        "--server-momentum": o.serverMomentum,
        "--beta1": o.beta1,
        "--beta2": o.beta2,
        "--tau": o.tau,
        "--bias-correction": o.biasCorrection,
        "--optimizer-param": o.optimizerParam,
        "--state": o.state,
        "--state-out": o.stateOut,
      }).flatMap(([flag, value]) => (value === undefined ? [] : [flag]));
      if (o.optimizer === undefined && optimizerOnly.length > 0) throw new CommandOptionError(`${optimizerOnly.join(", ")} given without a server optimiser; add --optimizer ${Object.keys(serverOptimisers).join("|")}`);
      const optimizerParams = optimizerParamsOf(o);
      const read = async (name: string) => ({ name, bytes: new Uint8Array(await readFile(name)) });
      const result = aggregateFiles(await Promise.all(files.map(read)), {
        rule: { name: o.rule, params: ruleParamsOf(o) },
        ...(o.base ? { base: await read(o.base) } : {}),
        ...(o.producer ? { producer: o.producer } : {}),
        ...(o.serverUpdate ? { serverUpdate: await read(o.serverUpdate) } : {}),
        ...(o.optimizer !== undefined ? { optimizer: { name: o.optimizer, params: optimizerParams, ...(o.state ? { state: await read(o.state) } : {}) } } : {}),
      });
      await writeFile(o.out, result.bytes);
      if (result.state && o.stateOut) await writeFile(o.stateOut, result.state);
      const content = await describeContent(result.bytes);
      for (const p of result.aggregation.participants) {
        console.log(`${result.sources.get(p.id)}: ${p.selected ? "selected" : "left out"}, score ${p.score.toPrecision(6)}, norm ${p.norm.toPrecision(6)}, cosine to aggregate ${p.cosine.toFixed(4)}`);
      }
      if (result.serverUpdate) console.log(`server update ${o.serverUpdate}: trained on ${result.serverUpdate.rootData} with ${result.serverUpdate.backend}`);
      console.log(`${result.kind} written to ${o.out}: ${result.bytes.length} bytes, digest ${content.digest}, cid ${content.cid} (${result.aggregation.rule} ${JSON.stringify(result.aggregation.params)}${o.optimizer ? ` + ${o.optimizer}` : ""})`);
      if (result.state) {
        const digest = (await describeContent(result.state)).digest;
        console.log(o.stateOut ? `optimiser state written to ${o.stateOut}: ${result.state.length} bytes, digest ${digest}` : `optimiser state not written (digest ${digest}); --state-out <file> keeps it for the next round`);
      }
    });
}
