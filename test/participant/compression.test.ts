// Compressed updates from the participant's side: error feedback carries what top-k did not send
// (pure, over many rounds), the residual file survives a restart and an unusable one is moved
// aside, and one real round on the in-process chain with a real embedded store where three
// clients send top-k updates: the aggregator's model equals a direct computation from the
// revealed index/value tensors, a client sending f16 to this top-k task is invalid, and a
// restarted client carries its residual into the next round.
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { network } from "hardhat";
import type { Signer } from "ethers";
import { trainAs } from "../../client/attacks/train-as.js";
import type { Behaviour } from "../../client/attacks/behaviours.js";
import type { Dataset } from "../../client/data/dataset.js";
import { loadMnist } from "../../client/data/mnist.js";
import { mlpSpec, modelShapes, modelSpecDigest } from "../../client/model/spec.js";
import { journalPath } from "../../client/participant/journal.js";
import { parseResidual, readResidual, residualPath, writeResidual, type ResidualKey } from "../../client/participant/residual.js";
import type { Participant } from "../../client/participant/round.js";
import { aggregateOnce } from "../../lib/aggregator/service.js";
import { readReveals, readRound, send } from "../../lib/chain/coordinator.js";
import { addResidual, residualAfter, TOPK_INDICES, TOPK_VALUES, topkCount } from "../../lib/codec/compression.js";
import { decodeStoredSafetensors } from "../../lib/codec/safetensors.js";
import { decodeUpdate, encodeUpdate } from "../../lib/codec/update-file.js";
import { commitmentOf, randomSalt } from "../../lib/commitment.js";
import { sha256Digest, type Hex32 } from "../../lib/digest.js";
import { fetchModel, rawBlock } from "../../lib/protocol/models.js";
import { openRound } from "../../lib/protocol/task.js";
import { Random } from "../../lib/random.js";
import { ZERO_ROOT } from "../../lib/store/index.js";
import { flatten, type Tensor } from "../../lib/tensors.js";
import type { Context } from "../../scripts/commands/context.js";
import type { AnchorCoordinator } from "../../types/ethers-contracts/index.js";
import { expectClose } from "../helpers/close.js";
import { createTestTask, openTaskWorld, shard, testParticipant, type Account, type TaskWorld } from "../helpers/task-world.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const TOPK = { scheme: "topk", fraction: 0.1 } as const;
const spec = { ...mlpSpec({ seed: 0 }), options: { compression: TOPK } };
const shapes = modelShapes(spec);
const training = { epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: "sgd", seed: 0 } as const;

function randomDelta(seed: number): Tensor[] {
  const random = new Random(seed, "delta");
  return shapes.map((s) => ({ ...s, data: Float32Array.from({ length: s.shape.reduce((n, d) => n * d, 1) }, () => random.normal() * 0.01) }));
}

const metadataFor = (round: bigint) => ({
  taskId: 1n,
  round,
  participant: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  baseModelDigest: `0x${"ab".repeat(32)}` as Hex32,
  numSamples: 100,
  kind: "delta" as const,
  modelSpecDigest: modelSpecDigest(spec),
  extra: {},
});

/** The dense vector a top-k file stands for, read straight from its index and value tensors. */
function scatterTopk(bytes: Uint8Array, n: number): Float32Array {
  const stored = decodeStoredSafetensors(bytes).tensors;
  const indices = stored.find((t) => t.name === TOPK_INDICES)!.data;
  const values = stored.find((t) => t.name === TOPK_VALUES)!.data;
  const out = new Float32Array(n);
  indices.forEach((at, j) => (out[at] = values[j]));
  return out;
}

describe("participant: compressed updates and error feedback", function () {
  this.timeout(120_000);
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "anchorfl-compression-"));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("error feedback: what was sent plus the final residual adds up to the true deltas", () => {
    const n = flatten(randomDelta(0)).length;
    const truth = new Float64Array(n);
    const sentTotal = new Float64Array(n);
    let residual: Float32Array | undefined;
    for (let round = 1n; round <= 6n; round++) {
      const delta = randomDelta(Number(round));
      flatten(delta).forEach((x, i) => (truth[i] += x));
      const corrected = addResidual(delta, residual);
      const bytes = encodeUpdate(corrected, metadataFor(round), TOPK);
      const sent = decodeUpdate(bytes, { expected: shapes, compression: TOPK }).tensors;
      flatten(sent).forEach((x, i) => (sentTotal[i] += x));
      expect(flatten(sent).filter((x) => x !== 0).length).to.equal(topkCount(n, 0.1));
      residual = residualAfter(corrected, sent);
    }
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(sentTotal[i] + residual![i] - truth[i]));
    expect(worst).to.be.below(1e-6, "only float32 rounding separates them");
    // Without the residual, top-k would have lost most of the mass it never sent.
    const dropped = truth.reduce((s, x, i) => s + Math.abs(x - sentTotal[i]), 0) / truth.reduce((s, x) => s + Math.abs(x), 0);
    expect(dropped).to.be.above(0.3);
  });

  it("the residual file round-trips, and an unusable one is moved aside with a warning", async () => {
    const key: ResidualKey = { chainId: 31337n, coordinator: "0x5FbDB2315678afecb367f032d93F642f64180aa3", taskId: 4n, participant: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", modelSpecDigest: modelSpecDigest(spec) };
    const file = residualPath(journalPath(dir, key.participant), key);
    expect(path.dirname(file)).to.equal(path.join(dir, "journal"));
    const warnings: string[] = [];
    const warn = (l: string) => warnings.push(l);
    expect(await readResidual(file, key, shapes, warn)).to.equal(undefined);
    const values = flatten(randomDelta(9));
    await writeResidual(file, key, shapes, { round: 3n, values });
    expect(await readResidual(file, key, shapes, warn)).to.deep.equal({ round: 3n, values });
    expect((await readdir(path.dirname(file))).filter((f) => f.endsWith(".tmp"))).to.deep.equal([]);

    expect(() => parseResidual(new Uint8Array(12), key, shapes)).to.throw(/header/);
    const cases: [string, () => Promise<void>, RegExp][] = [
      ["corrupt", () => writeFile(file, "not a safetensors file"), /unusable \(header length/],
      ["wrong shape", () => writeResidual(file, key, [{ name: "w", shape: [values.length] }], { round: 3n, values }), /tensors do not match the model spec/],
      ["another task", () => writeResidual(file, { ...key, taskId: 5n }, shapes, { round: 3n, values }), /task_id is "5", expected "4"/],
    ];
    for (const [what, damage, message] of cases) {
      await damage();
      expect(await readResidual(file, key, shapes, warn), what).to.equal(undefined);
      expect(warnings.pop(), what).to.match(message).and.to.match(/moved it to .*unusable-.*zero residual/);
    }
    const kept = (await readdir(path.dirname(file))).filter((f) => f.includes(".unusable-"));
    expect(kept.length, "nothing is deleted").to.be.at.least(1);
  });

  describe("one real round with top-k clients on the in-process chain", () => {
    let world: TaskWorld;
    let people: Account[];
    let taskId: bigint;
    let genesisDigest: Hex32;
    let pool: Dataset;
    const lines: string[] = [];

    const contextFor = (signer: Signer): Context => world.contextFor(signer);
    const coordinator = (signer?: Signer): AnchorCoordinator => world.coordinator(signer);
    const participant = (i: number, behaviour: Behaviour = { kind: "honest" }) =>
      testParticipant(world, { signer: people[i], taskId, data: shard(pool, i), seed: i, behaviour, log: (l) => lines.push(`p${i} ${l}`) });
    const residualOf = (i: number) =>
      residualPath(journalPath(dir, people[i].address), { chainId: world.chainId, coordinator: world.coordinatorAddress, taskId });
    const keyOf = (i: number): ResidualKey => ({ chainId: world.chainId, coordinator: world.coordinatorAddress, taskId, participant: people[i].address, modelSpecDigest: modelSpecDigest(spec) });

    async function waitUntil(check: () => Promise<boolean>): Promise<void> {
      for (let i = 0; i < 2_000 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
    }

    /** Runs the clients' participate() through commit and reveal; `last` reveals after them, closing the reveal phase. */
    async function playRound(round: bigint, clients: Participant[], last?: () => Promise<unknown>) {
      const running = Promise.all(clients.map((p) => p.participate()));
      const expectedCommits = BigInt(clients.length + (last ? 1 : 0));
      await waitUntil(async () => (await coordinator().roundInfo(taskId, round)).commitCount === expectedCommits);
      await time.increaseTo((await coordinator().roundInfo(taskId, round)).commitEnd);
      const outcomes = await running;
      await last?.();
      return outcomes;
    }

    before(async () => {
      // The outer folder holds the journals and residuals too; the outer after() removes it.
      world = await openTaskWorld(ethers, { prefix: "anchorfl-compression-", funded: 5, dir });
      people = world.signers.slice(1, 5);
      const task = await createTestTask(world, { spec, config: { maxParticipants: 8 }, joiners: people });
      taskId = task.taskId;
      genesisDigest = task.genesis.model.digest;
      pool = (await loadMnist()).train;
    });

    after(async () => {
      await world?.close();
    });

    it("clients send top-k, the model equals a direct computation, f16 is refused, and a restarted client carries its residual", async () => {
      const round = await openRound(coordinator(), taskId);
      const base = (await fetchModel(world.store, rawBlock(genesisDigest), spec)).tensors;
      // Client 3 sends f16 to this top-k task, committing first and revealing last.
      const delta3 = (await trainAs({ kind: "honest" }, { ...training, seed: 3, spec, globalWeights: base, data: shard(pool, 3) }, { seed: 3 })).update;
      const f16 = encodeUpdate(delta3, { ...metadataFor(round), taskId, participant: people[3].address, baseModelDigest: genesisDigest }, { scheme: "f16" });
      await world.store.pin((await world.store.put(f16)).cid);
      const digest = sha256Digest(f16);
      const salt = randomSalt();
      await send("commit", () =>
        coordinator(people[3]).commit(taskId, round, commitmentOf({ chainId: world.chainId, coordinator: world.coordinatorAddress, taskId, round, participant: people[3].address, updateDigest: digest, salt })),
      );
      const outcomes = await playRound(round, [0, 1, 2].map((i) => participant(i)), () => send("reveal", () => coordinator(people[3]).reveal(taskId, round, digest, 100n, salt, ZERO_ROOT)));
      expect(outcomes.map((o) => o.kind)).to.deep.equal(["revealed", "revealed", "revealed"]);
      expect((await readRound(coordinator(), taskId, round)).phase).to.equal("Aggregation");

      const summary = await aggregateOnce(contextFor(world.owner), taskId, { rule: "fedavg", pollMs: 20, fetchTimeoutMs: 2_000, log: (l) => lines.push(l) });
      const verdicts = Object.fromEntries(summary.participants.map((p) => [p.address, p]));
      for (const i of [0, 1, 2]) expect(verdicts[people[i].address].verdict, `client ${i}`).to.equal("accepted");
      expect(verdicts[people[3].address].verdict).to.equal("invalid");
      expect(verdicts[people[3].address].reason).to.match(/stored as f16, but the task's compression is topk/);

      // Direct: the mean of the three sparse updates (100 samples each), in float64, added to the base in float32.
      const n = flatten(base).length;
      const reveals = (await readReveals(coordinator(), taskId, round, { fromBlock: world.fromBlock })).filter((r) => r.participant !== people[3].address);
      const sparse = await Promise.all(reveals.map(async (r) => scatterTopk(await world.store.get({ digest: r.updateDigest, contentRoot: r.contentRoot }), n)));
      sparse.forEach((v) => expect(v.filter((x) => x !== 0).length).to.be.at.most(topkCount(n, TOPK.fraction)));
      const flatBase = flatten(base);
      const model = flatten((await fetchModel(world.store, { digest: summary.result!.newModelDigest, contentRoot: ZERO_ROOT }, spec)).tensors);
      expect(await coordinator().globalModel(taskId)).to.equal(summary.result!.newModelDigest);
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(model[i] - Math.fround(flatBase[i] + Math.fround((sparse[0][i] + sparse[1][i] + sparse[2][i]) / 3))));
      expectClose(worst, 0, 1e-7, "largest difference from the direct computation");

      // Each client kept exactly what it did not send: zero where it sent, its own delta elsewhere, all smaller than what it sent.
      const residuals: Float32Array[] = [];
      for (const i of [0, 1, 2]) {
        const stored = (await readResidual(residualOf(i), keyOf(i), shapes, (l) => expect.fail(l)))!;
        expect(stored.round).to.equal(round);
        const sent = sparse[reveals.findIndex((r) => r.participant === people[i].address)];
        const smallestSent = Math.min(...sent.filter((x) => x !== 0).map(Math.abs));
        const wrong = stored.values.findIndex((x, k) => (sent[k] !== 0 ? x !== 0 : Math.abs(x) > smallestSent));
        expect(wrong, `client ${i}'s residual at ${wrong}`).to.equal(-1);
        expect(stored.values.some((x) => x !== 0)).to.equal(true);
        residuals.push(stored.values);
      }

      // Round 2: client 0 restarts (a new Participant, state from disk only) and sends a zero update:
      // everything it sends then comes from the residual it carried.
      const round2 = await openRound(coordinator(), taskId);
      const [outcome] = await playRound(round2, [participant(0, { kind: "free-ride", mode: "zero" })]);
      expect(outcome.kind).to.equal("revealed");
      const [reveal] = await readReveals(coordinator(), taskId, round2, { fromBlock: world.fromBlock });
      const sent2 = scatterTopk(await world.store.get({ digest: reveal.updateDigest, contentRoot: reveal.contentRoot }), n);
      const after = (await readResidual(residualOf(0), keyOf(0), shapes, (l) => expect.fail(l)))!;
      expect(after.round).to.equal(round2);
      expect(sent2.filter((x) => x !== 0).length).to.equal(topkCount(n, TOPK.fraction));
      const broken = residuals[0].findIndex((x, k) => sent2[k] + after.values[k] !== x);
      expect(broken, `the carried residual at ${broken}`).to.equal(-1);
    });
  });
});
