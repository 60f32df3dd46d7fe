// An in-memory federated simulation: R rounds of N clients, no chain and no store, because
// anchoring changes nothing about accuracy. Every learning step is the real one: the real
// partitioners, trainAs (honest training and every Byzantine behaviour), the policy's judge
// on every round, the registry's robust rules, and evaluate on the held-out digits. The
// global model moves exactly as in aggregateRound: base + aggregate, float32.
import { getAddress } from "ethers";
import type { Behaviour } from "../../client/attacks/behaviours.js";
import { trainAs } from "../../client/attacks/train-as.js";
import { subset, type Dataset } from "../../client/data/dataset.js";
import { partition, type PartitionSpec } from "../../client/data/partition.js";
import { genesisWeights } from "../../client/model/build.js";
import { modelShapes, type ModelSpec } from "../../client/model/spec.js";
import { evaluate, type OptimizerName } from "../../client/train/train.js";
import { aggregate, type RawParams } from "../aggregation/index.js";
import { DEFAULT_POLICY, judge, type Candidate, type EarlierUpdate, type Judgement, type PolicyParams } from "../aggregator/policy.js";
import { AnchorFLError } from "../errors.js";
import type { TaskOptions } from "../protocol/options.js";
import { deriveSeed } from "../random.js";
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
}

export interface SimulatedRound {
  readonly round: number;
  readonly accuracy: number;
  readonly loss: number;
  /** Canonical (address) order, as the policy returns them. */
  readonly judgements: readonly Judgement[];
}

export interface SimulationResult {
  readonly rounds: readonly SimulatedRound[];
  /** Checksummed addresses of the malicious clients. */
  readonly malicious: readonly string[];
  readonly clientAddresses: readonly string[];
}

/** A stable, readable stand-in address per client: 0x…01, 0x…02, … */
export function simulatedAddress(client: number): string {
  return getAddress(`0x${(client + 1).toString(16).padStart(40, "0")}`);
}

/** How many of `clients` are malicious at `fraction` (rounded to the nearest client). */
export function maliciousCount(clients: number, fraction: number): number {
  return Math.round(clients * fraction);
}

function check(s: SimulationSettings): void {
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0) throw new SimulationSettingsError(`${name} must be a positive integer, found ${v}`);
  };
  positiveInt("clients", s.clients);
  positiveInt("rounds", s.rounds);
  if (!(s.maliciousFraction >= 0 && s.maliciousFraction < 1)) throw new SimulationSettingsError(`maliciousFraction must be in [0, 1), found ${s.maliciousFraction}`);
  if (s.train.n < s.clients) throw new SimulationSettingsError(`${s.clients} clients need at least as many training digits, found ${s.train.n}`);
}

const addTo = (base: Float32Array, delta: Float32Array | undefined) => {
  const next = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) next[i] = base[i] + (delta ? delta[i] : 0);
  return next;
};

/** Runs the simulation; throws the rule's errors (e.g. BreakdownConditionError) when the rule cannot run at this n and f. */
export async function simulate(s: SimulationSettings): Promise<SimulationResult> {
  check(s);
  const shapes = modelShapes(s.spec);
  const addresses = Array.from({ length: s.clients }, (_, i) => simulatedAddress(i));
  const bad = maliciousCount(s.clients, s.maliciousFraction);
  const isMalicious = (i: number) => i >= s.clients - bad;
  const shards = partition(s.train.labels, s.clients, s.partition, s.seed).map((indices) => subset(s.train, indices));
  let model = flatten(await genesisWeights(s.spec));
  let earlier: EarlierUpdate[] = [];
  const rounds: SimulatedRound[] = [];

  for (let r = 1; r <= s.rounds; r++) {
    const globalWeights = unflatten(model, shapes);
    const train = (i: number, behaviour: Behaviour, honestUpdates?: readonly Tensor[][]) =>
      trainAs(
        behaviour,
        { spec: s.spec, globalWeights, data: shards[i], epochs: s.epochs, batchSize: s.batchSize, learningRate: s.learningRate, optimizer: s.optimizer ?? "sgd", seed: deriveSeed(s.seed, "train", r, i) },
        { seed: deriveSeed(s.seed, "attack", r, i), honestUpdates, participants: s.clients, byzantine: bad },
      );
    // Honest clients first: ALIE and IPM colluders are omniscient about this round's honest updates.
    const updates: { update: Tensor[]; numSamples: number }[] = new Array(s.clients);
    for (let i = 0; i < s.clients; i++) if (!isMalicious(i)) updates[i] = await train(i, { kind: "honest" });
    const honest = updates.filter(Boolean).map((u) => u.update);
    for (let i = 0; i < s.clients; i++) if (isMalicious(i)) updates[i] = await train(i, s.attack, honest);

    const vectors = updates.map((u) => flatten(u.update));
    const candidates: Candidate[] = addresses.map((address, i) => ({ address, submission: { status: "valid", vector: vectors[i], revealBlock: i } }));
    const base = `round-${r}`; // stands for the base model's digest: what the copy test compares
    const judgements = judge(candidates, earlier, s.policy ?? DEFAULT_POLICY, base, { options: s.options, taskId: 0n, round: BigInt(r) });
    const accepted = new Set(judgements.filter((j) => !s.usePolicy || j.verdict === "accepted").map((j) => j.address));
    const chosen = addresses.flatMap((address, i) => (accepted.has(address) ? [{ id: address.toLowerCase(), numSamples: updates[i].numSamples, vector: vectors[i] }] : []));
    const result = chosen.length > 0 ? aggregate(s.rule, chosen, s.ruleParams ?? {}) : undefined;
    model = addTo(model, result?.aggregate);

    const evaluation = await evaluate(s.spec, unflatten(model, shapes), s.test);
    rounds.push({ round: r, accuracy: evaluation.accuracy, loss: evaluation.loss, judgements });
    earlier = addresses.map((participant, i) => ({ round: BigInt(r), participant, digest: `${participant}@${r}`, baseModelDigest: base, vector: vectors[i] }));
  }
  return { rounds, malicious: addresses.filter((_, i) => isMalicious(i)), clientAddresses: addresses };
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
