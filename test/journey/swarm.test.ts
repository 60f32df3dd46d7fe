// Swarm mode on the in-process chain, with a real embedded store and real clients training on
// MNIST: the task's 4 participants are its aggregators, quorum 3, and the task carries the
// reputation option (weighting, select 3).
// - round 1: participant 4 sign-flips; as an aggregator it also submits a different result (median
//   instead of fedavg) before the others. Its result alone cannot finalize; the three honest
//   members finalize, it is penalised, and the audit trail says who agreed and who dissented;
// - round 2: participant 4 is honest again, but last round's outlier verdict puts it last by
//   reputation: accepted, not aggregated; verify recomputes the round, reputation included, exactly;
// - round 3: the three honest members finalize a report whose reputation figure was tampered with
//   (model, rewards and slashes untouched): verify names the reputation and refuses the round.
import { expect } from "chai";
import { network } from "hardhat";
import type { Signer } from "ethers";
import type { Behaviour } from "../../client/attacks/behaviours.js";
import type { Dataset } from "../../client/data/dataset.js";
import { loadMnist } from "../../client/data/mnist.js";
import { mlpSpec } from "../../client/model/spec.js";
import { gatherRound } from "../../lib/aggregator/gather.js";
import { DEFAULT_POLICY } from "../../lib/aggregator/policy.js";
import { aggregateRound } from "../../lib/aggregator/round.js";
import { SOFTWARE_VERSION, aggregateOnce, type RoundSummary } from "../../lib/aggregator/service.js";
import { penalizeDissenters, swarmPlan } from "../../lib/aggregator/swarm.js";
import { formatVerify, verifyRound } from "../../lib/aggregator/verify.js";
import { formatRoundReport } from "../../lib/audit/format.js";
import { AuditReader } from "../../lib/audit/history.js";
import { readRound, send } from "../../lib/chain/coordinator.js";
import { sha256Digest } from "../../lib/digest.js";
import { encodeReport } from "../../lib/protocol/report.js";
import { openRound } from "../../lib/protocol/task.js";
import type { Context } from "../../scripts/commands/context.js";
import type { AnchorCoordinator } from "../../types/ethers-contracts/index.js";
import { TOKEN, createTestTask, openTaskWorld, shard, submittedResult, testParticipant, type Account, type TaskWorld } from "../helpers/task-world.js";

const { ethers } = await network.create();

const BOND = 20n * TOKEN;
const spec = { ...mlpSpec({ seed: 0, hidden: 16 }), options: { reputation: { weighting: true, select: 3 } } };

describe("swarm mode: clients as aggregators, quorum 3 of 4, reputation verified", function () {
  this.timeout(120_000);
  let world: TaskWorld;
  let members: Account[];
  let taskId: bigint;
  let pool: Dataset;
  const lines: string[] = [];

  const contextFor = (signer: Signer): Context => world.contextFor(signer);
  const coordinator = (signer?: Signer): AnchorCoordinator => world.coordinator(signer);

  /** Every member trains and commits in turn (one tfjs runtime), then all reveal. */
  async function participateAll(behaviours: Behaviour[]): Promise<void> {
    const running: Promise<unknown>[] = [];
    for (const [i, m] of members.entries()) {
      let committed!: () => void;
      const ready = new Promise<void>((resolve) => (committed = resolve));
      const p = testParticipant(world, {
        signer: m,
        taskId,
        data: shard(pool, i),
        seed: i,
        behaviour: behaviours[i],
        log: (l) => lines.push(`p${i} ${l}`),
        onStep: (s) => {
          if (s === "committed") committed();
        },
      });
      running.push(p.participate().finally(committed));
      await ready;
    }
    const outcomes = (await Promise.all(running)) as { kind: string }[];
    expect(outcomes.map((o) => o.kind)).to.deep.equal(members.map(() => "revealed"));
  }

  const aggregateAs = (i: number, rule: string): Promise<RoundSummary> =>
    aggregateOnce(contextFor(members[i]), taskId, { rule, pollMs: 20, fetchTimeoutMs: 2_000, log: (l) => lines.push(`a${i} ${l}`) });

  before(async () => {
    world = await openTaskWorld(ethers, { prefix: "anchorfl-swarm-", funded: 5 });
    members = world.signers.slice(1, 5);
    const plan = await swarmPlan(coordinator(), members.map((m) => m.address));
    expect(plan.quorum).to.equal(3);
    ({ taskId } = await createTestTask(world, {
      spec,
      config: { minStake: 10n * TOKEN, aggregatorBond: BOND, maxParticipants: members.length, quorum: plan.quorum, aggregators: plan.aggregators },
      joiners: members,
      stake: 100n * TOKEN,
    }));
    pool = (await loadMnist()).train;
  });

  after(async () => {
    await world?.close();
  });

  it("round 1: a dissenting member cannot finalize alone; three agreeing members do; it is penalised and the audit shows who agreed", async () => {
    const round = await openRound(coordinator(), taskId);
    await participateAll([{ kind: "honest" }, { kind: "honest" }, { kind: "honest" }, { kind: "sign-flip" }]);
    const first = await aggregateAs(0, "fedavg");
    const rogue = await aggregateAs(3, "median");
    const second = await aggregateAs(1, "fedavg");
    expect([first.votes, rogue.votes, second.votes]).to.deep.equal([1n, 1n, 2n]);
    expect(rogue.result!.newModelDigest).to.not.equal(first.result!.newModelDigest);
    expect((await readRound(coordinator(), taskId, round)).phase).to.equal("Aggregation");
    const third = await aggregateAs(2, "fedavg");
    expect([third.status, third.votes, third.phase]).to.deep.equal(["submitted", 3n, "Finalized"]);
    expect(third.participants.find((p) => p.address === members[3].address)!.verdict).to.equal("outlier");

    const penalties = await penalizeDissenters(coordinator(), taskId, round, world.fromBlock);
    expect(penalties).to.deep.equal([{ aggregator: members[3].address, amount: BOND / 10n }]);
    expect(await penalizeDissenters(coordinator(), taskId, round, world.fromBlock)).to.deep.equal([]);

    const history = await new AuditReader({ provider: ethers.provider, coordinator: coordinator(), chainId: world.chainId, fromBlock: world.fromBlock, store: world.store }).history(taskId);
    const agreement = history.rounds[0].agreement;
    expect(agreement.reached).to.equal(true);
    expect(agreement.positions.map((p) => [p.aggregator, p.position, p.penalty])).to.deep.equal([
      [members[0].address, "agreed", null],
      [members[3].address, "dissented", BOND / 10n],
      [members[1].address, "agreed", null],
      [members[2].address, "agreed", null],
    ]);
    const text = formatRoundReport(history, round);
    expect(text).to.include("agreement: quorum 3 reached: 3 agreed, 1 dissented");
    expect(text).to.match(new RegExp(`${members[3].address}\\s+dissented\\s+0x[0-9a-f]{64}\\s+2 `));
  });

  it("round 2: last round's outlier is accepted but left out by reputation (select 3); verify recomputes reputation exactly", async () => {
    const round = await openRound(coordinator(members[0]), taskId);
    await participateAll(members.map(() => ({ kind: "honest" })));
    for (const i of [0, 1, 2]) await aggregateAs(i, "fedavg");
    expect((await readRound(coordinator(), taskId, round)).phase).to.equal("Finalized");

    const outcome = await verifyRound(coordinator(), world.store, { chainId: world.chainId, taskId, round, fromBlock: world.fromBlock });
    expect(outcome.ok, formatVerify(outcome).join("\n")).to.equal(true);
    const gathered = await gatherRound(coordinator(), world.store, { chainId: world.chainId, taskId, round, fromBlock: world.fromBlock }, { lookback: DEFAULT_POLICY.lookback });
    const out = await aggregateRound({ ...gathered, rule: { name: "fedavg", params: {} }, policy: DEFAULT_POLICY, softwareVersion: SOFTWARE_VERSION });
    const rep = out.report.reputation!;
    expect(rep.history.map((h) => h.round)).to.deep.equal(["1"]);
    expect(rep.weighted).to.equal(true);
    const of = (i: number) => rep.scores.find((s) => s.address === members[i].address)!;
    expect([0, 1, 2, 3].map((i) => of(i).reputation)).to.deep.equal([0.75, 0.75, 0.75, 0.25]);
    expect([0, 1, 2, 3].map((i) => of(i).aggregated)).to.deep.equal([true, true, true, false]);
    expect(out.report.participants.map((p) => p.verdict)).to.deep.equal(["accepted", "accepted", "accepted", "accepted"]);

    // The audit's round view shows the scores the finalized report recorded.
    const history = await new AuditReader({ provider: ethers.provider, coordinator: coordinator(), chainId: world.chainId, fromBlock: world.fromBlock, store: world.store }).history(taskId);
    const text = formatRoundReport(history, round);
    expect(text).to.include("reputation: window rounds 1..1 (finalized: 1), half-life 4, prior 0.5 x 1; weights the rule's samples; top 3 aggregated");
    expect(text).to.match(new RegExp(`${members[3].address}\\s+0\\.25\\s+no`));
  });

  it("round 3: a finalized report with a tampered reputation figure fails verify, which names it", async () => {
    const round = await openRound(coordinator(members[0]), taskId);
    await participateAll(members.map(() => ({ kind: "honest" })));
    // Every committer revealed, so the reveal phase closed early.
    expect((await readRound(coordinator(), taskId, round)).phase).to.equal("Aggregation");
    const gathered = await gatherRound(coordinator(), world.store, { chainId: world.chainId, taskId, round, fromBlock: world.fromBlock }, { lookback: DEFAULT_POLICY.lookback });
    const out = await aggregateRound({ ...gathered, rule: { name: "fedavg", params: {} }, policy: DEFAULT_POLICY, softwareVersion: SOFTWARE_VERSION });
    const rep = out.report.reputation!;
    const tampered = encodeReport({ ...out.report, reputation: { ...rep, scores: rep.scores.map((s, i) => (i === 0 ? { ...s, reputation: 0.99 } : s)) } });
    await world.store.pin((await world.store.put(out.modelBytes)).cid);
    await world.store.pin((await world.store.put(tampered)).cid);
    const result = submittedResult(out.result, sha256Digest(tampered));
    for (const i of [0, 1, 2]) await send("submit tampered", () => coordinator(members[i]).submitResult(taskId, round, result));
    expect((await readRound(coordinator(), taskId, round)).phase).to.equal("Finalized");

    const outcome = await verifyRound(coordinator(), world.store, { chainId: world.chainId, taskId, round, fromBlock: world.fromBlock });
    expect(outcome.ok).to.equal(false);
    expect(outcome.parts.filter((p) => !p.match).map((p) => p.part)).to.deep.equal(["report"]);
    expect(outcome.reportDifferences).to.deep.equal(["reputation"]);
  });
});
