import { expect } from "chai";
import { classCounts } from "../../client/data/dataset.js";
import { loadMnist } from "../../client/data/mnist.js";
import {
  clientShard,
  dirichletPartition,
  iidPartition,
  parsePartitionSpec,
  partition,
  PartitionError,
  quantitySkewPartition,
  shardPartition,
  type Partition,
} from "../../client/data/partition.js";
import { expectClose } from "../helpers/close.js";

/** Every index at most once, all within range. */
function expectDisjoint(p: Partition, n: number): void {
  const seen = new Uint8Array(n);
  for (const part of p) {
    for (const i of part) {
      expect(i).to.be.within(0, n - 1);
      expect(seen[i], `index ${i} given twice`).to.equal(0);
      seen[i] = 1;
    }
  }
}

const clientCounts = (labels: Uint8Array, part: number[]) => classCounts(part.map((i) => labels[i]), 10);

/** Mean over clients of KL(client label distribution || global), in nats: 0 for IID. */
function meanKl(labels: Uint8Array, p: Partition): number {
  const global = classCounts(labels, 10).map((c) => c / labels.length);
  const kl = (part: number[]) =>
    clientCounts(labels, part).reduce((s, c, k) => (c === 0 ? s : s + (c / part.length) * Math.log(c / part.length / global[k])), 0);
  return p.reduce((s, part) => s + kl(part), 0) / p.length;
}

describe("partitioners", () => {
  let labels: Uint8Array;
  let pool: Awaited<ReturnType<typeof loadMnist>>["train"];
  before(async () => {
    pool = (await loadMnist()).train;
    labels = pool.labels;
  });

  it("IID: near-equal sizes, every class in every client within tolerance, all indices used once", () => {
    const p = iidPartition(labels, 10, 1);
    expectDisjoint(p, labels.length);
    expect(p.flat().length).to.equal(labels.length);
    for (const part of p) {
      expect(part.length).to.be.within(899, 901);
      const global = classCounts(labels, 10);
      clientCounts(labels, part).forEach((c, k) => expectClose(c / part.length, global[k] / labels.length, 0.035));
    }
  });

  it("is deterministic for a seed and different for another seed", () => {
    for (const make of [
      (s: number) => iidPartition(labels, 5, s),
      (s: number) => dirichletPartition(labels, 5, 0.5, s),
      (s: number) => shardPartition(labels, 5, 2, s),
      (s: number) => quantitySkewPartition(labels, 5, 1, s),
    ]) {
      expect(make(3)).to.deep.equal(make(3));
      expect(make(3)).not.to.deep.equal(make(4));
    }
  });

  it("Dirichlet: small alpha is far more skewed than large alpha (mean KL to the global label mix)", () => {
    const skewed = dirichletPartition(labels, 10, 0.1, 2);
    const mild = dirichletPartition(labels, 10, 100, 2);
    expectDisjoint(skewed, labels.length);
    expect(skewed.flat().length).to.equal(labels.length);
    expect(meanKl(labels, mild)).to.be.below(0.02);
    expect(meanKl(labels, skewed)).to.be.above(0.8);
    // with alpha 0.1 a typical client lacks several classes outright
    const missing = skewed.map((part) => clientCounts(labels, part).filter((c) => c === 0).length);
    expect(missing.reduce((a, b) => a + b, 0) / missing.length).to.be.above(2);
    for (const part of skewed) expect(part.length).to.be.at.least(1);
  });

  it("shards: every client holds exactly k classes, classes shared evenly", () => {
    for (const [clients, k] of [[10, 2], [7, 3], [20, 1]]) {
      const p = shardPartition(labels, clients, k, 5);
      expectDisjoint(p, labels.length);
      for (const part of p) expect(clientCounts(labels, part).filter((c) => c > 0).length).to.equal(k);
      // clients sharing a class split it evenly (sizes differ by at most one)
      const holders = Array.from({ length: 10 }, (_, cls) => p.map((part) => clientCounts(labels, part)[cls]).filter((c) => c > 0));
      for (const h of holders) if (h.length > 0) expect(Math.max(...h) - Math.min(...h)).to.be.at.most(1);
    }
    expect(() => shardPartition(labels, 4, 11, 1)).to.throw(PartitionError, "classesPerClient must be an integer in 1..10");
  });

  it("quantity skew: unequal sizes, IID labels, nobody below the minimum", () => {
    const p = quantitySkewPartition(labels, 10, 0.5, 7, 20);
    expectDisjoint(p, labels.length);
    expect(p.flat().length).to.equal(labels.length);
    const sizes = p.map((part) => part.length);
    expect(Math.min(...sizes)).to.be.at.least(20);
    expect(Math.max(...sizes) / Math.min(...sizes)).to.be.above(5);
    const biggest = p[sizes.indexOf(Math.max(...sizes))];
    expect(meanKl(labels, [biggest])).to.be.below(0.02);
  });

  it("hands one client its shard of the pool", () => {
    const spec = { kind: "shards", classesPerClient: 2 } as const;
    const shard = clientShard(pool, spec, 5, 3, 9);
    const indices = shardPartition(labels, 5, 2, 9)[3];
    expect(shard.n).to.equal(indices.length);
    expect(Array.from(shard.labels)).to.deep.equal(indices.map((i) => labels[i]));
    expect(shard.images.subarray(0, 784)).to.deep.equal(pool.images.subarray(indices[0] * 784, indices[0] * 784 + 784));
    expect(() => clientShard(pool, spec, 5, 5, 9)).to.throw(PartitionError, "client must be an integer in 0..4, found 5");
  });

  it("parses the CLI forms and refuses bad arguments with typed errors", () => {
    expect(parsePartitionSpec("iid")).to.deep.equal({ kind: "iid" });
    expect(parsePartitionSpec("dirichlet:0.3")).to.deep.equal({ kind: "dirichlet", alpha: 0.3 });
    expect(parsePartitionSpec("shards:2")).to.deep.equal({ kind: "shards", classesPerClient: 2 });
    expect(partition(labels, 3, parsePartitionSpec("quantity:2"), 1)).to.deep.equal(quantitySkewPartition(labels, 3, 2, 1));
    expect(() => parsePartitionSpec("dirichlet")).to.throw(PartitionError, 'found "dirichlet"');
    expect(() => parsePartitionSpec("dirichlet:-1")).to.throw(PartitionError, "alpha must be a positive finite number");
    expect(() => parsePartitionSpec("iid:3")).to.throw(PartitionError);
    expect(() => iidPartition(labels.subarray(0, 3), 4, 1)).to.throw(PartitionError, "only 3 examples");
    expect(() => dirichletPartition(labels, 0, 1, 1)).to.throw(PartitionError, "clients must be a positive integer");
    expect(() => dirichletPartition(labels.subarray(0, 50), 10, 0.01, 1, 5)).to.throw(PartitionError, "no Dirichlet(0.01) draw");
  });
});
