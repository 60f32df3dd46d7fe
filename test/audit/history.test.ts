// The audit trail on the in-process chain, after a scripted history with real transactions
// (scenario.ts): the timeline lists every event in chain order with the right fields, balances
// derived from events match the contract's own views, reports are fetched from a real embedded
// store and checked against the chain, `--round` shows verdicts (or says why it can't), and the
// JSON output is valid and stable.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { network } from "hardhat";
import { AuditError } from "../../lib/audit/events.js";
import { alignColumns, formatHistory, formatRoundReport, historyJson, printable } from "../../lib/audit/format.js";
import { AuditReader, loadReport, timeline, type TaskHistory } from "../../lib/audit/history.js";
import { connectCoordinator, CoordinatorError, phaseName } from "../../lib/chain/coordinator.js";
import { ConfigError, resolveSettings } from "../../lib/config.js";
import { sha256Digest } from "../../lib/digest.js";
import { encodeReport } from "../../lib/protocol/report.js";
import { cidFromChain, EmbeddedStore, ZERO_ROOT } from "../../lib/store/index.js";
import { makeContext, type Context } from "../../scripts/commands/context.js";
import { runAudit } from "../../scripts/commands/audit.js";
import { BUDGET, DISSENT_BPS, NO_REVEAL_BPS, OUTLIER_BPS, STAKE, TOKEN, runScenario, taskConfig, type ScenarioWorld } from "./scenario.js";

const { ethers } = await network.create();

describe("audit: a task's history from on-chain events", function () {
  let dir: string;
  let store: EmbeddedStore;
  let world: ScenarioWorld;
  let reader: AuditReader;
  let history: TaskHistory;

  function contextWith(storeDir: string, shared?: EmbeddedStore): Context {
    return makeContext({
      settings: resolveSettings({}, { home: dir }),
      provider: ethers.provider,
      chainId: world.chainId,
      signer: world.owner,
      coordinator: world.coordinator,
      fromBlock: world.deployBlock,
      storeConfig: { kind: "embedded", dataDir: storeDir },
      sharedStore: shared,
    });
  }

  async function audit(ctx: Context, args: { round?: string; json?: boolean }): Promise<string> {
    const out: string[] = [];
    await runAudit(ctx, { task: "1", ...args }, (t) => out.push(t), (w) => out.push(w));
    return out.join("\n");
  }

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "anchorfl-audit-"));
    store = await EmbeddedStore.open({ dataDir: path.join(dir, "ipfs") });
    const [owner, a1, a2, a3, p1, p2, p3, p4] = await ethers.getSigners();
    world = await runScenario({ owner, aggregators: [a1, a2, a3], participants: [p1, p2, p3, p4] }, store, ethers.provider, 2);
    const coordinator = await connectCoordinator(await world.coordinator.getAddress(), ethers.provider);
    reader = new AuditReader({ provider: ethers.provider, coordinator, chainId: world.chainId, fromBlock: world.deployBlock, store });
    history = await reader.history(world.taskId);
  });

  after(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("lists every event in chain order, from creation to the open round", () => {
    const [owner, a1, a2, a3] = [world.owner, ...world.aggregators].map((s) => s.address);
    const [p1, p2, p3, p4] = world.participants.map((s) => s.address);
    const who = (e: Record<string, unknown>) => e.participant ?? e.aggregator ?? e.account ?? e.funder ?? e.owner ?? "";
    const got = timeline(history).map((e) => [e.kind, "round" in e ? Number(e.round) : 0, who(e as unknown as Record<string, unknown>)].join(" "));
    const expected = [
      `TaskCreated 0 ${owner}`,
      `RewardsFunded 0 ${owner}`,
      ...[p1, p2, p3, p4].map((p) => `Deposited 0 ${p}`),
      ...[a1, a2, a3].map((a) => `AggregatorBonded 0 ${a}`),
      `RoundOpened 1 `,
      `Committed 1 ${p1}`,
      `Committed 1 ${p2}`,
      `PhaseClosedEarly 1 `,
      `Committed 1 ${p3}`,
      `Revealed 1 ${p1}`,
      `Revealed 1 ${p2}`,
      `PhaseClosedEarly 1 `,
      `Revealed 1 ${p3}`,
      `ResultSubmitted 1 ${a3}`,
      `ResultSubmitted 1 ${a1}`,
      `ResultSubmitted 1 ${a2}`,
      `RoundFinalized 1 `,
      `Slashed 1 ${p3}`,
      `RewardClaimed 1 ${p1}`,
      `AggregatorPenalized 1 ${a3}`,
      `WithdrawalRequested 0 ${p2}`,
      `Withdrawn 0 ${p2}`,
      `RoundOpened 2 `,
      `Committed 2 ${p1}`,
      `Committed 2 ${p2}`,
      `PhaseClosedEarly 2 `,
      `Committed 2 ${p4}`,
      `Revealed 2 ${p1}`,
      `Revealed 2 ${p2}`,
      `Slashed 2 ${p4}`,
      `ResultSubmitted 2 ${a1}`,
      `ResultSubmitted 2 ${a2}`,
      `RoundFinalized 2 `,
      `RoundOpened 3 `,
      `RoundBudgetReleased 3 `,
      `RoundOpened 4 `,
    ];
    expect(got).to.deep.equal(expected);
    const events = timeline(history);
    for (let i = 1; i < events.length; i++) {
      const [a, b] = [events[i - 1], events[i]];
      expect(a.block < b.block || (a.block === b.block && a.logIndex < b.logIndex), `event ${i} out of order`).to.equal(true);
    }
  });

  it("gives each event its block, transaction and fields as the chain recorded them", async () => {
    const r1 = history.rounds[0];
    const [p1, , p3] = world.participants;
    const slash = r1.slashes[0];
    expect(slash).to.include({ participant: p3.address, reason: "Outlier", amount: (STAKE * OUTLIER_BPS) / 10_000n, round: 1n });
    const receipt = await ethers.provider.getTransactionReceipt(slash.tx);
    expect(receipt!.blockNumber).to.equal(slash.block);
    expect((await ethers.provider.getBlock(slash.block))!.timestamp).to.equal(slash.time);
    // The slash came in the transaction that finalized the round.
    expect(slash.tx).to.equal(r1.finalized!.tx);

    const reveal = r1.reveals.find((e) => e.participant === p1.address)!;
    expect(reveal.numSamples).to.equal(600n);
    expect(reveal.cid).to.equal(cidFromChain(reveal.updateDigest, ZERO_ROOT));
    expect(reveal.cid).to.match(/^bafkrei/);

    const { report, digest, modelDigest } = world.reports.get(1n)!;
    expect(r1.finalized).to.include({ reportDigest: digest, newModelDigest: modelDigest, rewardsTotal: BigInt(report.rewards.total) });
    expect(r1.finalized!.reportCid).to.equal(cidFromChain(digest, ZERO_ROOT));
    expect(r1.model).to.deep.equal({ digest: modelDigest, cid: cidFromChain(modelDigest, ZERO_ROOT) });
    expect(r1.results.map((r) => Number(r.votes))).to.deep.equal([1, 1, 2]);
    expect(r1.results[0].resultHash).to.not.equal(r1.finalized!.resultHash);
    expect(r1.results[2].slashes).to.deep.equal([{ participant: p3.address, reason: "Outlier" }]);
    expect(r1.penalties[0]).to.include({ aggregator: world.aggregators[2].address, amount: (500n * TOKEN * DISSENT_BPS) / 10_000n });
    expect(r1.claims[0]).to.include({ account: p1.address, amount: BUDGET / 2n });
    expect(r1.closedEarly.map((e) => e.phase)).to.deep.equal(["Commit", "Reveal"]);
    expect(r1.commitEnd).to.equal(r1.closedEarly[0].closedAt);
    expect(r1.revealEnd).to.equal(r1.closedEarly[1].closedAt);

    const r2 = history.rounds[1];
    expect(r2.slashes).to.have.length(1);
    expect(r2.slashes[0]).to.include({ participant: world.participants[3].address, reason: "NoReveal", amount: (STAKE * NO_REVEAL_BPS) / 10_000n });
    expect(r2.baseModel).to.deep.equal(r1.model);
    expect(history.rounds[2].budgetReleased).to.include({ round: 3n, budget: BUDGET });
  });

  it("derives phases, stakes, bonds and the escrow exactly as the contract's views report them", async () => {
    const c = world.coordinator;
    for (const r of history.rounds) expect(r.phase, `round ${r.round}`).to.equal(phaseName(await c.roundPhase(world.taskId, r.round)));
    expect(history.rounds.map((r) => r.phase)).to.deep.equal(["Finalized", "Finalized", "Failed", "Commit"]);
    expect(history.participants).to.have.length(4);
    for (const p of history.participants) {
      const info = await c.participantInfo(world.taskId, p.address);
      expect(p.stake, p.address).to.equal(info.stake);
      expect(p.pendingWithdrawal, p.address).to.equal(info.pendingWithdrawal);
    }
    for (const a of history.aggregators) expect(a.bond, a.address).to.equal((await c.aggregatorInfo(world.taskId, a.address)).bond);
    const info = await c.taskInfo(world.taskId);
    expect(history.escrow).to.equal(info.rewardEscrow);
    expect(history.globalModel.digest).to.equal(info.globalModelDigest);
    expect(history.globalModel.round).to.equal(2n);
    expect(history.currentRound).to.equal(info.currentRound);
    expect(history.token).to.deep.equal({ address: await world.token.getAddress(), symbol: await world.token.symbol(), decimals: 18 });
  });

  it("prints one aligned section per round with block numbers, transactions, CIDs and reasons", async () => {
    const text = await audit(contextWith(path.join(dir, "ipfs"), store), {});
    expect(text).to.match(/^Task 1 on chain 31337, coordinator 0x[0-9a-fA-F]{40}, as of block \d+/);
    for (const r of [1, 2, 3, 4]) expect(text).to.include(`\nRound ${r}: `);
    expect(text).to.include("Round 3: Failed").and.include("Round 4: Commit");
    const r1 = history.rounds[0];
    expect(text).to.include(r1.finalized!.reportCid).and.include(r1.model!.cid!).and.include(r1.finalized!.tx);
    for (const e of r1.reveals) expect(text).to.include(e.cid);
    expect(text).to.match(new RegExp(`${world.participants[2].address}\\s+Outlier\\s+100 ATT`.replace("ATT", history.token.symbol!)));
    expect(text).to.include("rule trimmed-mean").and.include(`accuracy ${(world.accuracy[0] * 100).toFixed(2)}%`);
    // A table's columns line up: every commit row starts its participant at the same offset.
    const commitRows = text.split("\n").filter((l) => /^ {4}\d+ {2,}0x[0-9a-fA-F]{40}\s+0x[0-9a-f]{64}\s+0x[0-9a-f]{64}$/.test(l));
    expect(commitRows.length).to.equal(6);
    expect(new Set(commitRows.map((l) => l.indexOf("0x"))).size).to.equal(1);
  });

  it("--round shows the report's per-participant verdicts and reasons", async () => {
    const text = await audit(contextWith(path.join(dir, "ipfs"), store), { round: "1" });
    expect(text).to.include("Round 1: Finalized").and.not.include("Round 2:");
    expect(text).to.include("verdicts (3)");
    const outlierLine = text.split("\n").find((l) => l.includes(world.participants[2].address) && l.includes("outlier"))!;
    expect(outlierLine).to.include("41.30").and.include("update is 41.3 times the median distance");
    const r2 = await audit(contextWith(path.join(dir, "ipfs"), store), { round: "2" });
    expect(r2).to.include("no-reveal").and.include("committed but did not reveal before the reveal deadline");
  });

  it("says when the store cannot provide a report, and still prints the on-chain part", async () => {
    const empty = await EmbeddedStore.open({ dataDir: path.join(dir, "empty-ipfs") });
    try {
      const text = await audit(contextWith(path.join(dir, "empty-ipfs"), empty), { round: "1" });
      expect(text).to.match(/report says\s+unavailable: expected bafkrei\S+ in embedded Helia store/);
      expect(text).to.include("slashes (1)").and.include(history.rounds[0].finalized!.tx);
      expect(text).to.not.include("verdicts (");
      // Without its report, a later model's CID is unknown, and the text says so instead of guessing.
      expect(text).to.include("CID unknown: its report is unavailable");
    } finally {
      await empty.close();
    }
  });

  it("flags a report that disagrees with the chain or is no report, and a missing one", async () => {
    const { report } = world.reports.get(1n)!;
    const finalized = history.rounds[0].finalized!;
    const chain = { chainId: world.chainId, coordinator: history.coordinator, taskId: world.taskId };
    const pointingAt = (digest: `0x${string}`) => ({ ...finalized, reportDigest: digest, reportCid: cidFromChain(digest, ZERO_ROOT) });
    expect((await loadReport(store, finalized, chain)).status).to.equal("ok");

    const forged = await store.put(encodeReport({ ...report, round: "7", model: { ...report.model, digest: ZERO_ROOT } }));
    const disagreeing = await loadReport(store, pointingAt(forged.digest), chain);
    expect(disagreeing.status).to.equal("invalid");
    expect((disagreeing as { error: string }).error).to.include("round 7 (chain: 1)").and.include(`model ${ZERO_ROOT}`);

    const garbage = await store.put(new TextEncoder().encode("not json"));
    const notReport = await loadReport(store, pointingAt(garbage.digest), chain);
    expect(notReport).to.include({ status: "invalid", cid: garbage.cid });
    expect((notReport as { error: string }).error).to.include("report is not UTF-8 JSON");

    // Well-formed JSON with the right keys, but types the printer and the page would trip over.
    const hostile = await store.put(
      encodeReport({
        ...report,
        rule: "median" as never,
        participants: report.participants.map((p) => ({ ...p, score: "high" as never, reason: 7 as never })),
        evaluation: { dataset: "mnist-test", examples: 1000, accuracy: "0.9" as never, loss: 0.1 },
      }),
    );
    const mistyped = await loadReport(store, pointingAt(hostile.digest), chain);
    expect(mistyped.status).to.equal("invalid");
    expect((mistyped as { error: string }).error)
      .to.include("rule must be {name, params}")
      .and.include("participants[0].reason must be a string")
      .and.include("participants[2].score must be a finite number")
      .and.include("evaluation must be");

    const missing = await loadReport(store, pointingAt(sha256Digest(new TextEncoder().encode("never stored"))), chain);
    expect(missing.status).to.equal("unavailable");
    expect(await store.has(forged.cid)).to.equal(true);
  });

  it("outputs valid, stable JSON with amounts as decimal strings", async () => {
    const ctx = contextWith(path.join(dir, "ipfs"), store);
    const first = await audit(ctx, { json: true });
    const second = await audit(ctx, { json: true });
    expect(second).to.equal(first);
    const parsed = JSON.parse(first);
    expect(parsed.format).to.equal("anchorfl.audit.v1");
    expect(parsed.escrow).to.equal(history.escrow.toString());
    expect(parsed.rounds[0].slashes[0].amount).to.equal(((STAKE * OUTLIER_BPS) / 10_000n).toString());
    expect(parsed.rounds[0].report.report.participants.map((p: { verdict: string }) => p.verdict).sort()).to.deep.equal(["accepted", "accepted", "outlier"]);
    expect(first).to.not.match(/\d+n"/);
    const round = JSON.parse(await audit(ctx, { round: "2", json: true }));
    expect(round.rounds.map((r: { round: string }) => r.round)).to.deep.equal(["2"]);
    expect(historyJson({ n: 2n ** 70n })).to.equal(`{\n  "n": "${2n ** 70n}"\n}`);
  });

  it("keeps control characters from report texts out of the terminal and the table layout", () => {
    expect(printable("evil\u001b[2J\nnext\u0085")).to.equal("evil\\u001b[2J\\u000anext\\u0085");
    const lines = alignColumns([["a", "reason\nwith\u001b[31m colour", "z"], ["bb", "x", "y"]]);
    expect(lines).to.have.length(2);
    expect(lines[0].indexOf("z")).to.equal(lines[1].indexOf("y"));
    expect([...lines.join("")].filter((c) => c.charCodeAt(0) < 0x20)).to.deep.equal([]);
  });

  it("audits a task that has no round yet", async () => {
    await (await world.coordinator.createTask(taskConfig(await world.token.getAddress(), [world.owner.address], 1n))).wait();
    const ctx = contextWith(path.join(dir, "ipfs"), store);
    const out: string[] = [];
    await runAudit(ctx, { task: "2" }, (t) => out.push(t));
    expect(out[0]).to.include("Task 2 on chain 31337").and.match(/now\s+no round opened yet/).and.match(/global model\s+bafkrei\S+ \(genesis\)/);
    expect(out[0]).to.not.include("Round 1");
    const empty: string[] = [];
    await runAudit(ctx, { task: "2", json: true }, (t) => empty.push(t));
    const parsed = JSON.parse(empty[0]);
    expect(parsed).to.include({ taskId: "2", currentRound: "0", escrow: "0" });
    expect(parsed.rounds).to.deep.equal([]);
    expect(await runAudit(ctx, { task: "2", round: "1" }, () => undefined).catch((e) => e)).to.be.instanceOf(AuditError).with.property("message").that.includes("rounds opened: none yet");
  });

  it("refuses unknown tasks and rounds and malformed numbers with typed errors", async () => {
    const ctx = contextWith(path.join(dir, "ipfs"), store);
    expect(await audit(ctx, { round: "9" }).catch((e) => e)).to.be.instanceOf(AuditError).with.property("message").that.includes("no round 9");
    const unknown = await runAudit(ctx, { task: "5" }, () => undefined).catch((e) => e);
    expect(unknown).to.be.instanceOf(CoordinatorError);
    expect(unknown.message).to.include("task 5 does not exist");
    for (const bad of ["0", "-1", "1.5", "abc", ""]) {
      const error = await runAudit(ctx, { task: bad }, () => undefined).catch((e) => e);
      expect(error, bad).to.be.instanceOf(ConfigError);
      expect(error.message).to.include("--task must be a positive integer");
    }
    expect(formatHistory(history)).to.be.a("string");
    expect(() => formatRoundReport(history, 9n)).to.throw(AuditError, "no round 9");
  });
});
