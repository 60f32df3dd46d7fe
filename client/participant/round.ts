// One participant's rounds against the chain and the content store: find the open round, fetch
// and check the global model, train (under a behaviour), encode, pin, journal, commit, wait for
// the reveal phase, reveal. On start, entries left in the journal by a crash are revealed first.
// Decisions are the pure functions of decide.ts; this file is the I/O around them.
import { getAddress } from "ethers";
import { phaseName, readReveals, readRound, requireTask, send, waitForPhase, withRaceHeadroom, type Phase } from "../../lib/chain/coordinator.js";
import { allEvents } from "../../lib/chain/logs.js";
import { ContractRevertError } from "../../lib/chain/revert.js";
import { RpcUnavailableError } from "../../lib/chain/rpc.js";
import { addResidual, residualAfter } from "../../lib/codec/compression.js";
import { decodeUpdate, encodeUpdate } from "../../lib/codec/update-file.js";
import type { UpdateMetadata } from "../../lib/codec/update-metadata.js";
import { randomSalt, commitmentOf } from "../../lib/commitment.js";
import type { Hex32 } from "../../lib/digest.js";
import { currentModelPointer, fetchModel, fetchModelSpec, type ModelPointer } from "../../lib/protocol/models.js";
import { usesErrorFeedback } from "../../lib/protocol/options.js";
import { ContentTimeoutError, StoreUnavailableError } from "../../lib/store/index.js";
import type { Tensor, TensorShape } from "../../lib/tensors.js";
import type { Context } from "../../scripts/commands/context.js";
import { corruptFile, formatBehaviour, withholdsReveal, type Behaviour, type CraftContext } from "../attacks/behaviours.js";
import { trainAs } from "../attacks/train-as.js";
import type { Dataset } from "../data/dataset.js";
import { modelShapes, type ModelSpec } from "../model/spec.js";
import type { ProgressListener } from "../train/progress.js";
import type { TrainOptions } from "../train/train.js";
import { chainNow } from "./account.js";
import { decideCommit, decideRecovery, type CommitDecision } from "./decide.js";
import { ModelMismatchError, NotEnoughStakeError, RoundNotOpenError, explainRevert } from "./errors.js";
import { JournalFile, entryCommitment, isPending, journalPath, taskEntries, type JournalEntry } from "./journal.js";
import { readResidual, residualPath, writeResidual, type ResidualKey } from "./residual.js";

/** Training settings a participant chooses; the model, weights and data come from the round. */
export type LocalTraining = Omit<TrainOptions, "spec" | "globalWeights" | "data" | "indices" | "onProgress">;

/** What colluding attackers know (ALIE, IPM): by default the previous round's revealed updates. */
export type ColluderKnowledge = Pick<CraftContext, "honestUpdates" | "participants" | "byzantine">;

export type Step = "recovered" | "trained" | "pinned" | "journaled" | "committed" | "revealed" | "withheld" | "missed" | "skipped";

/** Parts of a round a benchmark times through `onTiming` (commit and reveal include the wait for the receipt). */
export type TimedPart = "train" | "encode" | "commit" | "reveal";

export interface ParticipantOptions {
  readonly ctx: Context;
  readonly taskId: bigint;
  /** This client's shard. */
  readonly data: Dataset;
  readonly training: LocalTraining;
  readonly behaviour?: Behaviour;
  /** Overrides the default knowledge of ALIE / IPM attackers (a simulation may pass the round's honest updates). */
  readonly knowledge?: (round: bigint) => Promise<ColluderKnowledge>;
  /** Default: <home>/journal/<address>.json. */
  readonly journalFile?: string;
  readonly safetyMarginS?: number;
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
  readonly onProgress?: ProgressListener;
  /** Called after each step; a test may throw here to simulate a crash. */
  readonly onStep?: (step: Step, round: bigint) => void | Promise<void>;
  /** Hears when each timed part of a round started and ended (performance.now() ms); for the anchoring benchmark. */
  readonly onTiming?: (part: TimedPart, round: bigint, startMs: number, endMs: number) => void;
}

export type RoundOutcome =
  | { readonly kind: "revealed" | "withheld"; readonly round: bigint; readonly entry: JournalEntry }
  | { readonly kind: "missed"; readonly round: bigint; readonly entry: JournalEntry }
  | { readonly kind: "skipped"; readonly round: bigint; readonly decision: Exclude<CommitDecision, { action: "commit" }> };

/** What the round's model must look like: opened on the current global model, of the task's spec. */
export function checkGlobalModel(
  meta: UpdateMetadata,
  expected: {
    taskId: bigint;
    pointer: ModelPointer;
    roundBase: string;
    modelSpecDigest: string;
    /** For a model a round produced: the model that round was opened on (its base, one link down the chain). */
    producedFrom?: string;
  },
): void {
  const { pointer } = expected;
  if (pointer.digest.toLowerCase() !== expected.roundBase.toLowerCase()) {
    throw new ModelMismatchError(`the round was opened on model ${expected.roundBase}, but the current global model is ${pointer.digest}`);
  }
  if (meta.modelSpecDigest !== expected.modelSpecDigest.toLowerCase()) {
    throw new ModelMismatchError(`global model ${pointer.digest} was built for spec ${meta.modelSpecDigest}, the task's spec is ${expected.modelSpecDigest}`);
  }
  // Genesis files are written before the task exists (task 0, round 0); later models name their task and round.
  if (pointer.round > 0n && (meta.taskId !== expected.taskId || meta.round !== pointer.round)) {
    throw new ModelMismatchError(
      `global model ${pointer.digest} says task ${meta.taskId} round ${meta.round}, expected task ${expected.taskId} round ${pointer.round}`,
    );
  }
  if (expected.producedFrom !== undefined && meta.baseModelDigest !== expected.producedFrom.toLowerCase()) {
    throw new ModelMismatchError(`global model ${pointer.digest} says it was built on ${meta.baseModelDigest}, but round ${pointer.round} was opened on ${expected.producedFrom}`);
  }
}

interface RoundInputs {
  readonly spec: ModelSpec;
  readonly specDigest: Hex32;
  readonly pointer: ModelPointer;
  readonly weights: Tensor[];
}

/** Where a top-k client's error-feedback residual lives, and what it carries into this round. */
interface Feedback {
  readonly file: string;
  readonly key: ResidualKey;
  readonly shapes: readonly TensorShape[];
  readonly carried?: Float32Array;
}


export class Participant {
  readonly #o: ParticipantOptions;
  readonly #log: (line: string) => void;
  #me?: string;
  #journal?: JournalFile;
  /** The residual this round's update leaves; written once the update is committed (see residual.ts). */
  #pendingResidual?: Feedback & { readonly round: bigint; readonly values: Float32Array };

  constructor(options: ParticipantOptions) {
    this.#o = options;
    this.#log = options.log ?? ((line) => console.log(line));
  }

  get #c() {
    return this.#o.ctx.coordinator;
  }

  async address(): Promise<string> {
    return (this.#me ??= getAddress(await this.#o.ctx.signer.getAddress()));
  }

  async journal(): Promise<JournalFile> {
    const me = await this.address();
    return (this.#journal ??= new JournalFile(this.#o.journalFile ?? journalPath(this.#o.ctx.settings.home, me), me));
  }

  async #step(step: Step, round: bigint, line: string): Promise<void> {
    this.#log(`task ${this.#o.taskId} round ${round}: ${line}`);
    await this.#o.onStep?.(step, round);
  }

  async #timed<T>(part: TimedPart, round: bigint, run: () => T | Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await run();
    } finally {
      this.#o.onTiming?.(part, round, start, performance.now());
    }
  }

  async #coordinatorAddress(): Promise<string> {
    return getAddress(await this.#c.getAddress());
  }

  /** This deployment's and task's journal entries. */
  async entries(): Promise<JournalEntry[]> {
    const journal = await (await this.journal()).read();
    return taskEntries(journal, this.#o.ctx.chainId, await this.#coordinatorAddress(), this.#o.taskId);
  }

  /**
   * Settles every pending journal entry of this task: reveals those whose round is in Reveal,
   * drops commits that never landed, and logs (and clears) those whose reveal window passed.
   * Entries whose round still takes commits are left for `participate` to reveal.
   */
  async recover(): Promise<RoundOutcome[]> {
    const out: RoundOutcome[] = [];
    for (const entry of (await this.entries()).filter(isPending)) {
      const round = BigInt(entry.round);
      const action = decideRecovery(await this.#entryFacts(entry));
      const journal = await this.journal();
      if (action === "not-committed") {
        await journal.remove(entry);
        await this.#step("recovered", round, "the journaled commit never reached the chain; dropped it (nothing at stake)");
      } else if (action === "revealed") {
        await journal.put({ ...entry, state: "revealed" });
        await this.#step("recovered", round, "the chain already shows this reveal; journal updated");
      } else if (action === "await-commit") {
        await this.#step("recovered", round, "the journaled commit is not on chain yet and the account has transactions waiting to be mined; waiting for it rather than committing again (a second commit would lose this one's salt)");
      } else if (action === "await-reveal") {
        await journal.put({ ...entry, state: "committed" });
      } else if (action === "reveal") {
        await this.#step("recovered", round, `found an unrevealed commit in the journal (update ${entry.cid}); revealing it`);
        out.push({ kind: "revealed", round, entry: await this.#reveal({ ...entry, state: "committed" }) });
      } else {
        await journal.remove(entry);
        await this.#step("missed", round, "the reveal window passed before this commit was revealed: it will be slashed for no reveal");
        out.push({ kind: "missed", round, entry });
      }
    }
    return out;
  }

  async #entryFacts(entry: JournalEntry) {
    const round = BigInt(entry.round);
    const me = await this.address();
    const { provider } = this.#o.ctx;
    const [phase, info, pendingNonce, minedNonce] = await Promise.all([
      this.#c.roundPhase(this.#o.taskId, round),
      this.#c.participantInfo(this.#o.taskId, me),
      provider.getTransactionCount(me, "pending"),
      provider.getTransactionCount(me, "latest"),
    ]);
    const here = info.lastRound === round;
    return {
      phase: phaseName(phase),
      committedOnChain: here && (info.revealed || info.commitment.toLowerCase() === entryCommitment(entry, me).toLowerCase()),
      revealedOnChain: here && info.revealed,
      sendsPending: pendingNonce > minedNonce,
    };
  }

  /** Whether to commit in the task's current round now (see decideCommit). */
  async decide(): Promise<{ round: bigint; phase: Phase; decision: CommitDecision }> {
    const { taskId, ctx } = this.#o;
    const round = await this.#c.currentRound(taskId);
    if (round === 0n) return { round, phase: "None", decision: { action: "wait", reason: "the task has no round yet" } };
    const [state, info, now] = await Promise.all([readRound(this.#c, taskId, round), this.#c.participantInfo(taskId, await this.address()), chainNow(ctx.provider)]);
    const decision = decideCommit({
      phase: state.phase,
      now,
      commitEnd: state.commitEnd,
      revealEnd: state.revealEnd,
      alreadyCommitted: info.lastRound === round,
      safetyMarginS: this.#o.safetyMarginS,
    });
    return { round, phase: state.phase, decision };
  }

  /** Refuses early (before any training) when the free stake is below the task's minimum. */
  async checkStake(): Promise<void> {
    const { taskId } = this.#o;
    const [config, info] = await Promise.all([this.#c.taskConfig(taskId), this.#c.participantInfo(taskId, await this.address())]);
    const free = info.stake - info.pendingWithdrawal;
    if (free < config.minStake) {
      throw new NotEnoughStakeError(`task ${taskId} needs ${config.minStake} units of free stake to commit; ${await this.address()} has ${free}`, {
        hint: `stake with \`anchorfl client join --task ${taskId} --stake <tokens>\` (stake pending withdrawal does not count)`,
        details: { needed: config.minStake, available: free },
      });
    }
  }

  /** The round's spec and global model, checked against the chain. */
  async #inputs(round: bigint): Promise<RoundInputs> {
    const { ctx, taskId } = this.#o;
    const store = await ctx.store();
    const config = await this.#c.taskConfig(taskId);
    const spec = await fetchModelSpec(store, config.modelSpecDigest);
    const pointer = await currentModelPointer(this.#c, store, taskId, ctx.fromBlock);
    const roundBase = await this.#openedOn(round);
    const producedFrom = pointer.round > 0n ? await this.#openedOn(pointer.round) : undefined;
    const model = await fetchModel(store, pointer, spec);
    checkGlobalModel(model.metadata, { taskId, pointer, roundBase, modelSpecDigest: config.modelSpecDigest, producedFrom });
    return { spec, specDigest: config.modelSpecDigest as Hex32, pointer, weights: model.tensors };
  }

  /** The model `round` was opened on, from its RoundOpened event. */
  async #openedOn(round: bigint): Promise<string> {
    const { taskId, ctx } = this.#o;
    const opened = await allEvents(this.#c, this.#c.filters.RoundOpened(taskId, round), { fromBlock: ctx.fromBlock });
    if (opened.length !== 1) throw new RoundNotOpenError(`found ${opened.length} RoundOpened events for task ${taskId} round ${round}, expected one`);
    return this.#c.interface.parseLog(opened[0])!.args.baseModelDigest as string;
  }

  /** Updates other participants revealed in the previous round (what copiers and colluders can see), decodable ones only. */
  async previousRoundUpdates(round: bigint, spec: ModelSpec): Promise<Tensor[][]> {
    if (round <= 1n) return [];
    const me = await this.address();
    const store = await this.#o.ctx.store();
    const reveals = await readReveals(this.#c, this.#o.taskId, round - 1n, { fromBlock: this.#o.ctx.fromBlock });
    const out: Tensor[][] = [];
    for (const r of reveals.filter((x) => x.participant !== me)) {
      try {
        out.push(decodeUpdate(await store.get({ digest: r.updateDigest, contentRoot: r.contentRoot }), { expected: modelShapes(spec) }).tensors);
      } catch (error) {
        this.#log(`ignoring ${r.participant}'s round ${round - 1n} update ${r.updateDigest}: ${(error as Error).message.split("\n")[0]}`);
      }
    }
    return out;
  }

  /** This client's last finished update of the task (a stale free rider resubmits it). */
  async #previousOwn(round: bigint, spec: ModelSpec): Promise<Tensor[] | undefined> {
    const last = (await this.entries()).filter((e) => e.state === "revealed" && BigInt(e.round) < round).at(-1);
    if (!last) return undefined;
    const bytes = await (await this.#o.ctx.store()).get({ digest: last.updateDigest, contentRoot: last.contentRoot });
    return decodeUpdate(bytes, { expected: modelShapes(spec) }).tensors;
  }

  /** Only what the behaviour needs is fetched: free riders and colluders look at earlier rounds. */
  async #craftContext(b: Behaviour, round: bigint, spec: ModelSpec): Promise<Omit<CraftContext, "ownDelta">> {
    // A fresh data order (and attack noise) each round, reproducible from the client's seed.
    const seed = Number((BigInt(this.#o.training.seed) * 1_000_003n + round) % 2_147_483_647n);
    if (b.kind === "free-ride" && b.mode === "stale") return { seed, previousOwn: await this.#previousOwn(round, spec) };
    if (b.kind === "free-ride" && b.mode === "copy") return { seed, previousOther: (await this.previousRoundUpdates(round, spec))[0] };
    if (b.kind === "alie" || b.kind === "ipm") {
      if (this.#o.knowledge) return { seed, ...(await this.#o.knowledge(round)) };
      const honestUpdates = await this.previousRoundUpdates(round, spec);
      return { seed, honestUpdates, participants: honestUpdates.length + 1, byzantine: 1 };
    }
    return { seed };
  }

  /** Trains, encodes, pins and journals this round's update (state "committing"); nothing is sent yet. */
  async #prepare(round: bigint): Promise<JournalEntry> {
    const { ctx, taskId, training } = this.#o;
    const behaviour = this.#o.behaviour ?? { kind: "honest" };
    const me = await this.address();
    const inputs = await this.#inputs(round);
    const craft = await this.#craftContext(behaviour, round, inputs.spec);
    const result = await this.#timed("train", round, () =>
      trainAs(
        behaviour,
        { ...training, seed: craft.seed, spec: inputs.spec, globalWeights: inputs.weights, data: this.#o.data, onProgress: this.#o.onProgress },
        craft,
      ),
    );
    const t = result.training;
    await this.#step(
      "trained",
      round,
      t
        ? `trained on ${t.numSamples} samples (${training.epochs} epochs, loss ${t.lossBefore.toFixed(4)} -> ${t.lossAfter.toFixed(4)}, ${Math.round(t.wallMs)} ms on ${t.backend})`
        : `prepared a ${formatBehaviour(behaviour)} update without training`,
    );
    const extra: Record<string, string> = t
      ? {
          loss_before: t.lossBefore.toPrecision(6),
          loss_after: t.lossAfter.toPrecision(6),
          epochs: String(training.epochs),
          wall_ms: String(Math.round(t.wallMs)),
          backend: t.backend,
          ...(t.privacy ? { dp_epsilon: String(t.privacy.epsilon), dp_delta: String(t.privacy.delta) } : {}),
        }
      : {};
    const compression = inputs.spec.options?.compression;
    const feedback = usesErrorFeedback(compression) ? await this.#feedback(inputs) : undefined;
    const update = feedback ? addResidual(result.update, feedback.carried) : result.update;
    const bytes = await this.#timed("encode", round, () => {
      const encoded = encodeUpdate(
        update,
        {
          taskId,
          round,
          participant: me,
          baseModelDigest: inputs.pointer.digest,
          numSamples: result.numSamples,
          kind: "delta",
          modelSpecDigest: inputs.specDigest,
          extra,
        },
        compression,
      );
      // What stays behind is measured against what the aggregator will decode from these very bytes.
      if (feedback) this.#pendingResidual = { ...feedback, round, values: residualAfter(update, decodeUpdate(encoded, { expected: feedback.shapes }).tensors) };
      return corruptFile(behaviour, encoded);
    });
    const store = await ctx.store();
    const stored = await store.put(bytes);
    const journal = await this.journal();
    const coordinator = await this.#coordinatorAddress();
    // Pin and journal at once: both only need the put's CID and both must be done before the
    // commit is sent, so the journal's fsyncs wait on the disk while the pin does its work.
    const [pinned, journaled] = await Promise.allSettled([
      store.pin(stored.cid),
      journal.put({
        chainId: String(ctx.chainId),
        coordinator,
        taskId: String(taskId),
        round: String(round),
        updateDigest: stored.digest,
        contentRoot: stored.contentRoot,
        salt: randomSalt(),
        numSamples: result.numSamples,
        cid: stored.cid,
        state: "committing",
      }),
    ]);
    if (pinned.status === "rejected") {
      // Nothing was committed: the entry for an update that is not pinned must not stay behind.
      if (journaled.status === "fulfilled") await journal.remove(journaled.value);
      throw pinned.reason;
    }
    if (journaled.status === "rejected") throw journaled.reason;
    await this.#step("pinned", round, `update ${stored.cid} (${stored.size} bytes) pinned in ${store.description}`);
    await this.#step("journaled", round, `salt and digest written to ${journal.file}`);
    return journaled.value;
  }

  async #commit(entry: JournalEntry): Promise<JournalEntry> {
    const { ctx, taskId } = this.#o;
    const round = BigInt(entry.round);
    const commitment = commitmentOf({ ...entry, chainId: ctx.chainId, participant: await this.address() });
    const journal = await this.journal();
    try {
      await this.#timed("commit", round, () => send("commit", async () => this.#c.commit(taskId, round, commitment, { gasLimit: withRaceHeadroom(await this.#c.commit.estimateGas(taskId, round, commitment)) })));
    } catch (error) {
      // A revert means nothing was committed: forget the entry. Any other failure leaves it
      // "committing" for recover() to settle against the chain.
      if (error instanceof ContractRevertError) await journal.remove(entry);
      throw explainRevert(error, taskId);
    }
    const committed = await journal.put({ ...entry, state: "committed" });
    await this.#step("committed", round, `committed ${commitment}`);
    return committed;
  }

  async #reveal(entry: JournalEntry): Promise<JournalEntry> {
    const { taskId } = this.#o;
    const round = BigInt(entry.round);
    try {
      const args = [taskId, round, entry.updateDigest, entry.numSamples, entry.salt, entry.contentRoot] as const;
      await this.#timed("reveal", round, () => send("reveal", async () => this.#c.reveal(...args, { gasLimit: withRaceHeadroom(await this.#c.reveal.estimateGas(...args)) })));
    } catch (error) {
      throw explainRevert(error, taskId);
    }
    const revealed = await (await this.journal()).put({ ...entry, state: "revealed" });
    await this.#step("revealed", round, `revealed update ${entry.cid} (${entry.numSamples} samples)`);
    return revealed;
  }

  /** Waits for the entry's round to leave Commit, then reveals (or withholds, or reports the miss). */
  async #finish(entry: JournalEntry): Promise<RoundOutcome> {
    const round = BigInt(entry.round);
    const journal = await this.journal();
    if (withholdsReveal(this.#o.behaviour ?? { kind: "honest" })) {
      const withheld = await journal.put({ ...entry, state: "withheld" });
      await this.#step("withheld", round, "committed and withholding the reveal (commit-then-withhold behaviour)");
      return { kind: "withheld", round, entry: withheld };
    }
    const phase = await waitForPhase(this.#c, this.#o.taskId, round, ["Reveal", "Aggregation", "Finalized", "Failed"], {
      pollMs: this.#o.pollMs,
      signal: this.#o.signal,
    });
    if (phase !== "Reveal") {
      await journal.remove(entry);
      await this.#step("missed", round, `the round reached ${phase} before the reveal: it will be slashed for no reveal`);
      return { kind: "missed", round, entry };
    }
    return { kind: "revealed", round, entry: await this.#reveal(entry) };
  }

  /**
   * Takes part in the task's current round if it accepts a commit now: recover, decide, train,
   * pin, journal, commit, wait, reveal. Returns what happened, or why it sat the round out.
   */
  async participate(): Promise<RoundOutcome> {
    await this.#settle();
    return this.#takePart();
  }

  /** Checks the task exists and settles the journal; run() keeps what this returns, participate() does not. */
  async #settle(): Promise<RoundOutcome[]> {
    await requireTask(this.#c, this.#o.taskId);
    return this.recover();
  }

  /** `participate` after `#settle`: run() calls the two apart so the journal is settled once per poll, not twice. */
  async #takePart(): Promise<RoundOutcome> {
    const entries = await this.entries();
    const pending = entries.find((e) => e.state === "committed");
    if (pending) return this.#finish(pending);
    // Left by recover() ("await-commit"): a commit sent earlier that may still land.
    const sent = entries.find((e) => e.state === "committing");
    if (sent) return { kind: "skipped", round: BigInt(sent.round), decision: { action: "wait", reason: `the commit sent for round ${sent.round} is not on chain yet` } };
    const first = await this.decide();
    if (first.decision.action !== "commit") return { kind: "skipped", round: first.round, decision: first.decision };
    await this.checkStake();
    const entry = await this.#prepare(first.round);
    if (this.#o.signal?.aborted) {
      await (await this.journal()).remove(entry);
      await this.#step("skipped", first.round, "stopped before committing");
      return { kind: "skipped", round: first.round, decision: { action: "wait", reason: "stopped before committing" } };
    }
    // Training took time: decide again with the clock as it is now, right before committing.
    const again = await this.decide();
    if (again.round !== first.round || again.decision.action !== "commit") {
      await (await this.journal()).remove(entry);
      const decision = again.decision.action === "commit" ? ({ action: "too-late", reason: `round ${again.round} opened meanwhile` } as const) : again.decision;
      await this.#step("skipped", first.round, `not committing: ${decision.reason}`);
      return { kind: "skipped", round: first.round, decision };
    }
    const committed = await this.#commit(entry);
    await this.#keepResidual(first.round);
    return this.#finish(committed);
  }

  /** The task's residual file and the residual it holds (top-k with error feedback only). */
  async #feedback(inputs: RoundInputs): Promise<Feedback> {
    const { ctx, taskId } = this.#o;
    const key = { chainId: ctx.chainId, coordinator: await this.#coordinatorAddress(), taskId, participant: await this.address(), modelSpecDigest: inputs.specDigest };
    const file = residualPath((await this.journal()).file, key);
    const shapes = modelShapes(inputs.spec);
    const stored = await readResidual(file, key, shapes, this.#log);
    return { file, key, shapes, carried: stored?.values };
  }

  /** Once the round's update is committed, its residual replaces the carried one on disk. */
  async #keepResidual(round: bigint): Promise<void> {
    const pending = this.#pendingResidual;
    this.#pendingResidual = undefined;
    if (pending?.round !== round) return;
    await writeResidual(pending.file, pending.key, pending.shapes, { round, values: pending.values });
  }

  /**
   * Takes part in every round until `signal` aborts (checked between steps), polling for new rounds.
   * With `once`, handles the current round only and fails clearly when it takes no commits.
   */
  async run({ once = false }: { once?: boolean } = {}): Promise<RoundOutcome[]> {
    const outcomes: RoundOutcome[] = [];
    const pollMs = this.#o.pollMs ?? 2_000;
    let lastWait = "";
    let retryMs = pollMs;
    while (!this.#o.signal?.aborted) {
      let outcome: RoundOutcome;
      let recovered: RoundOutcome[];
      try {
        recovered = await this.#settle();
        outcome = await this.#takePart();
        retryMs = pollMs;
      } catch (error) {
        const message = (error as Error).message.split("\n")[0];
        if (this.#o.signal?.aborted) {
          this.#log(`stopped while waiting (${message}); a pending commit is in the journal and is revealed on restart`);
          break;
        }
        if (once || !isOutage(error)) throw error;
        this.#log(`${message}; retrying in ${Math.round(retryMs / 1000)} s (a pending commit stays in the journal)`);
        await sleep(retryMs, this.#o.signal);
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
        continue;
      }
      outcomes.push(...recovered);
      if (outcome.kind !== "skipped") outcomes.push(outcome);
      if (once) {
        // A restart after a crash has done its work when it revealed what the journal held.
        if (outcome.kind === "skipped" && recovered.length === 0) {
          throw new RoundNotOpenError(`task ${this.#o.taskId} round ${outcome.round} takes no commit now: ${outcome.decision.reason}`, {
            hint: "run without --once to wait for the next round",
          });
        }
        return outcomes;
      }
      // One line per change of situation, not one per poll.
      const situation = outcome.kind === "skipped" ? `${outcome.round}:${outcome.decision.action}` : "";
      if (outcome.kind === "skipped" && situation !== lastWait) {
        this.#log(`task ${this.#o.taskId} round ${outcome.round}: ${outcome.decision.reason}; waiting for the next round`);
      }
      lastWait = situation;
      await sleep(this.#o.pollMs ?? 2_000, this.#o.signal);
    }
    return outcomes;
  }
}

/** Longest pause between attempts while the chain or the store is unreachable. */
const MAX_RETRY_MS = 60_000;

/** Outages a long-running client waits out (any pending commit stays in the journal); every other error stops it. */
function isOutage(error: unknown): boolean {
  return error instanceof RpcUnavailableError || error instanceof StoreUnavailableError || error instanceof ContentTimeoutError;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
