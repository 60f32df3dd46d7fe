// An in-memory federated simulation: R rounds of N clients, no chain and no store, because
// anchoring changes nothing about accuracy. Every learning step is the real one: the real
// partitioners, trainAs (honest training and every Byzantine behaviour), the policy's judge
// on every round, the registry's robust rules, and evaluate on the held-out digits. The
// global model moves exactly as in aggregateRound: base + aggregate, float32.
import { getAddress } from "ethers";
import { craftUpdate, type Behaviour } from "../../client/attacks/behaviours.js";
import { trainAs } from "../../client/attacks/train-as.js";
import { zeroUpdate } from "../../client/attacks/updates.js";
import { subset, type Dataset } from "../../client/data/dataset.js";
import { partition, type PartitionSpec } from "../../client/data/partition.js";
import { genesisWeights } from "../../client/model/build.js";
import { modelShapes, modelSpecDigest, type ModelSpec } from "../../client/model/spec.js";
import { evaluate, type OptimizerName } from "../../client/train/train.js";
import { aggregate, type RawParams } from "../aggregation/index.js";
import { DEFAULT_POLICY, judge, type Candidate, type EarlierUpdate, type Judgement, type PolicyParams } from "../aggregator/policy.js";
import { AnchorFLError } from "../errors.js";
import { CompressedLink } from "../codec/compression-link.js";
import type { CompressionOption, TaskOptions } from "../protocol/options.js";
import { deriveSeed, Random } from "../random.js";
import { flatten, unflatten, type Tensor } from "../tensors.js";

export class SimulationSettingsError extends AnchorFLError {}

export interface SimulationSettings {
  readonly spec: ModelSpec;
  /** The pool the partition divides among clients. */
  readonly train: Dataset;
  /** Held out: evaluates the global model after every round. */
  readonly test: Dataset;
  readonly clients: number;
  readonly rounds: number;
  readonly partition: PartitionSpec;
  readonly rule: string;
  readonly ruleParams?: RawParams;
  /** What the malicious clients do (they all do the same, as colluders). */
  readonly attack: Behaviour;
  /** Malicious clients = round(fraction x clients); they are the last ones. */
  readonly maliciousFraction: number;
  /** true: aggregate only what the policy accepts, as the deployed aggregator does; false: the rule alone sees every update. */
  readonly usePolicy: boolean;
  readonly policy?: PolicyParams;
  /** The task options the policy reads (telemetry bounds, the anomaly detector), as in the task's spec. */
  readonly options?: TaskOptions;
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly optimizer?: OptimizerName;
  readonly seed: number;
  /**
   * FLTrust's root data set (Cao et al. 2021): this many examples, a seeded sample of `train`,
   * are held back from the partition and trained on by the server every round. Set it for
   * every rule of a comparison, not only fltrust, so all of them see the same client data.
   */
  readonly rootSize?: number;
  /** "last": evaluate only the final model (its accuracy is the result); saves a test pass per round. Default "every". */
  readonly evaluate?: "every" | "last";
  /** Shares round-1 training between runs that differ only in rule, attack or policy (see TrainingCache). */
  readonly cache?: TrainingCache;
  /**
   * When set, every update goes through the real codec, encoded under this compression (absent:
   * float32) and decoded as the aggregator does, with each client's error-feedback residual;
   * each round records the encoded sizes.
   */
  readonly encoding?: { readonly compression?: CompressionOption };
}

export interface SimulatedRound {
  readonly round: number;
  /** Test accuracy and loss of the round's model; absent for rounds skipped by evaluate "last". */
  readonly accuracy?: number;
  readonly loss?: number;
  /** Canonical (address) order, as the policy returns them. */
  readonly judgements: readonly Judgement[];
  /** With `encoding`: each client's update file size in bytes (client order). */
  readonly updateBytes?: readonly number[];
}

export interface SimulationResult {
  readonly rounds: readonly SimulatedRound[];
  /** Test accuracy and loss of the final model. */
  readonly final: { readonly accuracy: number; readonly loss: number };
  /** Checksummed addresses of the malicious clients. */
  readonly malicious: readonly string[];
  readonly clientAddresses: readonly string[];
}

/** A stable, readable stand-in address per client: 0x…01, 0x…02, … */
function simulatedAddress(client: number): string {
  return getAddress(`0x${(client + 1).toString(16).padStart(40, "0")}`);
}

/** How many of `clients` are malicious at `fraction` (rounded to the nearest client). */
export function maliciousCount(clients: number, fraction: number): number {
  return Math.round(clients * fraction);
}

/**
 * Round 1 starts every run from the same genesis model, so a client's round-1 training depends
 * only on its shard and the training settings, never on the rule, the attack or the policy.
 * Runs that share those can share it: the cache keys each trained delta by everything that
 * feeds it (the data set by identity), so a differing setting is a miss, never a wrong hit.
 * Later rounds start from models that differ between rules and are always trained afresh.
 */
export class TrainingCache {
  readonly #entries = new Map<string, TrainedUpdate>();
  readonly #datasets = new Map<Dataset, number>();
  hits = 0;

  key(s: SimulationSettings, client: number): string {
    let id = this.#datasets.get(s.train);
    if (id === undefined) {
      id = this.#datasets.size + 1;
      this.#datasets.set(s.train, id);
    }
    const { spec, clients, partition, rootSize, seed, epochs, batchSize, learningRate, optimizer } = s;
    return JSON.stringify([id, spec, clients, partition, rootSize ?? 0, seed, epochs, batchSize, learningRate, optimizer ?? "sgd", client]);
  }

  async get(key: string, train: () => Promise<TrainedUpdate>): Promise<TrainedUpdate> {
    const hit = this.#entries.get(key);
    if (hit) {
      this.hits++;
      return hit;
    }
    const trained = await train();
    this.#entries.set(key, trained);
    return trained;
  }
}

interface TrainedUpdate {
  readonly update: Tensor[];
  readonly numSamples: number;
}

function check(s: SimulationSettings): void {
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0) throw new SimulationSettingsError(`${name} must be a positive integer, found ${v}`);
  };
  positiveInt("clients", s.clients);
  positiveInt("rounds", s.rounds);
  if (!(s.maliciousFraction >= 0 && s.maliciousFraction < 1)) throw new SimulationSettingsError(`maliciousFraction must be in [0, 1), found ${s.maliciousFraction}`);
  if (s.rootSize !== undefined) positiveInt("rootSize", s.rootSize);
  const forClients = s.train.n - (s.rootSize ?? 0);
  if (forClients < s.clients) {
    throw new SimulationSettingsError(`${s.clients} clients need at least as many training digits, found ${forClients}${s.rootSize ? ` after holding back the root set of ${s.rootSize}` : ""}`);
  }
  if (s.rule === "fltrust" && s.rootSize === undefined) {
    throw new SimulationSettingsError("rule fltrust needs a root data set, found no rootSize", { hint: "set rootSize (Cao et al. use 100 examples)" });
  }
}

const addTo = (base: Float32Array, delta: Float32Array | undefined) => {
  const next = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) next[i] = base[i] + (delta ? delta[i] : 0);
  return next;
};

/** The root set (a seeded sample of `rootSize`) and the rest, which the clients share. */
function holdBackRoot(train: Dataset, rootSize: number | undefined, seed: number): { root?: Dataset; pool: Dataset } {
  if (rootSize === undefined) return { pool: train };
  const order = new Random(seed, "root-set").permutation(train.n);
  const rest = order.slice(rootSize).sort((a, b) => a - b);
  return { root: subset(train, order.slice(0, rootSize)), pool: subset(train, rest) };
}

/** ALIE, IPM and free riders craft from the honest updates or nothing: craftUpdate ignores their own delta, so training it would be thrown away. */
const ignoresOwnDelta = (b: Behaviour) => b.kind === "alie" || b.kind === "ipm" || b.kind === "free-ride";

/** Runs the simulation; throws the rule's errors (e.g. BreakdownConditionError) when the rule cannot run at this n and f. */
export async function simulate(s: SimulationSettings): Promise<SimulationResult> {
  check(s);
  const shapes = modelShapes(s.spec);
  const addresses = Array.from({ length: s.clients }, (_, i) => simulatedAddress(i));
  const bad = maliciousCount(s.clients, s.maliciousFraction);
  const isMalicious = (i: number) => i >= s.clients - bad;
  const { root, pool } = holdBackRoot(s.train, s.rootSize, s.seed);
  const shards = partition(pool.labels, s.clients, s.partition, s.seed).map((indices) => subset(pool, indices));
  let model = flatten(await genesisWeights(s.spec));
  let earlier: EarlierUpdate[] = [];
  const rounds: SimulatedRound[] = [];
  const links = s.encoding && addresses.map(() => new CompressedLink(s.encoding!.compression, shapes, modelSpecDigest(s.spec)));
  let final: SimulationResult["final"] | undefined;

  for (let r = 1; r <= s.rounds; r++) {
    const globalWeights = unflatten(model, shapes);
    const trainOptions = (data: Dataset, seed: number) => ({ spec: s.spec, globalWeights, data, epochs: s.epochs, batchSize: s.batchSize, learningRate: s.learningRate, optimizer: s.optimizer ?? "sgd", seed });
    const context = (i: number, honestUpdates?: readonly Tensor[][]) => ({ seed: deriveSeed(s.seed, "attack", r, i), honestUpdates, participants: s.clients, byzantine: bad });
    const honestTraining = (i: number) => trainAs({ kind: "honest" }, trainOptions(shards[i], deriveSeed(s.seed, "train", r, i)), context(i));
    const honestDelta = (i: number): Promise<TrainedUpdate> => (r === 1 && s.cache ? s.cache.get(s.cache.key(s, i), () => honestTraining(i)) : honestTraining(i));
    // What trainAs(behaviour) submits, with the training it shares with an honest client done once: label flip trains on poisoned data; the others craft from the honest delta or ignore it.
    const submit = async (i: number, b: Behaviour, honestUpdates: readonly Tensor[][]): Promise<TrainedUpdate> => {
      if (b.kind === "label-flip") return trainAs(b, trainOptions(shards[i], deriveSeed(s.seed, "train", r, i)), context(i, honestUpdates));
      const ownDelta = ignoresOwnDelta(b) ? zeroUpdate(shapes) : (await honestDelta(i)).update;
      return { update: craftUpdate(b, { ...context(i, honestUpdates), ownDelta }), numSamples: shards[i].n };
    };
    // Honest clients first: ALIE and IPM colluders are omniscient about this round's honest updates.
    const updates: TrainedUpdate[] = new Array(s.clients);
    for (let i = 0; i < s.clients; i++) if (!isMalicious(i)) updates[i] = await honestDelta(i);
    const honest = updates.filter(Boolean).map((u) => u.update);
    for (let i = 0; i < s.clients; i++) if (isMalicious(i)) updates[i] = await submit(i, s.attack, honest);

    const sent = links?.map((link, i) => link.send(updates[i].update, { participant: addresses[i], round: BigInt(r), numSamples: updates[i].numSamples }));
    const vectors = updates.map((u, i) => flatten(sent ? sent[i].update : u.update));
    const sizes = sent ? { updateBytes: sent.map((x) => x.bytes) } : {};
    const candidates: Candidate[] = addresses.map((address, i) => ({ address, submission: { status: "valid", vector: vectors[i], revealBlock: i } }));
    const base = `round-${r}`; // stands for the base model's digest: what the copy test compares
    const judgements = judge(candidates, earlier, s.policy ?? DEFAULT_POLICY, base, { options: s.options, taskId: 0n, round: BigInt(r) });
    const accepted = new Set(judgements.filter((j) => !s.usePolicy || j.verdict === "accepted").map((j) => j.address));
    const chosen = addresses.flatMap((address, i) => (accepted.has(address) ? [{ id: address.toLowerCase(), numSamples: updates[i].numSamples, vector: vectors[i] }] : []));
    // FLTrust's server update: the same local training on the root set, from the same global model.
    const serverUpdate = s.rule === "fltrust" && root ? flatten((await trainAs({ kind: "honest" }, trainOptions(root, deriveSeed(s.seed, "root", r)), context(-1))).update) : undefined;
    const result = chosen.length > 0 ? aggregate(s.rule, chosen, s.ruleParams ?? {}, serverUpdate ? { serverUpdate } : {}) : undefined;
    model = addTo(model, result?.aggregate);

    if (s.evaluate !== "last" || r === s.rounds) {
      const evaluation = await evaluate(s.spec, unflatten(model, shapes), s.test);
      final = { accuracy: evaluation.accuracy, loss: evaluation.loss };
      rounds.push({ round: r, accuracy: evaluation.accuracy, loss: evaluation.loss, judgements, ...sizes });
    } else rounds.push({ round: r, judgements, ...sizes });
    earlier = addresses.map((participant, i) => ({ round: BigInt(r), participant, digest: `${participant}@${r}`, baseModelDigest: base, vector: vectors[i] }));
  }
  return { rounds, final: final!, malicious: addresses.filter((_, i) => isMalicious(i)), clientAddresses: addresses };
}

export interface SlashingCounts {
  readonly truePositives: number;
  readonly falsePositives: number;
  /** Malicious client-rounds. */
  readonly maliciousTotal: number;
  readonly honestSlashed: readonly string[];
}

/** Counts slashing verdicts (anything but accepted) against who was malicious, over all rounds. */
export function slashingCounts(result: SimulationResult): SlashingCounts {
  const bad = new Set(result.malicious);
  let tp = 0;
  let fp = 0;
  const honestSlashed = new Set<string>();
  for (const round of result.rounds) {
    for (const j of round.judgements) {
      if (j.verdict === "accepted") continue;
      if (bad.has(j.address)) tp++;
      else {
        fp++;
        honestSlashed.add(j.address);
      }
    }
  }
  return { truePositives: tp, falsePositives: fp, maliciousTotal: bad.size * result.rounds.length, honestSlashed: [...honestSlashed] };
}
