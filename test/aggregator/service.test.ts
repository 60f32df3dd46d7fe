// The aggregator process on the in-process chain with a real embedded store in a temp folder,
// participants driven by the real client code (client/participant) and, for inputs the client
// would never produce, by direct commit/reveal calls with files encoded here.
// - round 1: every verdict type from a real hostile input; two aggregators reach quorum 2;
// - round 2: the aggregator crashes after pinning, a fresh one submits exactly once; a stale
//   free rider is a duplicate of its own earlier reveal;
// - verify passes on honest rounds and names what differs on a tampered one;
// - most files missing: the aggregator refuses to submit instead of slashing a majority;
// - the loop reports the failed round, opens the next one and stops after --rounds.
import { expect } from "chai";
import { network } from "hardhat";
import type { Signer } from "ethers";
import { trainAs } from "../../client/attacks/train-as.js";
import type { Behaviour } from "../../client/attacks/behaviours.js";
import type { Dataset } from "../../client/data/dataset.js";
import { loadMnist } from "../../client/data/mnist.js";
import { mlpSpec, modelSpecDigest } from "../../client/model/spec.js";
import type { Participant } from "../../client/participant/round.js";
import { AggregatorError, aggregateOnce, runAggregator, type AggregatorOptions } from "../../lib/aggregator/service.js";
import { verifyRound, formatVerify } from "../../lib/aggregator/verify.js";
import { gatherRound } from "../../lib/aggregator/gather.js";
import { DEFAULT_POLICY } from "../../lib/aggregator/policy.js";
import { DEFAULT_RULE, DEFAULT_RULE_PARAMS, aggregateRound } from "../../lib/aggregator/round.js";
import { SLASH_REASONS, readRound, send } from "../../lib/chain/coordinator.js";
import { allEvents } from "../../lib/chain/logs.js";
import { encodeUpdate } from "../../lib/codec/update-file.js";
import { commitmentOf, randomSalt } from "../../lib/commitment.js";
import { sha256Digest, type Hex32 } from "../../lib/digest.js";
import { encodeReport, parseReport } from "../../lib/protocol/report.js";
import { fetchModel, rawBlock } from "../../lib/protocol/models.js";
import { openRound } from "../../lib/protocol/task.js";
import { ZERO_ROOT } from "../../lib/store/index.js";
import type { Tensor } from "../../lib/tensors.js";
import type { Context } from "../../scripts/commands/context.js";
import type { AnchorCoordinator } from "../../types/ethers-contracts/index.js";
import { createTestTask, openTaskWorld, shard, submittedResult, testParticipant, type Account, type TaskWorld } from "../helpers/task-world.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const spec = mlpSpec({ seed: 0 });
const training = { epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: 0 } as const;

class Crash extends Error {}

describe("aggregator service: verdicts, quorum, restart and verify on the in-process chain", function () {
  this.timeout(180_000);
  let world: TaskWorld;
  let aggregators: Account[];
  let people: Account[];
  let taskId: bigint;
  let genesisDigest: Hex32;
  let pool: Dataset;
  const lines: string[] = [];

  const contextFor = (signer: Signer): Context => world.contextFor(signer);
  const coordinator = (signer?: Signer): AnchorCoordinator => world.coordinator(signer);
  const aggregatorOptions: AggregatorOptions = { pollMs: 20, log: (l) => lines.push(l), fetchTimeoutMs: 2_000 };

  const participant = (i: number, behaviour: Behaviour = { kind: "honest" }): Participant =>
    testParticipant(world, { signer: people[i], taskId, data: shard(pool, i), seed: i, behaviour, log: (l) => lines.push(`p${i} ${l}`) });

  /** A participant the client code would never be: commits to the digest of `bytes` (stored or not) and reveals it later. */
  async function directCommit(i: number, bytes: Uint8Array, { storeIt = true } = {}) {
    const round = await coordinator().currentRound(taskId);
    const digest = sha256Digest(bytes);
    if (storeIt) await world.store.pin((await world.store.put(bytes)).cid);
    const salt = randomSalt();
    const commitment = commitmentOf({ chainId: world.chainId, coordinator: world.coordinatorAddress, taskId, round, participant: people[i].address, updateDigest: digest, salt });
    await send("commit", () => coordinator(people[i]).commit(taskId, round, commitment));
    return () => send("reveal", () => coordinator(people[i]).reveal(taskId, round, digest, 100n, salt, ZERO_ROOT));
  }

  async function trainedDelta(i: number, base: Tensor[]): Promise<Tensor[]> {
    return (await trainAs({ kind: "honest" }, { ...training, seed: i, spec, globalWeights: base, data: shard(pool, i) }, { seed: i })).update;
  }

  function deltaFile(i: number, update: Tensor[], round: bigint, baseModelDigest: Hex32): Uint8Array {
    return encodeUpdate(update, { taskId, round, participant: people[i].address, baseModelDigest, numSamples: 100, kind: "delta", modelSpecDigest: modelSpecDigest(spec), extra: {} });
  }

  async function globalModel(): Promise<{ digest: Hex32; tensors: Tensor[] }> {
    const digest = (await coordinator().globalModel(taskId)) as Hex32;
    const pointer = digest === genesisDigest ? rawBlock(digest) : { digest, contentRoot: ZERO_ROOT };
    return { digest, tensors: (await fetchModel(world.store, pointer, spec)).tensors };
  }

  async function toAggregation(round: bigint) {
    const info = await coordinator().roundInfo(taskId, round);
    if ((await readRound(coordinator(), taskId, round)).phase !== "Aggregation") await time.increaseTo(info.revealEnd);
  }

  /**
   * Fewer clients than slots: they commit, the commit deadline passes, they reveal, the reveal
   * window ends. `withholder` commits and never reveals, so the reveal phase cannot close early
   * under the clients' concurrent reveals (whose gas was estimated before the closing one).
   */
  async function commitRound(round: bigint, clients: Participant[], withholder: number): Promise<void> {
    await directCommit(withholder, new Uint8Array([withholder]));
    const running = Promise.all(clients.map((p) => p.participate()));
    await waitUntil(async () => (await coordinator().roundInfo(taskId, round)).commitCount === BigInt(clients.length + 1));
    await time.increaseTo((await coordinator().roundInfo(taskId, round)).commitEnd);
    expect((await running).map((o) => o.kind)).to.deep.equal(clients.map(() => "revealed"));
    await toAggregation(round);
  }

  before(async () => {
    world = await openTaskWorld(ethers, { prefix: "anchorfl-aggregator-", funded: 15 });
    aggregators = world.signers.slice(1, 3);
    people = world.signers.slice(3, 15);
    const task = await createTestTask(world, {
      spec,
      config: { maxParticipants: 11, quorum: 2, aggregators: aggregators.map((a) => a.address) },
      joiners: people,
    });
    taskId = task.taskId;
    genesisDigest = task.genesis.model.digest;
    pool = (await loadMnist()).train;
  });

  after(async () => {
    await world?.close();
  });

  it("round 1: every verdict from a real hostile input, slashes applied on-chain once two aggregators agree (quorum 2)", async () => {
    const round = await openRound(coordinator(), taskId);
    const base = await globalModel();
    // Direct participants commit first (the client code would never send these files).
    const original = await trainedDelta(7, base.tensors);
    const reveals = [
      await directCommit(7, deltaFile(7, original, round, base.digest)), // the original of a same-round copy
      await directCommit(8, deltaFile(8, original, round, base.digest)), // its copy, revealed later
      await directCommit(9, deltaFile(9, await trainedDelta(9, base.tensors), round, sha256Digest(new Uint8Array([9])))), // wrong base model
      await directCommit(10, deltaFile(10, await trainedDelta(10, base.tensors), round, base.digest), { storeIt: false }), // bytes never stored
    ];
    const behaviours: Behaviour[] = [
      { kind: "honest" },
      { kind: "honest" },
      { kind: "honest" },
      { kind: "sign-flip" },
      { kind: "malformed", corruption: "nan" },
      { kind: "malformed", corruption: "wrong-shape" },
      { kind: "withhold" },
    ];
    const outcomes = await Promise.all(behaviours.map((b, i) => participant(i, b).participate()));
    expect(outcomes.map((o) => o.kind)).to.deep.equal(["revealed", "revealed", "revealed", "revealed", "revealed", "revealed", "withheld"]);
    for (const reveal of reveals) await reveal();
    await toAggregation(round);

    const first = await aggregateOnce(contextFor(aggregators[0]), taskId, aggregatorOptions);
    expect(first).to.deep.include({ status: "submitted", phase: "Aggregation", votes: 1n });
    const verdicts = Object.fromEntries(first.participants.map((p) => [p.address, p.verdict]));
    const expected: Record<number, string> = { 0: "accepted", 1: "accepted", 2: "accepted", 3: "outlier", 4: "invalid", 5: "invalid", 6: "no-reveal", 7: "accepted", 8: "duplicate", 9: "invalid", 10: "unavailable" };
    for (const [i, verdict] of Object.entries(expected)) expect(verdicts[people[Number(i)].address], `participant ${i}`).to.equal(verdict);
    const reasons = Object.fromEntries(first.participants.map((p) => [p.address, p.reason]));
    expect(reasons[people[4].address]).to.match(/NaN/);
    expect(reasons[people[5].address]).to.match(/shape/);
    expect(reasons[people[8].address]).to.include(people[7].address);
    expect(reasons[people[9].address]).to.match(/base model/);
    expect(first.counts).to.deep.equal({ accepted: 4, outlier: 1, invalid: 3, unavailable: 1, duplicate: 1, "no-reveal": 1 });
    console.log(`      aggregateOnce, 11 committers: gather ${first.ms.gather} ms, aggregate ${first.ms.aggregate} ms, total ${first.ms.total} ms, gas ${first.gasUsed}`);

    const second = await aggregateOnce(contextFor(aggregators[1]), taskId, aggregatorOptions);
    expect(second).to.deep.include({ status: "submitted", phase: "Finalized", votes: 2n });
    expect(second.result).to.deep.equal(first.result, "two aggregators computed the same result independently");

    const slashed = await allEvents(coordinator(), coordinator().filters.Slashed(taskId, round), { fromBlock: world.fromBlock });
    const onChain = slashed.map((l) => coordinator().interface.parseLog(l)!.args).map((a) => [a.participant, SLASH_REASONS[Number(a.reason)]]);
    expect(new Map(onChain as [string, string][])).to.deep.equal(
      new Map([
        [people[3].address, "Outlier"],
        [people[4].address, "Invalid"],
        [people[5].address, "Invalid"],
        [people[6].address, "NoReveal"],
        [people[8].address, "Duplicate"],
        [people[9].address, "Invalid"],
        [people[10].address, "Invalid"],
      ]),
    );
    expect(await coordinator().globalModel(taskId)).to.equal(first.result!.newModelDigest);
    const report = parseReport(await world.store.get(rawBlock(first.result!.reportDigest)));
    expect(report.rewards.allocations.map((a) => a.account).sort()).to.deep.equal([0, 1, 2, 7].map((i) => people[i].address).sort());
    expect(lines.some((l) => /round 1: 4 accepted, 1 outlier, 3 invalid, 1 unavailable, 1 duplicate, 1 no-reveal; 7 slashed; model 0x[0-9a-f]{64}; gas \d+; finalized \(2 vote\(s\)\)/.test(l))).to.equal(true);
  });

  it("round 2: an aggregator killed after pinning resumes and submits exactly once; a stale free rider is a duplicate of its own earlier reveal", async () => {
    const round = await openRound(coordinator(), taskId);
    // Honest clients that kept enough stake through round 1, and client 0 resubmitting its round 1 update.
    await commitRound(round, [participant(0, { kind: "free-ride", mode: "stale" }), ...[1, 2, 7, 11].map((i) => participant(i))], 3);

    const crash = (step: string) => {
      if (step === "pinned") throw new Crash("killed after pinning");
    };
    // Both aggregators evaluate on the held-out split (same backend), so their reports agree.
    const evaluating: AggregatorOptions = { ...aggregatorOptions, evaluation: "mnist-test" };
    await aggregateOnce(contextFor(aggregators[0]), taskId, { ...evaluating, onStep: crash }).then(
      () => expect.fail("expected the simulated crash"),
      (e) => expect(e).to.be.instanceOf(Crash),
    );
    expect((await coordinator().aggregatorInfo(taskId, aggregators[0].address)).lastRound).to.equal(1n, "nothing submitted before the crash");

    const resumed = await aggregateOnce(contextFor(aggregators[0]), taskId, evaluating);
    expect(resumed.evaluation).to.have.property("dataset", "mnist-test");
    expect(resumed.evaluation!.accuracy).to.be.within(0.1, 1, "better than chance after two rounds");
    expect(resumed.status).to.equal("submitted");
    expect(await world.store.isPinned(rawBlock(resumed.result!.newModelDigest))).to.equal(true);
    const again = await aggregateOnce(contextFor(aggregators[0]), taskId, aggregatorOptions);
    expect(again.status).to.equal("already-submitted");
    const submissions = await allEvents(coordinator(), coordinator().filters.ResultSubmitted(taskId, round, aggregators[0].address), { fromBlock: world.fromBlock });
    expect(submissions).to.have.length(1);

    const verdicts = Object.fromEntries(resumed.participants.map((p) => [p.address, p]));
    expect(verdicts[people[0].address].verdict).to.equal("duplicate");
    expect(verdicts[people[0].address].reason).to.match(/near-copy of its own round 1 update/);

    // The second aggregator runs the CLI loop for one round.
    const summaries = await runAggregator(contextFor(aggregators[1]), taskId, { ...evaluating, once: true });
    expect(summaries.map((s) => [s.round, s.status, s.phase])).to.deep.equal([[round, "submitted", "Finalized"]]);
  });

  it("verify reproduces honest rounds exactly and names the part that differs on a tampered round", async () => {
    for (const round of [1n, 2n]) {
      const v = await verifyRound(coordinator(), world.store, { chainId: world.chainId, taskId, round, fromBlock: world.fromBlock }, { evaluate: true });
      expect(v.ok, formatVerify(v).join("\n")).to.equal(true);
      expect(v.parts.map((p) => p.part)).to.deep.equal(["model", "report", "rewardsRoot", "rewardsTotal", "slashes"]);
      expect(v.evaluation?.match).to.equal(round === 2n ? true : undefined, "round 2 recorded an evaluation, round 1 none");
    }

    // Round 3: both aggregators publish a report that changes one participant's reason.
    const round = await openRound(coordinator(), taskId);
    await commitRound(round, [0, 1, 2].map((i) => participant(i)), 6);
    const inputs = await gatherRound(coordinator(), world.store, { chainId: world.chainId, taskId, round, fromBlock: world.fromBlock }, { lookback: 1 });
    const honest = await aggregateRound({ ...inputs, rule: { name: DEFAULT_RULE, params: DEFAULT_RULE_PARAMS }, policy: DEFAULT_POLICY, softwareVersion: "0.1.0" });
    const tampered = { ...honest.report, participants: honest.report.participants.map((p, i) => (i === 0 ? { ...p, reason: "trust me" } : p)) };
    const bytes = encodeReport(tampered);
    await world.store.pin((await world.store.put(bytes)).cid);
    await world.store.pin((await world.store.put(honest.modelBytes)).cid);
    for (const a of aggregators) await send("submit tampered", () => coordinator(a).submitResult(taskId, round, submittedResult(honest.result, sha256Digest(bytes))));
    const v = await verifyRound(coordinator(), world.store, { chainId: world.chainId, taskId, round, fromBlock: world.fromBlock });
    expect(v.ok).to.equal(false);
    expect(v.parts.filter((p) => !p.match).map((p) => p.part)).to.deep.equal(["report"]);
    expect(v.reportDifferences).to.have.length(1);
    expect(v.reportDifferences[0]).to.include("trust me");
    expect(formatVerify(v).join("\n")).to.match(/report: DIFFERS/).and.match(/NOT verified/);
  });

  it("refuses to submit when most revealed files cannot be fetched, rather than slash a majority for its own store's trouble", async () => {
    const round = await openRound(coordinator(), taskId);
    const base = await globalModel();
    const delta = await trainedDelta(0, base.tensors);
    const reveals = [
      await directCommit(0, deltaFile(0, delta, round, base.digest)),
      await directCommit(1, deltaFile(1, delta, round, base.digest), { storeIt: false }),
      await directCommit(2, deltaFile(2, delta, round, base.digest), { storeIt: false }),
    ];
    await time.increaseTo((await coordinator().roundInfo(taskId, round)).commitEnd);
    for (const reveal of reveals) await reveal();
    await toAggregation(round);
    const error = await aggregateOnce(contextFor(aggregators[0]), taskId, aggregatorOptions).then(
      () => expect.fail("expected the aggregator to refuse"),
      (e: Error) => e,
    );
    expect(error).to.be.instanceOf(AggregatorError);
    expect(error.message).to.match(/2 of 3 revealed files could not be fetched; not submitting/);
    expect((await coordinator().aggregatorInfo(taskId, aggregators[0].address)).lastRound).to.equal(3n);
  });

  it("the loop: a failed round is reported as missed, --open-rounds opens the next, --rounds stops after that many", async () => {
    const failed = await coordinator().currentRound(taskId);
    await time.increaseTo((await coordinator().roundInfo(taskId, failed)).aggregationEnd + 1n);
    const log: string[] = [];
    const running = runAggregator(contextFor(aggregators[0]), taskId, { ...aggregatorOptions, log: (l) => log.push(l), openRounds: true, rounds: 2 });
    await waitUntil(async () => (await coordinator().currentRound(taskId)) === failed + 1n);
    await commitRound(failed + 1n, [0, 1, 2].map((i) => participant(i)), 11);
    const summaries = await running;
    expect(summaries.map((x) => [x.round, x.status, x.phase])).to.deep.equal([
      [failed, "missed", "Failed"],
      [failed + 1n, "submitted", "Aggregation"],
    ]);
    expect(log).to.include(`task ${taskId}: round ${failed} failed; opened round ${failed + 1n}`);
    expect(log.some((l) => l.startsWith(`task ${taskId} round ${failed + 1n}: in Commit; waiting for Aggregation`))).to.equal(true);
  });
});

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
