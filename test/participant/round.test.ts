// The participant against the in-process chain and a real embedded store in a temp folder:
// three clients stake with a permit, train on 100 real digits each, pin, commit and reveal a
// real round; a client crashing after its commit reveals from its journal on restart; a crash
// before the commit loses nothing; a missed reveal is reported; too-late, stake and task errors
// are typed; rewards are claimed with proofs rebuilt from the pinned report, and a report that
// disagrees with the chain's root is refused.
import { readFile } from "node:fs/promises";
import { expect } from "chai";
import { network } from "hardhat";
import type { Signer } from "ethers";
import { alieZ, innerProductManipulation, littleIsEnough } from "../../client/attacks/updates.js";
import type { Dataset } from "../../client/data/dataset.js";
import { loadMnist } from "../../client/data/mnist.js";
import { modelSpecDigest, mlpSpec } from "../../client/model/spec.js";
import { claimAll, join, participantStatus, requestWithdrawal, completeWithdrawal } from "../../client/participant/account.js";
import { NotEnoughStakeError, RewardReportMismatchError, RoundNotOpenError, explainRevert } from "../../client/participant/errors.js";
import { journalPath, readJournal } from "../../client/participant/journal.js";
import { Participant, type ParticipantOptions, type Step } from "../../client/participant/round.js";
import { ContractRevertError } from "../../lib/chain/revert.js";
import { CoordinatorError, readReveals, send, slashReasonCode } from "../../lib/chain/coordinator.js";
import { SafetensorsError } from "../../lib/codec/errors.js";
import { encodeUpdate, decodeUpdate } from "../../lib/codec/update-file.js";
import { sha256Digest, type Hex32 } from "../../lib/digest.js";
import { fetchModel } from "../../lib/protocol/models.js";
import { REPORT_FORMAT, encodeReport, type AggregationReport } from "../../lib/protocol/report.js";
import { openRound } from "../../lib/protocol/task.js";
import { allocateRewards, buildRewardsTree } from "../../lib/rewards.js";
import { StoreUnavailableError, ZERO_ROOT } from "../../lib/store/index.js";
import { makeContext, type Context } from "../../scripts/commands/context.js";
import { freePort } from "../helpers/hardhat-node.js";
import { AnchorCoordinator__factory, type AnchorCoordinator } from "../../types/ethers-contracts/index.js";
import { TOKEN, createTestTask, openTaskWorld, shard, type Account, type TaskWorld } from "../helpers/task-world.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const WINDOW = 600;
const BUDGET = 90n * TOKEN;
const spec = mlpSpec({ seed: 0 });

class Crash extends Error {}

/** Awaits `p`, which must reject with an error of `type` whose message matches `text`. */
async function expectRejection(p: Promise<unknown>, type: new (...args: never[]) => Error, text?: RegExp): Promise<Error> {
  const error = await p.then(
    () => expect.fail(`expected a ${type.name}, the call succeeded`),
    (e: unknown) => e as Error,
  );
  expect(error).to.be.instanceOf(type, (error as Error).message);
  if (text) expect(error.message).to.match(text);
  return error;
}

describe("participant: rounds on the in-process chain with an embedded store", function () {
  this.timeout(120_000);
  let world: TaskWorld;
  let clients: Account[];
  let outsider: Account;
  let taskId: bigint;
  let genesisDigest: Hex32;
  let shards: Dataset[];
  const lines: string[] = [];

  const partsFor = (signer: Signer) => world.partsFor(signer);
  const contextFor = (signer: Signer): Context => world.contextFor(signer);

  function participant(i: number, extra: Partial<ParticipantOptions> = {}): Participant {
    return new Participant({
      ctx: contextFor(clients[i]),
      taskId,
      data: shards[i],
      training: { epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: i },
      pollMs: 50,
      log: (l) => lines.push(`p${i + 1} ${l}`),
      ...extra,
    });
  }

  const crashAt = (at: Step) => (step: Step) => {
    if (step === at) throw new Crash(`simulated crash after ${step}`);
  };

  const coordinator = (): AnchorCoordinator => world.coordinator();

  /** Finalizes the current round as the (only) aggregator would, with a real model file and report. */
  async function finalize(rewarded: string[], slashedNoReveal: string[], tamper = false): Promise<void> {
    const c = coordinator();
    const round = await c.currentRound(taskId);
    // Any well-formed model will do here: carry the current one forward under the new round's metadata.
    const weights = (await fetchModel(world.store, { digest: (await c.globalModel(taskId)) as Hex32, contentRoot: ZERO_ROOT }, spec)).tensors;
    const model = await world.store.put(
      encodeUpdate(weights, {
        taskId,
        round,
        participant: world.owner.address,
        baseModelDigest: (await c.globalModel(taskId)) as Hex32,
        numSamples: 100 * rewarded.length,
        kind: "model",
        modelSpecDigest: modelSpecDigest(spec),
        extra: {},
      }),
    );
    await world.store.pin(model.cid);
    const allocations = allocateRewards(BUDGET, rewarded.map((account) => ({ account, weight: 100n })));
    const tree = buildRewardsTree(allocations);
    // A tampered report promises more than the tree the aggregator put on chain.
    const published = tamper ? allocations.map((a) => ({ ...a, amount: a.amount * 2n })) : allocations;
    const report: AggregationReport = {
      format: REPORT_FORMAT,
      chainId: world.chainId.toString(),
      coordinator: world.coordinatorAddress,
      taskId: taskId.toString(),
      round: round.toString(),
      baseModelDigest: (await c.globalModel(taskId)) as Hex32,
      modelSpecDigest: modelSpecDigest(spec),
      rule: { name: "fedavg", params: {} },
      policy: { name: "none", params: {} },
      participants: [],
      model: { digest: model.digest, contentRoot: model.contentRoot, numSamples: String(100 * rewarded.length) },
      rewards: { budget: BUDGET.toString(), total: tree.total.toString(), root: tree.root, allocations: published.map((a) => ({ account: a.account, amount: a.amount.toString() })) },
      slashes: slashedNoReveal.map((participant) => ({ participant, reason: "NoReveal" as const })),
      software: { name: "anchorfl", version: "test" },
    };
    const reportFile = await world.store.put(encodeReport(report));
    await world.store.pin(reportFile.cid);
    const phase = await c.roundPhase(taskId, round);
    if (phase !== 3n) await time.increaseTo((await c.roundInfo(taskId, round)).revealEnd);
    await send("submit", () =>
      c.submitResult(taskId, round, {
        newModelDigest: model.digest,
        reportDigest: reportFile.digest,
        rewardsRoot: tree.root,
        rewardsTotal: tree.total,
        slashes: slashedNoReveal.map((participant) => ({ participant, reason: slashReasonCode("NoReveal") })),
      }),
    );
  }

  before(async () => {
    world = await openTaskWorld(ethers, { prefix: "anchorfl-participant-", funded: 4 });
    clients = world.signers.slice(1, 4);
    outsider = world.signers[4];
    const c = coordinator();
    const task = await createTestTask(world, { spec });
    taskId = task.taskId;
    genesisDigest = task.genesis.model.digest;
    await (await world.token.approve(world.coordinatorAddress, 10n * TOKEN)).wait();
    await send("bond", () => c.bondAggregator(taskId));

    const { train } = await loadMnist();
    shards = [0, 1, 2].map((i) => shard(train, i));
  });

  after(async () => {
    await world?.close();
  });

  it("three clients join with a permit, then commit and reveal a real round whose pinned files match the reveals", async () => {
    for (const s of clients) {
      const stake = await join(contextFor(s), taskId, 150n * TOKEN);
      expect(stake).to.equal(150n * TOKEN);
    }
    expect(await world.token.allowance(clients[0].address, world.coordinatorAddress)).to.equal(0n, "the permit allowed exactly the deposit");
    await openRound(coordinator(), taskId);

    const outcomes = await Promise.all([0, 1, 2].map((i) => participant(i).participate()));
    expect(outcomes.map((o) => o.kind)).to.deep.equal(["revealed", "revealed", "revealed"]);

    const reveals = await readReveals(coordinator(), taskId, 1n, { fromBlock: world.fromBlock });
    expect(reveals.map((r) => r.participant).sort()).to.deep.equal(clients.map((s) => s.address).sort());
    for (const r of reveals) {
      const bytes = await world.store.get({ digest: r.updateDigest, contentRoot: r.contentRoot });
      expect(sha256Digest(bytes)).to.equal(r.updateDigest);
      expect(await world.store.isPinned({ digest: r.updateDigest, contentRoot: r.contentRoot })).to.equal(true);
      const file = decodeUpdate(bytes);
      expect(file.metadata.participant).to.equal(r.participant);
      expect(file.metadata.baseModelDigest).to.equal(genesisDigest);
      expect(file.metadata).to.include({ kind: "delta", taskId, round: 1n, numSamples: 100 });
      expect(r.numSamples).to.equal(100n);
      expect(Number(file.metadata.extra.loss_after)).to.be.lessThan(Number(file.metadata.extra.loss_before));
      expect(file.metadata.extra.backend).to.equal("wasm");
      const journal = await readJournal(journalPath(world.dir, r.participant), r.participant);
      expect(journal.entries.map((e) => [e.round, e.state, e.updateDigest])).to.deep.equal([["1", "revealed", r.updateDigest]]);
    }
    const order = lines.filter((l) => l.startsWith("p1 ")).map((l) => l.replace(/^p1 task \d+ round \d+: (\w+).*/, "$1"));
    expect(order).to.deep.equal(["trained", "update", "salt", "committed", "revealed"]);
  });

  it("a client that crashes after committing reveals from its journal on restart; a crash before the commit costs nothing; a missed reveal is reported", async () => {
    await finalize(clients.map((s) => s.address), []);
    const round = await openRound(coordinator(), taskId);

    // p1 crashes right after its commit landed; p2 after journaling but before sending the commit;
    // p3 after committing too, but comes back only once the reveal window has passed.
    await expectRejection(participant(0, { onStep: crashAt("committed") }).participate(), Crash);
    await expectRejection(participant(1, { onStep: crashAt("journaled") }).participate(), Crash);
    await expectRejection(participant(2, { onStep: crashAt("committed") }).participate(), Crash);
    const before = await readJournal(journalPath(world.dir, clients[0].address), clients[0].address);
    const pending = before.entries.find((e) => e.round === String(round))!;
    expect(pending.state).to.equal("committed");

    // Fresh instances: nothing survives but the journal files and the store.
    const p2Entries = await participant(1).entries();
    expect(p2Entries.at(-1)!.state).to.equal("committing");
    await time.increaseTo((await coordinator().roundInfo(taskId, round)).commitEnd);
    const recovered = await participant(0).recover();
    expect(recovered.map((o) => [o.kind, o.round])).to.deep.equal([["revealed", round]]);
    const reveals = await readReveals(coordinator(), taskId, round, { fromBlock: world.fromBlock });
    expect(reveals.map((r) => [r.participant, r.updateDigest])).to.deep.equal([[clients[0].address, pending.updateDigest]]);
    expect(await participant(1).recover()).to.deep.equal([]);
    expect((await participant(1).entries()).map((e) => e.round)).to.deep.equal(["1"], "the commit that never landed is dropped");

    await time.increaseTo((await coordinator().roundInfo(taskId, round)).revealEnd);
    const missed = await participant(2).recover();
    expect(missed.map((o) => o.kind)).to.deep.equal(["missed"]);
    expect(lines.some((l) => l.startsWith("p3 ") && l.includes("slashed for no reveal"))).to.equal(true);
    expect((await participant(2).entries()).filter((e) => e.round === String(round))).to.deep.equal([]);
  });

  it("claims rewards with proofs rebuilt from the pinned report, and refuses a report that disagrees with the on-chain root", async () => {
    await finalize([clients[0].address], [clients[2].address], true);
    const ctx = contextFor(clients[0]);
    const status = await participantStatus(ctx, taskId);
    expect(status.claimable).to.equal(BUDGET / 3n);
    expect(status.problems.map((p) => [p.round, p.error.constructor])).to.deep.equal([[2n, RewardReportMismatchError]]);
    const balance = await world.token.balanceOf(clients[0].address);
    const out: string[] = [];
    const scan = await claimAll(ctx, taskId, (l) => out.push(l));
    expect(scan.claimable.map((c) => [c.round, c.amount])).to.deep.equal([[1n, BUDGET / 3n]]);
    expect(await world.token.balanceOf(clients[0].address)).to.equal(balance + BUDGET / 3n);
    expect(await coordinator().hasClaimed(taskId, 2n, clients[0].address)).to.equal(false);
    expect(out.some((l) => l.startsWith("round 2: not claimed"))).to.equal(true);
    expect((await claimAll(ctx, taskId)).claimable).to.deep.equal([], "nothing left to claim twice");
  });

  it("sits out a round whose commit deadline is too close, and --once says why", async () => {
    const round = await openRound(coordinator(), taskId);
    await time.increaseTo((await coordinator().roundInfo(taskId, round)).commitEnd - 5n);
    const outcome = await participant(0).participate();
    expect(outcome).to.deep.include({ kind: "skipped", round });
    expect(outcome.kind === "skipped" && outcome.decision.action).to.equal("too-late");
    await expectRejection(participant(0).run({ once: true }), RoundNotOpenError, /safety margin/);
    expect((await participant(0).entries()).filter((e) => e.round === String(round))).to.deep.equal([], "no commit, no journal entry");
  });

  it("fails clearly on too little stake, an unknown task, IPFS down, and a withdrawal before it unlocks", async () => {
    await time.increase(3 * WINDOW);
    await openRound(coordinator(), taskId);
    const poor = new Participant({ ctx: contextFor(outsider), taskId, data: shards[0], training: { epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: 0 }, log: () => {} });
    await expectRejection(poor.participate(), NotEnoughStakeError, /needs 100000000000000000000 units of free stake/);
    // The contract's own refusal is translated the same way.
    const c = AnchorCoordinator__factory.connect(world.coordinatorAddress, outsider);
    const round = await c.currentRound(taskId);
    const error = await send("commit", () => c.commit(taskId, round, `0x${"ab".repeat(32)}`)).catch((e) => explainRevert(e, taskId));
    expect(error).to.be.instanceOf(NotEnoughStakeError);

    const stranger = new Participant({ ctx: contextFor(clients[0]), taskId: 99n, data: shards[0], training: { epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: 0 }, log: () => {} });
    await expectRejection(stranger.participate(), CoordinatorError, /task 99 does not exist/);
    await expectRejection(join(contextFor(clients[0]), 99n, TOKEN), CoordinatorError, /task 99 does not exist/);

    // IPFS down: the model cannot be fetched, so nothing is trained, journaled or committed.
    const offline = makeContext({ ...partsFor(clients[0]), storeConfig: { kind: "kubo", url: `http://127.0.0.1:${await freePort()}` } });
    const before = await participant(0).entries();
    await expectRejection(participant(0, { ctx: offline }).participate(), StoreUnavailableError, /unreachable/);
    expect(await participant(0).entries()).to.deep.equal(before);
    // Running continuously, the client waits the outage out instead of exiting (stopped here after two tries).
    const stop = new AbortController();
    const retries: string[] = [];
    const log = (l: string) => void (/retrying in/.test(l) && retries.push(l) === 2 && stop.abort());
    expect(await participant(0, { ctx: offline, pollMs: 20, signal: stop.signal, log }).run()).to.deep.equal([]);
    expect(retries).to.have.length(2);
    expect(retries[0]).to.match(/unreachable.*retrying in 0 s/);
    expect(await participant(0).entries()).to.deep.equal(before);
    expect((await coordinator().participantInfo(taskId, clients[0].address)).lastRound).to.be.lessThan(await coordinator().currentRound(taskId));

    const ctx = contextFor(clients[1]);
    const unlockAt = await requestWithdrawal(ctx, taskId, 100n * TOKEN);
    await expectRejection(completeWithdrawal(ctx, taskId), ContractRevertError, /WithdrawalNotUnlocked/);
    await time.increaseTo(unlockAt);
    expect(await completeWithdrawal(ctx, taskId)).to.deep.equal({ withdrawn: 100n * TOKEN, stakeAfter: 50n * TOKEN });
    // 50 tokens left, below the 100-token minimum: refused before any training.
    await expectRejection(participant(1).participate(), NotEnoughStakeError);
    const text = await readFile(journalPath(world.dir, clients[1].address), "utf8");
    expect(JSON.parse(text).entries.every((e: { state: string }) => e.state === "revealed")).to.equal(true);
  });

  it("submits what each behaviour claims: withhold commits without revealing, stale resubmits, malformed pins a broken file, copy takes another's reveal", async () => {
    await join(contextFor(clients[1]), taskId, 100n * TOKEN);
    const round = await coordinator().currentRound(taskId);
    const [withheld, stale, malformed] = await Promise.all([
      participant(0, { behaviour: { kind: "withhold" } }).participate(),
      participant(1, { behaviour: { kind: "free-ride", mode: "stale" } }).participate(),
      participant(2, { behaviour: { kind: "malformed", corruption: "nan" } }).participate(),
    ]);
    expect([withheld.kind, stale.kind, malformed.kind]).to.deep.equal(["withheld", "revealed", "revealed"]);
    const reveals = await readReveals(coordinator(), taskId, round, { fromBlock: world.fromBlock });
    expect(reveals.map((r) => r.participant).sort()).to.deep.equal([clients[1].address, clients[2].address].sort());
    const file = async (who: string, r: bigint) => {
      const x = (await readReveals(coordinator(), taskId, r, { fromBlock: world.fromBlock })).find((v) => v.participant === who)!;
      return world.store.get({ digest: x.updateDigest, contentRoot: x.contentRoot });
    };
    const round1 = decodeUpdate(await file(clients[1].address, 1n)).tensors;
    const resubmitted = decodeUpdate(await file(clients[1].address, round));
    expect(resubmitted.tensors).to.deep.equal(round1);
    expect(resubmitted.metadata).to.include({ round, participant: clients[1].address });
    const broken = await file(clients[2].address, round);
    expect(() => decodeUpdate(broken)).to.throw(SafetensorsError, /finite/);
    // The withheld commit stays withheld across a restart: recovery never reveals it.
    expect(await participant(0).recover()).to.deep.equal([]);
    expect((await participant(0).entries()).at(-1)).to.include({ round: String(round), state: "withheld" });

    await finalize([clients[1].address], [clients[0].address]);
    const next = await openRound(coordinator(), taskId);
    const [, , copied] = await Promise.all([participant(0).participate(), participant(1).participate(), participant(2, { behaviour: { kind: "free-ride", mode: "copy" } }).participate()]);
    expect(copied.kind).to.equal("revealed");
    expect(decodeUpdate(await file(clients[2].address, next)).tensors).to.deep.equal(round1, "p3 copied p2's revealed update of the previous round");
  });

  it("run() stops cleanly when asked to after committing, and the next run reveals what the journal holds; colluders craft from what they know", async () => {
    await finalize(clients.map((s) => s.address), []);
    const round = await openRound(coordinator(), taskId);
    const stop = new AbortController();
    const stopped = await participant(0, { signal: stop.signal, onStep: (step) => void (step === "committed" && stop.abort()) }).run();
    expect(stopped).to.deep.equal([]);
    expect(lines.at(-1)).to.match(/^p1 stopped while waiting .*revealed on restart$/);
    expect((await participant(0).entries()).at(-1)).to.include({ round: String(round), state: "committed" });
    // Meanwhile two colluders: ALIE from what they can see by default (the previous round's
    // revealed updates of others), IPM from knowledge a simulation hands in.
    const updatesOf = async (r: bigint, who: string[]) => {
      const reveals = (await readReveals(coordinator(), taskId, r, { fromBlock: world.fromBlock })).filter((x) => who.includes(x.participant));
      return Promise.all(reveals.map(async (x) => decodeUpdate(await world.store.get({ digest: x.updateDigest, contentRoot: x.contentRoot })).tensors));
    };
    const seen = await updatesOf(round - 1n, [clients[0].address, clients[2].address]);
    const handed = await updatesOf(1n, [clients[0].address]);
    await Promise.all([
      participant(1, { behaviour: { kind: "alie" } }).participate(),
      participant(2, { behaviour: { kind: "ipm", epsilon: 0.5 }, knowledge: async () => ({ honestUpdates: handed }) }).participate(),
    ]);
    const [alie, ipm] = await Promise.all([updatesOf(round, [clients[1].address]), updatesOf(round, [clients[2].address])]);
    expect(alie[0]).to.deep.equal(littleIsEnough(seen, alieZ(3, 1)));
    expect(ipm[0]).to.deep.equal(innerProductManipulation(handed, 0.5));

    const restarted = await participant(0).run({ once: true });
    expect(restarted.map((o) => [o.kind, o.round])).to.deep.equal([["revealed", round]]);
    expect((await readReveals(coordinator(), taskId, round, { fromBlock: world.fromBlock })).map((r) => r.participant).sort()).to.deep.equal(clients.map((c) => c.address).sort());
  });
});
