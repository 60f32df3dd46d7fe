// Robustness properties, breakdown refusals, hostile inputs and the promise never to mutate
// what the caller passed in.
import { expect } from "chai";
import {
  AggregationInputError,
  BreakdownConditionError,
  bulyan,
  clipRows,
  fedAvg,
  geometricMedian,
  krum,
  median,
  multiKrum,
  normClipping,
  prepare,
  RuleParameterError,
  rules,
  trimmedMean,
  type Update,
} from "../../lib/aggregation/index.js";
import { AnchorFLError } from "../../lib/errors.js";
import { copyOf, fixtureParams, fixtureUpdates, honestUpdates, serverUpdateFor, update } from "./fixtures.js";
import { aggregate } from "../../lib/aggregation/index.js";

const D = 200;

const ATTACKER_SAMPLES = 1_000_000;

/**
 * Honest updates 0..h-1 plus f attackers (claiming ATTACKER_SAMPLES samples) whose every value
 * is `value` (colluding copies), or value + j for attacker j when `distinct`.
 */
function withAttackers(h: number, f: number, value: number, distinct = false): { all: Update[]; honest: Update[] } {
  const honest = honestUpdates(h, D, 1);
  const attackers = Array.from({ length: f }, (_, j) => update(1000 + j, new Float32Array(D).fill(distinct ? value + j : value), ATTACKER_SAMPLES));
  return { all: [...attackers, ...honest], honest };
}

function coordinateRange(updates: readonly Update[]): { lo: Float32Array; hi: Float32Array } {
  const lo = new Float32Array(D).fill(Infinity);
  const hi = new Float32Array(D).fill(-Infinity);
  for (const u of updates) {
    u.vector.forEach((x, k) => {
      lo[k] = Math.min(lo[k], x);
      hi[k] = Math.max(hi[k], x);
    });
  }
  return { lo, hi };
}

function expectWithinHonestRange(aggregate: Float32Array, honest: readonly Update[]): void {
  const { lo, hi } = coordinateRange(honest);
  aggregate.forEach((x, k) => expect(x >= lo[k] && x <= hi[k], `coordinate ${k}: ${x} outside [${lo[k]}, ${hi[k]}]`).to.equal(true));
}

function expectBreakdown(run: () => unknown, ...fragments: string[]): void {
  expect(run).to.throw(BreakdownConditionError).that.satisfies((e: Error) => fragments.every((s) => e.message.includes(s)));
}

describe("aggregation robustness", () => {
  it("the median ignores f < n/2 arbitrary updates", () => {
    for (const value of [1e30, -1e30]) {
      const { all, honest } = withAttackers(6, 5, value);
      expectWithinHonestRange(median(all, { f: 5 }).aggregate, honest);
    }
  });

  it("fedavg does not (the baseline the robust rules are measured against)", () => {
    const { all, honest } = withAttackers(6, 1, 1e6);
    const { hi } = coordinateRange(honest);
    expect(fedAvg(all).aggregate[0]).to.be.greaterThan(hi[0] * 100);
  });

  it("the trimmed mean ignores up to trim arbitrary updates on either side", () => {
    const big = withAttackers(8, 2, 1e20);
    expectWithinHonestRange(trimmedMean(big.all, { trim: 2 }).aggregate, big.honest);
    const mixed = [...honestUpdates(8, D, 3), update(900, new Float32Array(D).fill(1e20)), update(901, new Float32Array(D).fill(-1e20))];
    expectWithinHonestRange(trimmedMean(mixed, { trim: 1 }).aggregate, mixed.slice(0, 8));
  });

  it("krum and multi-krum pick honest updates when n >= 2f + 3, even against colluding copies", () => {
    for (const f of [1, 2, 4]) {
      const { all } = withAttackers(f + 3, f, 50);
      const honestIds = new Set(all.filter((u) => u.numSamples !== ATTACKER_SAMPLES).map((u) => u.id));
      const k = krum(all, { f });
      expect(honestIds.has(k.selected[0]), `f = ${f}: picked ${k.selected[0]}`).to.equal(true);
      const mk = multiKrum(all, { f, m: 3 });
      expect(mk.selected.every((id) => honestIds.has(id))).to.equal(true);
      // attackers have the highest scores
      const attackerScores = mk.participants.filter((p) => !honestIds.has(p.id)).map((p) => p.score);
      const honestScores = mk.participants.filter((p) => honestIds.has(p.id)).map((p) => p.score);
      expect(Math.min(...attackerScores)).to.be.greaterThan(Math.max(...honestScores));
    }
  });

  it("bulyan stays within the honest range when n >= 4f + 3", () => {
    const distinct = withAttackers(9, 2, 1e6, true);
    const r = bulyan(distinct.all, { f: 2 });
    expectWithinHonestRange(r.aggregate, distinct.honest);
    expect(r.participants.filter((p) => p.numSamples === ATTACKER_SAMPLES).every((p) => !p.selected)).to.equal(true);
    // Colluding copies score 0 against each other once only 5 remain (1 nearest neighbour) and get
    // picked late, but the closest-to-median step still keeps them out of the aggregate.
    const copies = withAttackers(9, 2, 1e6);
    expectWithinHonestRange(bulyan(copies.all, { f: 2 }).aggregate, copies.honest);
  });

  it("the geometric median resists one far outlier", () => {
    const honest = honestUpdates(9, D, 5);
    const clean = geometricMedian(honest).aggregate;
    const attacked = geometricMedian([...honest, update(999, new Float32Array(D).fill(1e6))]).aggregate;
    const shift = Math.sqrt(clean.reduce((s, x, k) => s + (x - attacked[k]) ** 2, 0));
    const spread = Math.sqrt(honest[0].vector.reduce((s, x, k) => s + (x - clean[k]) ** 2, 0));
    expect(shift).to.be.lessThan(spread);
  });

  it("clipping bounds every update's norm, and so the clipped mean's", () => {
    const updates = [...honestUpdates(5, D, 9), update(77, new Float32Array(D).fill(1000))];
    const input = prepare(updates);
    for (const bound of [0.5, "median" as const]) {
      const clipped = clipRows(input, bound);
      for (const row of clipped.rows) {
        expect(Math.hypot(...row)).to.be.at.most(clipped.bound * (1 + 1e-6));
      }
      const r = normClipping(updates, { bound });
      expect(Math.hypot(...r.aggregate)).to.be.at.most(clipped.bound * (1 + 1e-6));
    }
  });
});

describe("aggregation refusals", () => {
  const five = honestUpdates(5, 4, 2);

  it("each rule refuses n and f outside its breakdown condition, naming n, f and the condition", () => {
    expectBreakdown(() => krum(honestUpdates(4, 4, 2), { f: 1 }), "krum", "n >= 2f + 3", "n = 4", "f = 1");
    expectBreakdown(() => multiKrum(honestUpdates(6, 4, 2), { f: 2 }), "multi-krum", "n >= 2f + 3", "n = 6", "f = 2");
    expectBreakdown(() => multiKrum(five, { f: 1, m: 5 }), "m <= n - f", "m = 5");
    expectBreakdown(() => bulyan(honestUpdates(6, 4, 2), { f: 1 }), "bulyan", "n >= 4f + 3", "n = 6", "f = 1");
    expectBreakdown(() => median(honestUpdates(6, 4, 2), { f: 3 }), "median", "f < n/2", "n = 6", "f = 3");
    expectBreakdown(() => trimmedMean(honestUpdates(4, 4, 2), { trim: 2 }), "trimmed-mean", "2 * trim < n", "n = 4", "trim = 2");
    expectBreakdown(() => geometricMedian(honestUpdates(4, 4, 2), { f: 2 }), "geometric-median", "f < n/2");
    // the edges are accepted
    expect(() => krum(honestUpdates(5, 4, 2), { f: 1 })).not.to.throw();
    expect(() => bulyan(honestUpdates(7, 4, 2), { f: 1 })).not.to.throw();
  });

  it("refuses malformed parameters with a typed error", () => {
    expect(() => krum(five, { f: -1 })).to.throw(RuleParameterError, "f to be an integer >= 0");
    expect(() => krum(five, { f: 0.5 })).to.throw(RuleParameterError);
    expect(() => trimmedMean(five, { trim: 1, beta: 0.2 })).to.throw(RuleParameterError, "either trim or beta");
    expect(() => trimmedMean(five, { beta: 0.5 })).to.throw(RuleParameterError, "beta in [0, 0.5)");
    expect(() => fedAvg(five, { clip: -1 })).to.throw(RuleParameterError, "positive finite L2 bound");
    expect(() => geometricMedian(five, { nu: 0 })).to.throw(RuleParameterError, "nu");
  });

  it("refuses hostile update sets with a typed error naming the problem", () => {
    const good = honestUpdates(3, 4, 1);
    const cases: [Update[], string][] = [
      [[], "at least one update"],
      [[good[0], { ...good[1], id: good[0].id }], "one update per participant"],
      [[good[0], { ...good[1], id: "0xABC" }], "lowercase participant id"],
      [[good[0], { ...good[1], id: "" }], "non-empty"],
      [[good[0], update(5, [1, 2, 3])], "expected 4 values"],
      [[good[0], update(5, [1, NaN, 3, 4])], "expected finite values, found NaN at index 1"],
      [[good[0], update(5, [1, 2, Infinity, 4])], "found Infinity at index 2"],
      [[good[0], update(5, [1, 2, 3, 4], 0)], "numSamples to be a positive integer"],
      [[good[0], update(5, [1, 2, 3, 4], 2.5)], "numSamples"],
      [[good[0], { ...good[1], vector: [1, 2, 3, 4] as unknown as Float32Array }], "expected a Float32Array vector, found Array"],
    ];
    for (const [updates, message] of cases) {
      for (const name of Object.keys(rules)) {
        expect(() => aggregate(name, updates, fixtureParams[name], { serverUpdate: new Float32Array(4).fill(1) }), `${name}: ${message}`)
          .to.throw(AggregationInputError, message)
          .that.is.instanceOf(AnchorFLError);
      }
    }
  });
});

describe("aggregation never mutates its inputs", () => {
  it("leaves every vector and the caller's array exactly as they were, for every rule", () => {
    const updates = fixtureUpdates().reverse();
    const before = copyOf(updates);
    const ids = updates.map((u) => u.id);
    const serverUpdate = serverUpdateFor(updates[0].vector.length);
    const serverBefore = serverUpdate.slice();
    for (const name of Object.keys(rules)) {
      for (const params of [fixtureParams[name], { ...fixtureParams[name], clip: "median" }]) {
        aggregate(name, updates, name === "norm-clipping" ? {} : params, { serverUpdate });
        expect(updates.map((u) => u.id), name).to.deep.equal(ids);
        updates.forEach((u, i) => expect(Buffer.compare(Buffer.from(u.vector.buffer), Buffer.from(before[i].vector.buffer)), `${name} ${u.id}`).to.equal(0));
        expect(serverUpdate).to.deep.equal(serverBefore);
      }
    }
  });
});
