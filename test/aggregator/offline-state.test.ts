// `aggregate-files` reproduces real rounds offline: two FLTrust + FedYogi rounds run by the
// aggregator on the in-process chain (real embedded store, real MNIST training), then each is
// re-run from files alone (the accepted updates, the base model, the pinned server update and the
// previous round's pinned optimiser state) through the library and the command line; the model
// digest must equal the chain's, the new state the pinned bytes. Hostile server update and state
// files are refused with errors naming the file and the problem.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { network } from "hardhat";
import type { Dataset } from "../../client/data/dataset.js";
import { loadMnist } from "../../client/data/mnist.js";
import { mlpSpec } from "../../client/model/spec.js";
import { OfflineAggregationError, aggregateFiles, type NamedFile, type OfflineOptions } from "../../lib/aggregator/offline.js";
import { aggregateOnce, type AggregatorOptions } from "../../lib/aggregator/service.js";
import { OPTIMIZER_STATE, SERVER_UPDATE_STATE, encodeServerUpdate, statePointer } from "../../lib/aggregator/state.js";
import { readRound } from "../../lib/chain/coordinator.js";
import { decodeSafetensors, encodeSafetensors } from "../../lib/codec/safetensors.js";
import { sha256Digest, type Hex32 } from "../../lib/digest.js";
import { currentModelPointer, fetchReport } from "../../lib/protocol/models.js";
import type { AggregationReport } from "../../lib/protocol/report.js";
import { openRound } from "../../lib/protocol/task.js";
import { CommandOptionError } from "../../scripts/commands/task.js";
import { runCli, runCliError } from "../helpers/cli.js";
import { TOKEN, createTestTask, honestRound, openTaskWorld, type Account, type TaskWorld } from "../helpers/task-world.js";

const { ethers } = await network.create();

const CLIENTS = 3;
const spec = mlpSpec({ seed: 0, hidden: 16 });
const OPTIONS: AggregatorOptions = { rule: "fltrust", rootData: "mnist-root:3:64", optimizer: "fedyogi", optimizerParams: { lr: 0.05 } };

/** What reproducing a round needs, fetched from the store, and what it must reproduce. */
interface PlayedRound {
  readonly round: bigint;
  readonly report: AggregationReport;
  readonly base: NamedFile;
  readonly updates: NamedFile[];
  readonly serverUpdate: NamedFile;
  /** The optimiser state pinned after the round. */
  readonly state: NamedFile;
  /** The chain's global model digest once the round finalized. */
  readonly onChainModel: Hex32;
}

describe("aggregate-files reproduces fltrust + server optimiser rounds from their files", function () {
  this.timeout(180_000);
  let world: TaskWorld;
  let aggregator: Account;
  let people: Account[];
  let pool: Dataset;
  let taskId: bigint;
  const played: PlayedRound[] = [];

  const coordinator = () => world.coordinator();
  const cli = (...args: string[]) => runCli(["--home", world.dir], args);

  /** Every client trains honestly on its 100 digits, commits and reveals; the aggregator finalizes; the round's files are fetched back. */
  async function playRound(): Promise<PlayedRound> {
    const round = await openRound(coordinator(), taskId);
    const basePointer = await currentModelPointer(coordinator(), world.store, taskId, world.fromBlock);
    const base = { name: `model-${round - 1n}.safetensors`, bytes: await world.store.get(basePointer) };
    await honestRound(world, { taskId, round, spec, pool, people, base: { digest: basePointer.digest, tensors: decodeSafetensors(base.bytes).tensors } });
    const summary = await aggregateOnce(world.contextFor(aggregator), taskId, { ...OPTIONS, pollMs: 20, fetchTimeoutMs: 2_000, log: () => {} });
    expect(summary).to.deep.include({ status: "submitted", phase: "Finalized" });
    expect((await readRound(coordinator(), taskId, round)).phase).to.equal("Finalized");
    const report = await fetchReport(world.store, summary.result!.reportDigest);
    const accepted = report.participants.filter((p) => p.verdict === "accepted");
    expect(accepted).to.have.length(CLIENTS);
    const pinned = async (name: string) => ({ name: `${name}-${round}.safetensors`, bytes: await world.store.get(statePointer(report, name)!) });
    return {
      round,
      report,
      base,
      updates: await Promise.all(accepted.map(async (p) => ({ name: `${p.address}-${round}.safetensors`, bytes: await world.store.get({ digest: p.updateDigest!, contentRoot: p.contentRoot! }) }))),
      serverUpdate: await pinned(SERVER_UPDATE_STATE),
      state: await pinned(OPTIMIZER_STATE),
      onChainModel: (await coordinator().globalModel(taskId)) as Hex32,
    };
  }

  /** The options that re-run round `k` as its report describes it, from `state` (default: the previous round's pinned state). */
  function replay(k: number, state: NamedFile | undefined = k > 0 ? played[k - 1].state : undefined): OfflineOptions {
    const { report, base, serverUpdate } = played[k];
    return {
      rule: { name: report.rule.name, params: report.rule.params },
      base,
      producer: world.coordinatorAddress,
      serverUpdate,
      optimizer: { name: report.optimizer!.name, params: report.optimizer!.params, ...(state ? { state } : {}) },
    };
  }

  const refused = (k: number, options: Partial<OfflineOptions>, pattern: RegExp) =>
    expect(() => aggregateFiles(played[k].updates, { ...replay(k), ...options })).to.throw(OfflineAggregationError, pattern);

  before(async () => {
    world = await openTaskWorld(ethers, { prefix: "anchorfl-offline-state-", funded: 2 + CLIENTS });
    aggregator = world.signers[1];
    people = world.signers.slice(2, 2 + CLIENTS);
    pool = (await loadMnist()).train;
    ({ taskId } = await createTestTask(world, {
      spec,
      config: { rewardPerRound: 10n * TOKEN, maxParticipants: CLIENTS, aggregators: [aggregator.address] },
      fund: 100n * TOKEN,
      joiners: people,
    }));
    played.push(await playRound(), await playRound());
  });

  after(async () => {
    await world?.close();
  });

  it("re-runs both rounds from their files: the chain's model digest and the pinned optimiser state, byte for byte", () => {
    expect(played.map((p) => p.report.optimizer)).to.deep.equal([0, 1].map(() => ({ name: "fedyogi", params: { lr: 0.05 } })));
    for (const [k, p] of played.entries()) {
      const offline = aggregateFiles(p.updates, replay(k));
      expect(offline.kind).to.equal("model");
      expect(sha256Digest(offline.bytes)).to.equal(p.onChainModel, `round ${p.round}: model`);
      expect(Buffer.from(offline.state!).equals(Buffer.from(p.state.bytes))).to.equal(true, `round ${p.round}: optimiser state`);
      expect(offline.serverUpdate).to.deep.equal({ rootData: "mnist-root:3:64", backend: "wasm" });
      expect(offline.aggregation.rule).to.equal("fltrust");
    }
    // The inputs matter: round 2 from zero state, or without the optimiser, gives another model.
    const fresh = aggregateFiles(played[1].updates, { ...replay(1), optimizer: { ...replay(1).optimizer!, state: undefined } });
    expect(sha256Digest(fresh.bytes)).not.to.equal(played[1].onChainModel);
    const plain = aggregateFiles(played[1].updates, { ...replay(1), optimizer: undefined });
    expect(sha256Digest(plain.bytes)).not.to.equal(played[1].onChainModel);
    expect(plain.state).to.equal(undefined);
  });

  it("the command line does the same from files on disk, in any order, and refuses optimiser flags without --optimizer", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "anchorfl-offline-files-"));
    try {
      const onDisk = async (file: NamedFile) => {
        const name = path.join(dir, file.name);
        await writeFile(name, file.bytes);
        return name;
      };
      const [round1, round2] = played;
      const updates = await Promise.all([...round2.updates].reverse().map(onDisk));
      const [base, serverUpdate, state] = await Promise.all([round2.base, round2.serverUpdate, round1.state].map(onDisk));
      const out = path.join(dir, "model-2.safetensors");
      const stateOut = path.join(dir, "state-out.safetensors");
      const common = ["--rule", "fltrust", "--server-update", serverUpdate, "--base", base, "--producer", world.coordinatorAddress, "--out", out];
      const printed = await cli("aggregate-files", ...updates, ...common, "--optimizer", "fedyogi", "--server-lr", "0.05", "--state", state, "--state-out", stateOut);
      expect(sha256Digest(new Uint8Array(await readFile(out)))).to.equal(round2.onChainModel);
      expect(Buffer.from(await readFile(stateOut)).equals(Buffer.from(round2.state.bytes))).to.equal(true);
      expect(printed).to.include(`server update ${serverUpdate}: trained on mnist-root:3:64 with wasm`);
      expect(printed).to.include(`digest ${round2.onChainModel}`).and.include("(fltrust {} + fedyogi)");
      expect(printed).to.match(new RegExp(`optimiser state written to .*state-out\\.safetensors: \\d+ bytes, digest ${sha256Digest(round2.state.bytes)}`));

      for (const flags of [["--state-out", stateOut], ["--state", state], ["--server-lr", "0.05"]]) {
        expect(await runCliError(cli, "aggregate-files", ...updates, ...common, ...flags))
          .to.be.instanceOf(CommandOptionError)
          .and.have.property("message")
          .that.matches(new RegExp(`^${flags[0]} given without a server optimiser; add --optimizer`));
      }
      expect(await runCliError(cli, "aggregate-files", ...updates, "--rule", "fltrust", "--out", out)).to.be.instanceOf(OfflineAggregationError).and.have.property("message").that.includes("--server-update <file>");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses fltrust without a server update, and a server update that is another round's, not one, misshapen, NaN, zero, or given to another rule", () => {
    const [round1, round2] = played;
    const named = (name: string, bytes: Uint8Array): NamedFile => ({ name, bytes });
    refused(1, { serverUpdate: undefined }, /rule fltrust measures every update against the round's server update, and none was given\n {2}hint: pass the fltrust-server-update file .* with --server-update <file>/);
    refused(1, { serverUpdate: round1.serverUpdate }, /^fltrust-server-update-1\.safetensors: it is not the fltrust-server-update of task \d+ round 2: round is "1", expected "2"; base_model_digest is/);
    refused(1, { serverUpdate: named("update.safetensors", round2.updates[0].bytes) }, /^update\.safetensors: it is not the fltrust-server-update .*anchorfl_state is null, expected "fltrust-server-update"/);
    refused(1, { serverUpdate: round2.state }, /^server-optimizer-2\.safetensors: it is not the fltrust-server-update .*anchorfl_state is "server-optimizer"/);

    const pinned = decodeSafetensors(round2.serverUpdate.bytes);
    const short = { ...pinned.tensors[0], shape: [pinned.tensors[0].data.length - 1], data: pinned.tensors[0].data.subarray(1) };
    refused(1, { serverUpdate: named("short.safetensors", encodeSafetensors([short, ...pinned.tensors.slice(1)], pinned.metadata)) }, /^short\.safetensors: .*shape/);
    const nan = round2.serverUpdate.bytes.slice();
    new DataView(nan.buffer).setFloat32(nan.length - 4, Number.NaN, true);
    refused(1, { serverUpdate: named("nan.safetensors", nan) }, /^nan\.safetensors: .*NaN/);
    const zero = encodeSafetensors(pinned.tensors.map((t) => ({ ...t, data: new Float32Array(t.data.length) })), pinned.metadata);
    refused(1, { serverUpdate: named("zero.safetensors", zero) }, /^zero\.safetensors: expected a non-zero server update, found the zero vector/);
    refused(1, { rule: { name: "median", params: {} } }, /^fltrust-server-update-2\.safetensors: a server update serves rule fltrust only, and the rule is median/);
    refused(1, { producer: "0xnot-an-address" }, /^--producer: expected an address \(0x and 40 hex digits\), found "0xnot-an-address"/);
    // A server update re-encoded with another root set's source is still this round's: only the round's binding is checked.
    const otherSource = encodeServerUpdate(pinned.tensors, { rootData: "mnist-root:9:10", training: { epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: 9 }, backend: "cpu" }, {
      taskId,
      round: 2n,
      modelSpecDigest: round2.report.modelSpecDigest,
      baseModelDigest: round2.report.baseModelDigest,
    });
    expect(aggregateFiles(round2.updates, { ...replay(1), serverUpdate: named("other-source.safetensors", otherSource) }).serverUpdate).to.deep.equal({ rootData: "mnist-root:9:10", backend: "cpu" });
  });

  it("refuses an optimiser without the base model, and a state that is this round's, another optimiser's, not a state, or NaN", () => {
    const [round1, round2] = played;
    refused(1, { base: undefined }, /server optimiser fedyogi steps the model, so it needs the base model file\n {2}hint: pass the round's base model with --base <file>/);
    const withState = (state: NamedFile, name = "fedyogi"): Partial<OfflineOptions> => ({ optimizer: { name, params: {}, state } });
    refused(1, withState(round2.state), /^server-optimizer-2\.safetensors: it is the state after round 2; round 2 starts from the state of an earlier round/);
    refused(1, withState(round1.state, "fedadam"), /^server-optimizer-1\.safetensors: it is not the server-optimizer of task \d+ round 1: optimizer is "fedyogi", expected "fedadam"/);
    refused(1, withState(round1.serverUpdate), /^fltrust-server-update-1\.safetensors: expected a server-optimizer state file, found a "fltrust-server-update" state file/);
    refused(1, withState(round2.updates[0]), /-2\.safetensors: expected a server-optimizer state file, found a file that is no state file/);
    const nan = round1.state.bytes.slice();
    new DataView(nan.buffer).setFloat32(nan.length - 4, Number.NaN, true);
    refused(1, withState({ name: "nan-state.safetensors", bytes: nan }), /^nan-state\.safetensors: .*NaN/);
    // The first round's own replay takes no state; given round 1's state it is refused, as the aggregator would never use it.
    refused(0, withState(round1.state), /it is the state after round 1; round 1 starts from the state of an earlier round/);
  });
});
