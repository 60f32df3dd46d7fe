// What the anchoring costs: real rounds end to end on an in-process Hardhat chain (the real
// contracts, deployed with Ignition), a real embedded Helia store in a temp folder, real
// Participants training the MLP on real MNIST shards, and the real aggregator (aggregateOnce),
// measured from the edges without changing what they do: the participant's onTiming hook, a
// timing wrapper around the content store, a wrapper around the connection's JSON-RPC
// `request` (every request's span, and each transaction's receipt for the gas), the
// aggregator's onStep, and sampled memory. Clients train one after another, as in the demo
// (one tfjs runtime per process), and reveal concurrently once the last commit closes the
// commit phase; the aggregator starts when every reveal has landed.
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { getAddress, id, Transaction, Wallet, type Signer } from "ethers";
import type { network } from "hardhat";
import { subset, type Dataset } from "../../client/data/dataset.js";
import { loadMnist } from "../../client/data/mnist.js";
import { partition } from "../../client/data/partition.js";
import { initBackend } from "../../client/model/backend.js";
import { join } from "../../client/participant/account.js";
import { Participant, type RoundOutcome, type TimedPart } from "../../client/participant/round.js";
import { makeContext, type Context } from "../../scripts/commands/context.js";
import { TASK_DEFAULTS, createTaskFromOptions, parseTokens } from "../../scripts/commands/task.js";
import { deployAnchorFL } from "../../scripts/deploy.js";
import { aggregateOnce, ensureBonded, type AggregatorStep } from "../aggregator/service.js";
import { connectCoordinator } from "../chain/coordinator.js";
import { resolveSettings } from "../config.js";
import { AnchorFLError } from "../errors.js";
import { openRound } from "../protocol/task.js";
import { openContentStore, type ContentRef, type ContentStore, type GetOptions, type StoredContent } from "../store/index.js";
import { splitWallTime, Timeline, type Part, type Split } from "./anchoring-timeline.js";

export class AnchoringRunError extends AnchorFLError {}

type Connection = Awaited<ReturnType<typeof network.create>>;

export interface AnchoringSettings {
  readonly clients: number;
  readonly rounds: number;
  /** Training digits pooled and split IID over the clients (default: the whole training split, 9,000). */
  readonly digits?: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** Seeds the genesis model, the partition, the training and the participants' keys. */
  readonly seed: number;
  /** How often each waiting participant polls the round's phase (default: 10 ms per client, 50..1000). */
  readonly pollMs?: number;
  /** Empty folder for the store, the journals and the deployment. */
  readonly dir: string;
}

/** Gas of one round's transactions, by function; per participant = all of them / clients. */
export interface RoundGas {
  readonly commit: number[];
  readonly reveal: number[];
  readonly submitResult: number;
  readonly openRound: number;
  /** Any other transaction sent during the round (none expected). */
  readonly other: number;
  readonly total: number;
  readonly perParticipant: number;
}

export interface RoundBytes {
  /** Size of each participant's update file, in participant order. */
  readonly updates: number[];
  readonly model: number;
  readonly report: number;
  /** Content bytes put in the store this round (updates + model + report). */
  readonly total: number;
  readonly perParticipant: number;
  /** Growth of the store's folder on disk (blocks, pins, datastore). */
  readonly onDisk: number;
}

export interface RoundMeasurement {
  readonly round: bigint;
  readonly wallMs: number;
  readonly split: Split;
  readonly gas: RoundGas;
  readonly bytes: RoundBytes;
  /** Content put in the store this round, as the store returned it, with how long each put took (ms). */
  readonly stored: readonly (StoredContent & { readonly by: "participant" | "aggregator"; readonly ms: number })[];
  readonly slashes: number;
  readonly newModelDigest: string;
  readonly peakRss: number;
  readonly peakHeap: number;
}

export interface AnchoringRun {
  readonly settings: AnchoringSettings & { readonly pollMs: number; readonly digits: number };
  readonly backend: string;
  readonly taskId: bigint;
  readonly coordinator: string;
  readonly deployBlock: number;
  readonly participants: readonly string[];
  /** Setup (deploy, task, funding, one stake per participant): wall time and the gas of each join. */
  readonly setupMs: number;
  readonly joinGas: number[];
  readonly rounds: readonly RoundMeasurement[];
  /** process.memoryUsage() when the run started and its peaks during the run (sampled every 50 ms). */
  readonly memory: { readonly baselineRss: number; readonly peakRss: number; readonly peakHeap: number };
}

/** A transaction whose receipt came back through the connection. */
interface Receipt {
  readonly name: string;
  readonly gasUsed: number;
}

/** Wraps the connection's EIP-1193 `request`: every request is a chain-reads span, and each receipt is kept by function name. */
function watchRpc(connection: Connection, timeline: Timeline, nameOf: (to: string, data: string) => string) {
  const provider = connection.provider as { request: (args: { method: string; params?: unknown[] }) => Promise<unknown> };
  const original = provider.request;
  const sent = new Map<string, string>();
  const receipts: Receipt[] = [];
  const seen = new Set<string>();
  provider.request = async (args) => {
    const start = performance.now();
    try {
      const result = await original.call(provider, args);
      if (args.method === "eth_sendRawTransaction") {
        const tx = Transaction.from(String(args.params?.[0]));
        sent.set(String(result), nameOf(tx.to ?? "", tx.data));
      } else if (args.method === "eth_sendTransaction") {
        const tx = args.params?.[0] as { to?: string; data?: string };
        sent.set(String(result), nameOf(tx.to ?? "", tx.data ?? "0x"));
      } else if (args.method === "eth_getTransactionReceipt" && result) {
        const r = result as { transactionHash: string; gasUsed: string };
        if (!seen.has(r.transactionHash)) {
          seen.add(r.transactionHash);
          receipts.push({ name: sent.get(r.transactionHash) ?? "unknown", gasUsed: Number(BigInt(r.gasUsed)) });
        }
      }
      return result;
    } finally {
      timeline.add("chain-reads", start, performance.now());
    }
  };
  return { receipts, restore: () => void (provider.request = original) };
}

/** The store, with each call's span on the timeline and each put recorded. */
function timedStore(store: ContentStore, timeline: Timeline, by: "participant" | "aggregator", puts: RoundMeasurement["stored"][number][]): ContentStore {
  const span = <T>(part: Part, run: () => Promise<T>) => timeline.time(part, run);
  return {
    description: store.description,
    put: (bytes: Uint8Array) =>
      span("storing", async () => {
        const start = performance.now();
        const stored = await store.put(bytes);
        puts.push({ ...stored, by, ms: performance.now() - start });
        return stored;
      }),
    pin: (ref: ContentRef) => span("pinning", () => store.pin(ref)),
    unpin: (ref: ContentRef) => span("pinning", () => store.unpin(ref)),
    get: (ref: ContentRef, options?: GetOptions) => span("fetch-verify", () => store.get(ref, options)),
    has: (ref: ContentRef) => span("fetch-verify", () => store.has(ref)),
    isPinned: (ref: ContentRef) => span("fetch-verify", () => store.isPinned(ref)),
    close: () => store.close(),
  };
}

/** Bytes of every file under `dir`. */
async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** Samples rss and heap every 50 ms: peaks of the whole run, and of the window since the last `reset()`. */
function memorySampler() {
  const run = { rss: 0, heap: 0 };
  const window = { rss: 0, heap: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    for (const peak of [run, window]) {
      peak.rss = Math.max(peak.rss, m.rss);
      peak.heap = Math.max(peak.heap, m.heapUsed);
    }
  };
  sample();
  const timer = setInterval(sample, 50);
  timer.unref();
  return {
    window: () => (sample(), { ...window }),
    run: () => (sample(), { ...run }),
    reset: () => void ((window.rss = 0), (window.heap = 0), sample()),
    stop: () => clearInterval(timer),
  };
}

const PART_OF: Record<TimedPart, Part> = { train: "training", encode: "encoding", commit: "chain-tx", reveal: "chain-tx" };
// Up to "pinned" the aggregator only puts and pins, which the store wrapper times itself.
const AGGREGATOR_PART: Partial<Record<AggregatorStep, Part>> = { gathered: "fetch-verify", aggregated: "aggregation", submitted: "chain-tx" };

/** The gas of a round's receipts, by function. */
function roundGas(receipts: readonly Receipt[], clients: number): RoundGas {
  const of = (name: string) => receipts.filter((r) => r.name === name).map((r) => r.gasUsed);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const known = ["commit", "reveal", "submitResult", "openRound"];
  const total = sum(receipts.map((r) => r.gasUsed));
  return {
    commit: of("commit"),
    reveal: of("reveal"),
    submitResult: sum(of("submitResult")),
    openRound: sum(of("openRound")),
    other: sum(receipts.filter((r) => !known.includes(r.name)).map((r) => r.gasUsed)),
    total,
    perParticipant: total / clients,
  };
}

function checkAnchoringSettings(s: AnchoringSettings): void {
  const bad: string[] = [];
  if (!Number.isInteger(s.clients) || s.clients < 1 || s.clients > 1_000) bad.push(`clients must be an integer in 1..1000, got ${s.clients}`);
  if (!Number.isInteger(s.rounds) || s.rounds < 1) bad.push(`rounds must be a positive integer, got ${s.rounds}`);
  if (s.digits !== undefined && (!Number.isInteger(s.digits) || s.digits < s.clients)) bad.push(`digits must be an integer of at least one per client, got ${s.digits}`);
  if (!Number.isInteger(s.epochs) || s.epochs < 1) bad.push(`epochs must be a positive integer, got ${s.epochs}`);
  if (bad.length > 0) throw new AnchoringRunError(`invalid anchoring settings: ${bad.join("; ")}`);
}

/**
 * Sets up a task on `connection` (deploy, fund, stake) and runs `rounds` full rounds of
 * `clients` honest participants, measuring each. Closes the store at the end (the folder stays).
 */
export async function measureAnchoring(connection: Connection, settings: AnchoringSettings): Promise<AnchoringRun> {
  checkAnchoringSettings(settings);
  const setupStart = performance.now();
  const memory = memorySampler();
  const baselineRss = process.memoryUsage().rss;
  const { clients, seed } = settings;
  const pollMs = settings.pollMs ?? Math.min(1_000, Math.max(50, clients * 10));
  const backend = await initBackend(undefined, { log: () => {} });
  const { ethers, networkHelpers } = connection;
  const chainId = (await ethers.provider.getNetwork()).chainId;
  const deployment = await deployAnchorFL(connection, settings.dir, "default");
  const coordinatorAddress = getAddress(deployment.coordinator);
  const names = (await connectCoordinator(coordinatorAddress, ethers.provider)).interface;
  const nameOf = (to: string, data: string) => (to && getAddress(to) === coordinatorAddress ? (names.parseTransaction({ data })?.name ?? "unknown") : "other");

  const timeline = new Timeline();
  const rpc = watchRpc(connection, timeline, nameOf);
  const dataDir = path.join(settings.dir, "ipfs");
  const store = await openContentStore({ kind: "embedded", dataDir });
  const puts: RoundMeasurement["stored"][number][] = [];
  const appSettings = resolveSettings({}, { home: settings.dir });
  const contextOf = async (signer: Signer, by: "participant" | "aggregator"): Promise<Context> =>
    makeContext({
      settings: appSettings,
      provider: ethers.provider,
      chainId,
      signer,
      coordinator: await connectCoordinator(coordinatorAddress, signer),
      fromBlock: deployment.deployBlock,
      storeConfig: { kind: "embedded", dataDir },
      sharedStore: timedStore(store, timeline, by, puts),
    });
  try {
    const [owner] = await ethers.getSigners();
    const ownerCtx = await contextOf(owner, "aggregator");
    const token = await ethers.getContractAt("DemoToken", deployment.token, owner);
    await (await token.mint(owner.address, parseTokens(String(1_000 + 100 * (settings.rounds + 1))))).wait();
    const taskId = await createTaskFromOptions(
      ownerCtx,
      {
        ...TASK_DEFAULTS,
        seed: String(seed),
        token: deployment.token,
        // Each measured round ends by opening the next one, whose reward must be in escrow too.
        fund: String(100 * (settings.rounds + 1)),
        // Long windows: every full phase closes early, and each block moves the chain's clock a second.
        commitWindow: "36000",
        revealWindow: "36000",
        aggregationWindow: "36000",
        maxParticipants: String(clients),
        open: true,
      },
      () => {},
    );
    await ensureBonded(ownerCtx, taskId, () => {});

    const { train } = await loadMnist();
    const pool = settings.digits === undefined ? train : subset(train, Array.from({ length: Math.min(settings.digits, train.n) }, (_, i) => i));
    const shards = partition(pool.labels, clients, { kind: "iid" }, seed).map((indices) => subset(pool, indices));
    const joinGas: number[] = [];
    const people: { ctx: Context; data: Dataset; index: number }[] = [];
    for (let i = 0; i < clients; i++) {
      // Deterministic keys: the same seed gives the same addresses, hence the same canonical order.
      const wallet = new Wallet(id(`anchorfl anchoring benchmark ${seed} ${i}`), ethers.provider);
      await networkHelpers.setBalance(wallet.address, 10n ** 20n);
      await (await token.mint(wallet.address, parseTokens("100"))).wait();
      const ctx = await contextOf(wallet, "participant");
      const before = rpc.receipts.length;
      await join(ctx, taskId, parseTokens("50"));
      joinGas.push(...rpc.receipts.slice(before).map((r) => r.gasUsed));
      people.push({ ctx, data: shards[i], index: i });
    }
    const setupMs = performance.now() - setupStart;

    const rounds: RoundMeasurement[] = [];
    for (let r = 0; r < settings.rounds; r++) {
      timeline.clear();
      puts.length = 0;
      rpc.receipts.length = 0;
      memory.reset();
      const diskBefore = await folderBytes(dataDir);
      const t0 = performance.now();
      const running: Promise<RoundOutcome>[] = [];
      for (const p of people) {
        let ready!: () => void;
        const committed = new Promise<void>((resolve) => (ready = resolve));
        let mark = performance.now();
        const participant = new Participant({
          ctx: p.ctx,
          taskId,
          data: p.data,
          training: { epochs: settings.epochs, batchSize: settings.batchSize, learningRate: settings.learningRate, optimizer: "sgd", seed: seed * 1000 + p.index },
          pollMs,
          log: () => {},
          onStep: (step) => {
            // Each of these steps directly follows a journal write (temp file, fsync, rename; folder fsync for a new salt).
            const now = performance.now();
            if (step === "journaled" || step === "committed" || step === "revealed") timeline.add("journaling", mark, now);
            mark = now;
            if (step !== "trained" && step !== "pinned" && step !== "journaled") ready();
          },
          onTiming: (part, _round, start, end) => {
            timeline.add(PART_OF[part], start, end);
            mark = end;
          },
        });
        const run = participant.participate();
        running.push(run);
        // A failure before the commit must not leave the loop waiting.
        await Promise.race([committed, run.then(() => undefined, () => undefined)]);
      }
      const outcomes = await Promise.all(running);
      const notRevealed = outcomes.filter((o) => o.kind !== "revealed");
      if (notRevealed.length > 0) throw new AnchoringRunError(`${notRevealed.length} participant(s) did not reveal: ${notRevealed.map((o) => o.kind).join(", ")}`);

      let mark = performance.now();
      const summary = await aggregateOnce(ownerCtx, taskId, {
        pollMs,
        log: () => {},
        onStep: (step) => {
          const now = performance.now();
          const part = AGGREGATOR_PART[step];
          if (part) timeline.add(part, mark, now);
          mark = now;
        },
      });
      if (summary.status !== "submitted" || summary.phase !== "Finalized" || !summary.result) {
        throw new AnchoringRunError(`round ${summary.round}: the aggregator's result was ${summary.status}, the round is ${summary.phase}`);
      }
      await timeline.time("chain-tx", () => openRound(ownerCtx.coordinator, taskId));
      const t1 = performance.now();

      const updates = puts.filter((x) => x.by === "participant").map((x) => x.size);
      const sizeOf = (digest: string) => puts.find((x) => x.by === "aggregator" && x.digest.toLowerCase() === digest.toLowerCase())?.size ?? 0;
      const model = sizeOf(summary.result.newModelDigest);
      const report = sizeOf(summary.result.reportDigest);
      const total = puts.reduce((a, x) => a + x.size, 0);
      const peak = memory.window();
      rounds.push({
        round: summary.round,
        wallMs: t1 - t0,
        split: splitWallTime(timeline.spans, t0, t1),
        gas: roundGas(rpc.receipts, clients),
        bytes: { updates, model, report, total, perParticipant: total / clients, onDisk: (await folderBytes(dataDir)) - diskBefore },
        stored: [...puts],
        slashes: summary.result.slashes.length,
        newModelDigest: summary.result.newModelDigest,
        peakRss: peak.rss,
        peakHeap: peak.heap,
      });
    }
    const whole = memory.run();
    return {
      settings: { ...settings, pollMs, digits: pool.n },
      backend: `${backend.name}${backend.simd ? " (SIMD)" : ""}`,
      taskId,
      coordinator: coordinatorAddress,
      deployBlock: deployment.deployBlock,
      participants: await Promise.all(people.map((p) => p.ctx.signer.getAddress())),
      setupMs,
      joinGas,
      rounds,
      memory: { baselineRss, peakRss: whole.rss, peakHeap: whole.heap },
    };
  } finally {
    memory.stop();
    rpc.restore();
    await store.close();
  }
}
