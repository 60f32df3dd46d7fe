// Partitioners: how a pool of labelled examples is divided among simulated clients. Pure
// functions over a label array, deterministic for a seed, returning each client's indices
// (sorted ascending, so the result does not depend on the order shards were dealt). No
// index is given to two clients; the held-out test split never enters here.
import { AnchorFLError } from "../../lib/errors.js";
import { Random } from "../../lib/random.js";
import { subset, type Dataset } from "./dataset.js";

export class PartitionError extends AnchorFLError {}

export type Partition = number[][];

export type PartitionSpec =
  | { readonly kind: "iid" }
  | { readonly kind: "dirichlet"; readonly alpha: number; readonly minPerClient?: number }
  | { readonly kind: "shards"; readonly classesPerClient: number }
  | { readonly kind: "quantity"; readonly alpha: number; readonly minPerClient?: number };

function checkClients(labels: ArrayLike<number>, clients: number): void {
  if (!Number.isInteger(clients) || clients <= 0) {
    throw new PartitionError(`clients must be a positive integer, found ${clients}`, { details: { clients } });
  }
  if (labels.length < clients) {
    throw new PartitionError(`cannot give each of ${clients} clients an example: only ${labels.length} examples`, {
      details: { clients, examples: labels.length },
    });
  }
}

function checkPositive(name: string, value: number): void {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new PartitionError(`${name} must be a positive finite number, found ${value}`, { details: { [name]: value } });
  }
}

function indicesByClass(labels: ArrayLike<number>): Map<number, number[]> {
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const list = byClass.get(labels[i]);
    if (list) list.push(i);
    else byClass.set(labels[i], [i]);
  }
  return new Map([...byClass.entries()].sort((a, b) => a[0] - b[0]));
}

/** Splits `items` into consecutive runs of the given sizes (which must sum to items.length). */
function cut(items: readonly number[], sizes: readonly number[]): number[][] {
  let at = 0;
  return sizes.map((s) => items.slice(at, (at += s)));
}

/** Integer sizes proportional to `shares` summing exactly to `total` (largest remainder method). */
function proportionalSizes(shares: readonly number[], total: number): number[] {
  const exact = shares.map((p) => p * total);
  const sizes = exact.map(Math.floor);
  const order = exact.map((x, i) => [x - Math.floor(x), i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const missing = total - sizes.reduce((a, b) => a + b, 0);
  for (let k = 0; k < missing; k++) sizes[order[k][1]]++;
  return sizes;
}

const sorted = (p: Partition): Partition => p.map((idx) => idx.sort((a, b) => a - b));

/** IID: a seeded shuffle cut into near-equal parts (sizes differ by at most one). */
export function iidPartition(labels: ArrayLike<number>, clients: number, seed: number): Partition {
  checkClients(labels, clients);
  const order = new Random(seed, "iid").permutation(labels.length);
  const sizes = Array.from({ length: clients }, (_, c) => Math.floor(labels.length / clients) + (c < labels.length % clients ? 1 : 0));
  return sorted(cut(order, sizes));
}

/**
 * Label skew (Hsu et al. 2019): for each class, client shares are drawn from
 * Dirichlet(alpha) and the class's examples are dealt in those proportions. Small alpha
 * gives each client few classes; large alpha approaches IID. Draws are repeated (with
 * derived seeds) until every client holds at least `minPerClient` examples.
 */
export function dirichletPartition(labels: ArrayLike<number>, clients: number, alpha: number, seed: number, minPerClient = 1): Partition {
  checkClients(labels, clients);
  checkPositive("alpha", alpha);
  if (minPerClient * clients > labels.length) {
    throw new PartitionError(`minPerClient ${minPerClient} × ${clients} clients exceeds the ${labels.length} examples`);
  }
  const byClass = indicesByClass(labels);
  const attempts = 1000;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const rng = new Random(seed, "dirichlet", attempt);
    const parts: Partition = Array.from({ length: clients }, () => []);
    for (const members of byClass.values()) {
      const shuffled = rng.shuffle(members);
      cut(shuffled, proportionalSizes(rng.dirichlet(alpha, clients), shuffled.length)).forEach((chunk, c) => parts[c].push(...chunk));
    }
    if (parts.every((p) => p.length >= minPerClient)) return sorted(parts);
  }
  throw new PartitionError(`no Dirichlet(${alpha}) draw in ${attempts} attempts gave every one of ${clients} clients at least ${minPerClient} examples`, {
    hint: "raise alpha, lower minPerClient or use fewer clients",
  });
}

/**
 * Pathological non-IID (McMahan et al. 2017, made exact): every client holds exactly
 * `classesPerClient` distinct classes. Clients take consecutive runs of a seeded class
 * permutation (cyclically), so classes are spread as evenly as possible, and each class's
 * examples are shared evenly among the clients holding it.
 */
export function shardPartition(labels: ArrayLike<number>, clients: number, classesPerClient: number, seed: number): Partition {
  checkClients(labels, clients);
  const byClass = indicesByClass(labels);
  const classes = [...byClass.keys()];
  if (!Number.isInteger(classesPerClient) || classesPerClient <= 0 || classesPerClient > classes.length) {
    throw new PartitionError(`classesPerClient must be an integer in 1..${classes.length} (the classes present), found ${classesPerClient}`, {
      details: { classesPerClient, classes: classes.length },
    });
  }
  const rng = new Random(seed, "shards");
  const perm = rng.shuffle(classes);
  const holders = new Map<number, number[]>(classes.map((c) => [c, []]));
  for (let client = 0; client < clients; client++) {
    for (let j = 0; j < classesPerClient; j++) holders.get(perm[(client * classesPerClient + j) % perm.length])!.push(client);
  }
  const parts: Partition = Array.from({ length: clients }, () => []);
  for (const [cls, members] of byClass) {
    const owners = holders.get(cls)!;
    if (owners.length === 0) continue;
    if (members.length < owners.length) {
      throw new PartitionError(`class ${cls} has ${members.length} examples but ${owners.length} clients must hold it`, {
        hint: "use fewer clients or fewer classes per client",
      });
    }
    const sizes = proportionalSizes(owners.map(() => 1 / owners.length), members.length);
    cut(rng.shuffle(members), sizes).forEach((chunk, k) => parts[owners[k]].push(...chunk));
  }
  return sorted(parts);
}

/**
 * Quantity skew: labels stay IID but client sizes follow Dirichlet(alpha) shares
 * (small alpha = very unequal sizes), each client getting at least `minPerClient`.
 */
export function quantitySkewPartition(labels: ArrayLike<number>, clients: number, alpha: number, seed: number, minPerClient = 1): Partition {
  checkClients(labels, clients);
  checkPositive("alpha", alpha);
  if (minPerClient * clients > labels.length) {
    throw new PartitionError(`minPerClient ${minPerClient} × ${clients} clients exceeds the ${labels.length} examples`);
  }
  const rng = new Random(seed, "quantity");
  const order = rng.permutation(labels.length);
  const spare = labels.length - minPerClient * clients;
  const sizes = proportionalSizes(rng.dirichlet(alpha, clients), spare).map((s) => s + minPerClient);
  return sorted(cut(order, sizes));
}

/** Runs the partitioner a spec names. */
export function partition(labels: ArrayLike<number>, clients: number, spec: PartitionSpec, seed: number): Partition {
  switch (spec.kind) {
    case "iid":
      return iidPartition(labels, clients, seed);
    case "dirichlet":
      return dirichletPartition(labels, clients, spec.alpha, seed, spec.minPerClient);
    case "shards":
      return shardPartition(labels, clients, spec.classesPerClient, seed);
    case "quantity":
      return quantitySkewPartition(labels, clients, spec.alpha, seed, spec.minPerClient);
  }
}

/** Parses "iid", "dirichlet:0.5", "shards:2" or "quantity:1" (the CLI form). */
export function parsePartitionSpec(text: string): PartitionSpec {
  const [kind, arg, ...rest] = text.split(":");
  const value = Number(arg);
  const needsArg = kind === "dirichlet" || kind === "shards" || kind === "quantity";
  if (rest.length > 0 || (needsArg ? arg === undefined || !Number.isFinite(value) : arg !== undefined)) {
    throw new PartitionError(`expected "iid", "dirichlet:ALPHA", "shards:K" or "quantity:ALPHA", found "${text}"`);
  }
  switch (kind) {
    case "iid":
      return { kind };
    case "dirichlet":
    case "quantity":
      checkPositive("alpha", value);
      return { kind, alpha: value };
    case "shards":
      return { kind, classesPerClient: value };
    default:
      throw new PartitionError(`expected "iid", "dirichlet:ALPHA", "shards:K" or "quantity:ALPHA", found "${text}"`);
  }
}

/** The examples client `client` (0-based) of `clients` holds when `pool` is divided by `spec` with `seed`. */
export function clientShard(pool: Dataset, spec: PartitionSpec, clients: number, client: number, seed: number): Dataset {
  if (!Number.isInteger(client) || client < 0 || client >= clients) {
    throw new PartitionError(`client must be an integer in 0..${clients - 1}, found ${client}`, { details: { client, clients } });
  }
  return subset(pool, partition(pool.labels, clients, spec, seed)[client]);
}
