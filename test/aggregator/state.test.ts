// Server optimisers and FLTrust end to end, on the in-process chain with a real embedded store in
// a temp folder and real MNIST training: the optimiser state is pinned after every round and
// carried into the next from the last finalized round's report; FLTrust's server update is
// trained on a named root set, pinned, and aggregated from the pinned file; `verify` re-runs
// rounds from the chain, the reports and those files, exactly, and re-checks the server update
// approximately. Hostile state files (missing, another round's, wrong shape, NaN, unknown name)
// are refused with errors naming the state.
import { expect } from "chai";
import { network } from "hardhat";
import type { Signer } from "ethers";
import type { Dataset } from "../../client/data/dataset.js";
import { loadMnist } from "../../client/data/mnist.js";
import { mlpSpec, parameterCount } from "../../client/model/spec.js";
import { RuleParameterError, serverStateFromTensors } from "../../lib/aggregation/index.js";
import { gatherRound } from "../../lib/aggregator/gather.js";
import { DEFAULT_POLICY } from "../../lib/aggregator/policy.js";
import { aggregateRound } from "../../lib/aggregator/round.js";
import { AggregatorError, aggregateOnce, resolveAggregation, type AggregatorOptions } from "../../lib/aggregator/service.js";
import { RootDataError, compareServerUpdates, loadRootData, serverUpdateFile } from "../../lib/aggregator/state-fltrust.js";
import {
  OPTIMIZER_STATE,
  SERVER_UPDATE_STATE,
  StateFileError,
  checkStateNames,
  decodeOptimizerState,
  encodeOptimizerState,
  fetchState,
  previousOptimizerState,
} from "../../lib/aggregator/state.js";
import { formatVerify, verifyRound } from "../../lib/aggregator/verify.js";
import { readRound, send } from "../../lib/chain/coordinator.js";
import { decodeSafetensors, encodeSafetensors } from "../../lib/codec/safetensors.js";
import { sha256Digest, type Hex32 } from "../../lib/digest.js";
import { currentModelPointer, fetchModel, fetchReport } from "../../lib/protocol/models.js";
import { ReportFormatError, encodeReport, parseReport, type AggregationReport } from "../../lib/protocol/report.js";
import { openRound } from "../../lib/protocol/task.js";
import { ZERO_ROOT, describeContent } from "../../lib/store/index.js";
import { flatten, type Tensor } from "../../lib/tensors.js";
import type { Context } from "../../scripts/commands/context.js";
import type { AnchorCoordinator } from "../../types/ethers-contracts/index.js";
import { TOKEN, createTestTask, honestRound, openTaskWorld, submittedResult, type Account, type TaskWorld } from "../helpers/task-world.js";

const { ethers } = await network.create();

const CLIENTS = 3;
const spec = mlpSpec({ seed: 0, hidden: 16 });
const d = parameterCount(spec);
const ADAM: AggregatorOptions = { rule: "fedavg", optimizer: "fedadam", optimizerParams: { lr: 0.05 } };
const TRUST: AggregatorOptions = { rule: "fltrust", rootData: "mnist-root:3:64" };

describe("aggregator state: server optimisers and FLTrust, pinned, carried and verified", function () {
  this.timeout(120_000);
  let world: TaskWorld;
  let aggregator: Account;
  let people: Account[];
  let pool: Dataset;
  let adamTask: bigint;
  let trustTask: bigint;
  /** The reports of the three honest fedadam rounds. */
  const reports: AggregationReport[] = [];
  const lines: string[] = [];

  const coordinator = (signer?: Signer): AnchorCoordinator => world.coordinator(signer);
  const contextFor = (signer: Signer): Context => world.contextFor(signer);
  const ids = (taskId: bigint, round: bigint) => ({ chainId: world.chainId, taskId, round, fromBlock: world.fromBlock });
  const aggregatorOptions = (o: AggregatorOptions): AggregatorOptions => ({ ...o, pollMs: 20, fetchTimeoutMs: 2_000, log: (l) => lines.push(l) });

  async function globalModel(taskId: bigint): Promise<{ digest: Hex32; tensors: Tensor[] }> {
    const pointer = await currentModelPointer(coordinator(), world.store, taskId, world.fromBlock);
    return { digest: pointer.digest, tensors: (await fetchModel(world.store, pointer, spec)).tensors };
  }

  /** Every client trains honestly on its 100 digits, commits, then reveals: the round reaches Aggregation. */
  async function playRound(taskId: bigint): Promise<bigint> {
    const round = await openRound(coordinator(), taskId);
    await honestRound(world, { taskId, round, spec, pool, people, base: await globalModel(taskId) });
    expect((await readRound(coordinator(), taskId, round)).phase).to.equal("Aggregation");
    return round;
  }

  const newTask = async (): Promise<bigint> =>
    (
      await createTestTask(world, {
        spec,
        config: { rewardPerRound: 10n * TOKEN, maxParticipants: CLIENTS, aggregators: [aggregator.address] },
        fund: 100n * TOKEN,
        joiners: people,
      })
    ).taskId;
  before(async () => {
    world = await openTaskWorld(ethers, { prefix: "anchorfl-state-", funded: 2 + CLIENTS });
    aggregator = world.signers[1];
    people = world.signers.slice(2, 2 + CLIENTS);
    adamTask = await newTask();
    trustTask = await newTask();
    pool = (await loadMnist()).train;
  });

  after(async () => {
    await world?.close();
  });

  it("refuses an unknown optimiser, an out-of-range parameter, optimiser flags without one and a malformed root set before any round", () => {
    expect(() => resolveAggregation({ optimizer: "adam" })).to.throw(RuleParameterError, "unknown server optimiser");
    expect(() => resolveAggregation({ optimizer: "fedadam", optimizerParams: { beta1: 1 } })).to.throw(RuleParameterError, "beta1 in [0, 1)");
    expect(() => resolveAggregation({ optimizerParams: { lr: 0.1 } })).to.throw(AggregatorError, "without a server optimiser");
    expect(() => resolveAggregation({ rule: "fltrust", rootData: "mnist-root:x:10" })).to.throw(RootDataError, "mnist-root:<seed>:<size>");
    expect(() => resolveAggregation({ rule: "median", rootData: "mnist-root:0:10" })).to.throw(AggregatorError, "only serves fltrust");
    expect(resolveAggregation({ rule: "fltrust", optimizer: "fedyogi" })).to.deep.include({
      optimizer: { name: "fedyogi", params: {} },
      fltrust: { rootData: "mnist-root:0:100", training: {} },
    });
  });

  it("fedadam over three rounds: the state is pinned each round, carried from the last finalized round, and every round verifies exactly", async () => {
    for (let k = 0; k < 3; k++) {
      const round = await playRound(adamTask);
      const summary = await aggregateOnce(contextFor(aggregator), adamTask, aggregatorOptions(ADAM));
      expect(summary).to.deep.include({ status: "submitted", phase: "Finalized" });
      expect(summary.counts.accepted).to.equal(CLIENTS);
      const report = await fetchReport(world.store, summary.result!.reportDigest);
      expect(report.optimizer).to.deep.equal({ name: "fedadam", params: { lr: 0.05 } });
      expect(report.state?.map((s) => s.name)).to.deep.equal([OPTIMIZER_STATE]);
      expect(await world.store.isPinned(report.state![0])).to.equal(true);
      // The pinned state says what it is and how many server steps it holds.
      const file = decodeSafetensors(await world.store.get(report.state![0]));
      expect(file.metadata).to.include({ anchorfl_state: OPTIMIZER_STATE, optimizer: "fedadam", task_id: String(adamTask), round: String(round) });
      const state = serverStateFromTensors(file.tensors);
      expect(state.t).to.equal(k + 1, "one server step per finalized round");
      expect(state.m.length).to.equal(d);
      reports.push(report);
    }
    expect(new Set(reports.map((r) => r.state![0].digest)).size).to.equal(3);
    expect(lines.some((l) => l.includes("aggregating with fedavg + fedadam"))).to.equal(true);

    for (const round of [1n, 2n, 3n]) {
      const v = await verifyRound(coordinator(), world.store, ids(adamTask, round));
      expect(v.ok, formatVerify(v).join("\n")).to.equal(true);
      expect(v.parts.map((p) => p.part)).to.deep.equal(["model", "report", "rewardsRoot", "rewardsTotal", "slashes", `state ${OPTIMIZER_STATE}`]);
      expect(formatVerify(v)[0]).to.include("+ server optimiser fedadam");
    }

    // The carried state matters: round 3 re-run from zero state gives another model.
    const inputs = await gatherRound(coordinator(), world.store, ids(adamTask, 3n), { lookback: DEFAULT_POLICY.lookback });
    const run = (previous: Parameters<typeof encodeOptimizerState>[0]) =>
      aggregateRound({ ...inputs, rule: { name: "fedavg", params: {} }, optimizer: { name: "fedadam", params: { lr: 0.05 }, previous }, policy: DEFAULT_POLICY, softwareVersion: reports[2].software.version });
    const carried = await previousOptimizerState(world.store, inputs.previous, "fedadam", d);
    expect(carried.t).to.equal(2);
    const [a, b] = [await run(carried), await run(carried)];
    expect(sha256Digest(a.modelBytes)).to.equal(reports[2].model.digest, "the same bytes as the aggregator's run");
    expect(Buffer.from(b.modelBytes).equals(Buffer.from(a.modelBytes))).to.equal(true, "two runs, the same model bytes");
    expect(Buffer.from(b.stateFiles[0].bytes).equals(Buffer.from(a.stateFiles[0].bytes))).to.equal(true, "two runs, the same state bytes");
    const fresh = await run(await previousOptimizerState(world.store, undefined, "fedadam", d));
    expect(sha256Digest(fresh.modelBytes)).not.to.equal(reports[2].model.digest);
  });

  it("a round whose report names a tampered state file fails verify, naming the state", async () => {
    const round = await playRound(adamTask);
    const inputs = await gatherRound(coordinator(), world.store, ids(adamTask, round), { lookback: DEFAULT_POLICY.lookback });
    const previous = await previousOptimizerState(world.store, inputs.previous, "fedadam", d);
    const honest = await aggregateRound({ ...inputs, rule: { name: "fedavg", params: {} }, optimizer: { name: "fedadam", params: { lr: 0.05 }, previous }, policy: DEFAULT_POLICY, softwareVersion: "0.1.0" });
    // The aggregator publishes the right model, but a state file whose momentum it doubled.
    const real = decodeSafetensors(honest.stateFiles[0].bytes);
    const doubled = real.tensors.map((t) => (t.name === "m" ? { ...t, data: t.data.map((x) => 2 * x) } : t));
    const tamperedState = encodeSafetensors(doubled, real.metadata);
    await world.store.pin((await world.store.put(tamperedState)).cid);
    const content = await describeContent(tamperedState);
    const report = { ...honest.report, state: [{ name: OPTIMIZER_STATE, digest: content.digest, contentRoot: content.contentRoot }] };
    const reportBytes = encodeReport(report);
    await world.store.pin((await world.store.put(reportBytes)).cid);
    await world.store.pin((await world.store.put(honest.modelBytes)).cid);
    await send("submit tampered", () => coordinator(aggregator).submitResult(adamTask, round, submittedResult(honest.result, sha256Digest(reportBytes))));
    const v = await verifyRound(coordinator(), world.store, ids(adamTask, round));
    expect(v.ok).to.equal(false);
    expect(v.parts.filter((p) => !p.match).map((p) => p.part)).to.deep.equal(["report", `state ${OPTIMIZER_STATE}`]);
    const text = formatVerify(v).join("\n");
    expect(text).to.match(/model: match/).and.match(/state server-optimizer: DIFFERS: on-chain 0x[0-9a-f]{64}, recomputed 0x[0-9a-f]{64}/).and.match(/NOT verified/);
  });

  it("hostile state files are refused with errors naming the state: missing, another round's, wrong shape, NaN, unknown name, malformed entries", async () => {
    const finalized = reports[1];
    const previous = { round: 2n, report: finalized };
    const withState = (digest: Hex32, name = OPTIMIZER_STATE): AggregationReport => ({ ...finalized, state: [{ name, digest, contentRoot: ZERO_ROOT }] });
    const refused = async (report: AggregationReport, pattern: RegExp) => {
      const error = await previousOptimizerState(world.store, { ...previous, report }, "fedadam", d, 500).then(
        () => expect.fail("expected the state to be refused"),
        (e: Error) => e,
      );
      expect(error).to.be.instanceOf(StateFileError);
      expect(error.message).to.include("state server-optimizer of task").and.match(pattern);
    };
    const binding = { taskId: adamTask, round: 2n, modelSpecDigest: finalized.modelSpecDigest, baseModelDigest: finalized.baseModelDigest };
    const good = decodeOptimizerState(await world.store.get(finalized.state![0]), "fedadam", d, binding);
    const put = async (bytes: Uint8Array) => (await world.store.put(bytes)).digest as Hex32;

    await refused(withState(sha256Digest(Uint8Array.of(1, 2, 3))), /could not be had/);
    const otherRound = encodeOptimizerState(good, { name: "fedadam", params: {} }, { ...binding, round: 1n });
    await refused(withState(await put(otherRound)), /round is "1", expected "2"/);
    const short = { t: good.t, m: good.m.subarray(1), v: good.v!.subarray(1) };
    await refused(withState(await put(encodeOptimizerState(short, { name: "fedadam", params: {} }, binding))), /shape/);
    const nan = encodeOptimizerState(good, { name: "fedadam", params: {} }, binding).slice();
    new DataView(nan.buffer).setFloat32(nan.length - 4, Number.NaN, true);
    await refused(withState(await put(nan)), /NaN/);
    await refused(withState(finalized.model.digest), /refused/);

    expect(() => checkStateNames(withState(finalized.state![0].digest, "reputation-scores"))).to.throw(StateFileError, 'unknown state "reputation-scores"');
    await fetchState(world.store, withState(finalized.state![0].digest, "error-feedback"), OPTIMIZER_STATE, () => 0).then(
      () => expect.fail("expected an unknown state to be refused"),
      (e: Error) => expect(e).to.be.instanceOf(StateFileError).and.have.property("message").that.includes("error-feedback"),
    );
    const malformed = { ...finalized, state: [{ name: "b", digest: "0x12", contentRoot: ZERO_ROOT }, { name: "a", digest: ZERO_ROOT, contentRoot: ZERO_ROOT }] };
    expect(() => parseReport(new TextEncoder().encode(JSON.stringify(malformed)))).to.throw(ReportFormatError, "state[0]").and.match(/state\[1\]\.name must be after/);
  });

  it("fltrust: the server update is trained on the named root set, pinned, aggregated from the file, and verify says which part is approximate", async () => {
    const round = await playRound(trustTask);
    const summary = await aggregateOnce(contextFor(aggregator), trustTask, aggregatorOptions(TRUST));
    expect(summary).to.deep.include({ status: "submitted", phase: "Finalized" });
    const report = await fetchReport(world.store, summary.result!.reportDigest);
    expect(report.rule.name).to.equal("fltrust");
    expect(report.serverUpdate).to.deep.include({ rootData: "mnist-root:3:64", backend: "wasm" });
    expect(report.serverUpdate!.training).to.deep.equal({ epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: 3 });
    expect(report.state?.map((s) => s.name)).to.deep.equal([SERVER_UPDATE_STATE]);
    expect(await world.store.isPinned(report.state![0])).to.equal(true);
    // Honest clients point the same way as the server: each earns trust (score = 1 - trust < 1).
    for (const p of report.participants) expect(p.score).to.be.lessThan(1);
    expect((await loadRootData("mnist-root:3:64")).n).to.equal(64);

    // Same backend, same inputs: the server update file is the same bytes twice.
    const inputs = await gatherRound(coordinator(), world.store, ids(trustTask, round), { lookback: DEFAULT_POLICY.lookback });
    const again = await serverUpdateFile(inputs, { rootData: "mnist-root:3:64", training: {} });
    expect(sha256Digest(again.bytes)).to.equal(report.state![0].digest);

    const v = await verifyRound(coordinator(), world.store, ids(trustTask, round));
    const text = formatVerify(v).join("\n");
    console.log(text.replace(/^/gm, "      "));
    expect(v.ok, text).to.equal(true);
    expect(v.parts.map((p) => p.part)).to.include(`state ${SERVER_UPDATE_STATE}`);
    expect(v.serverUpdate).to.deep.include({ match: true, relativeDistance: 0, rootData: "mnist-root:3:64", pinnedBackend: "wasm", localBackend: "wasm" });
    expect(text).to.match(/server update \(APPROXIMATE: re-trained here on mnist-root:3:64 with wasm, pinned from wasm; tolerance relative distance <= 0\.01\): match/);
    expect(text).to.include("verified: the round reproduces exactly (exact given the pinned server update; the server update itself checked approximately)");

    // Beyond the tolerance the approximate check fails, and says by how much.
    const pinned = decodeSafetensors(await world.store.get(report.state![0])).tensors;
    const flat = flatten(pinned);
    const off = compareServerUpdates(flat, pinned.map((t) => ({ ...t, data: t.data.map((x, i) => x * (i % 2 ? 1.1 : 0.9)) })));
    expect(off.match).to.equal(false);
    expect(off.relativeDistance).to.be.within(0.05, 0.15);
  });

  it("fltrust with fedyogi on top: both state files named, sorted, and verified", async () => {
    const round = await playRound(trustTask);
    const summary = await aggregateOnce(contextFor(aggregator), trustTask, aggregatorOptions({ ...TRUST, optimizer: "fedyogi" }));
    const report = await fetchReport(world.store, summary.result!.reportDigest);
    expect(report.state?.map((s) => s.name)).to.deep.equal([SERVER_UPDATE_STATE, OPTIMIZER_STATE]);
    const v = await verifyRound(coordinator(), world.store, ids(trustTask, round));
    expect(v.ok, formatVerify(v).join("\n")).to.equal(true);
    expect(v.parts.filter((p) => p.part.startsWith("state")).map((p) => p.part)).to.deep.equal([`state ${OPTIMIZER_STATE}`, `state ${SERVER_UPDATE_STATE}`]);
    expect(v.serverUpdate?.match).to.equal(true);
  });
});
