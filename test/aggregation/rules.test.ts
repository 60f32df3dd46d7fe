// Each rule against small cases computed by hand (the arithmetic is in the comments).
import { expect } from "chai";
import {
  bulyan,
  fedAvg,
  flTrust,
  geometricMedian,
  krum,
  median,
  multiKrum,
  normClipping,
  trimmedMean,
  type AggregationResult,
} from "../../lib/aggregation/index.js";
import { address, update } from "./fixtures.js";
import { expectClose } from "../helpers/close.js";

const values = (r: AggregationResult) => Array.from(r.aggregate);
const scores = (r: AggregationResult) => r.participants.map((p) => p.score);
const f32 = (xs: number[]) => xs.map(Math.fround);

describe("aggregation rules on hand-computed cases", () => {
  it("fedavg weights by samples: (1*[1,2] + 3*[3,6]) / 4 = [2.5, 5]", () => {
    const r = fedAvg([update(1, [3, 6], 3), update(0, [1, 2], 1)]);
    expect(values(r)).to.deep.equal([2.5, 5]);
    expect(r.participants.map((p) => p.id)).to.deep.equal([address(0), address(1)]);
    expect(r.participants.map((p) => p.weight)).to.deep.equal([0.25, 0.75]);
    // score = distance to the aggregate: |[1,2]-[2.5,5]| = sqrt(2.25 + 9), |[3,6]-[2.5,5]| = sqrt(0.25 + 1)
    expectClose(scores(r)[0], Math.sqrt(11.25), 1e-12);
    expectClose(scores(r)[1], Math.sqrt(1.25), 1e-12);
    expect(r.details.totalSamples).to.equal(4);
  });

  it("reports norm, distance and cosine against the aggregate", () => {
    const r = fedAvg([update(0, [3, 4]), update(1, [-3, -4]), update(2, [3, 4])]);
    // aggregate = [1, 4/3]; the second update points the other way
    const [a, b] = r.participants;
    expect(a.norm).to.equal(5);
    expectClose(a.cosine, 1, 1e-6);
    expectClose(b.cosine, -1, 1e-6);
    expectClose(b.distance, Math.hypot(4, 4 + 4 / 3), 1e-5);
  });

  it("median: middle value per coordinate, the mean of the two middle ones for even n", () => {
    const odd = median([update(0, [1, -7]), update(1, [5, 0]), update(2, [3, 100])]);
    expect(values(odd)).to.deep.equal([3, 0]);
    const even = median([update(0, [1, 2]), update(1, [4, 2]), update(2, [2, 2]), update(3, [100, 9])]);
    // coordinate 0: sorted 1 2 4 100 -> (2 + 4) / 2; coordinate 1: 2 2 2 9 -> 2
    expect(values(even)).to.deep.equal([3, 2]);
  });

  it("trimmed mean drops trim values at each end, counting ties at the cut correctly", () => {
    const r = trimmedMean([update(0, [1, 2]), update(1, [2, 2]), update(2, [3, 2]), update(3, [4, 5]), update(4, [100, 5])], { trim: 1 });
    // coordinate 0: drop 1 and 100 -> (2+3+4)/3 = 3; coordinate 1: 2 2 2 5 5 -> drop one 2 and one 5 -> (2+2+5)/3 = 3
    expect(values(r)).to.deep.equal([3, 3]);
    expect(r.details).to.include({ trim: 1, kept: 3 });
    // beta 0.2 of n = 5 is trim 1: the same result
    expect(values(trimmedMean([update(0, [1]), update(1, [2]), update(2, [3]), update(3, [4]), update(4, [100])], { beta: 0.2 }))).to.deep.equal([3]);
  });

  it("krum: scores are sums of squared distances to the n - f - 2 nearest; ties go to the smaller id", () => {
    const updates = [0, 1, 2, 3, 100].map((x, i) => update(i, [x]));
    const r = krum(updates, { f: 1 });
    // nearest 2: x=0 -> 1 + 4; x=1 -> 1 + 1; x=2 -> 1 + 1; x=3 -> 1 + 4; x=100 -> 97^2 + 98^2
    expect(scores(r)).to.deep.equal([5, 2, 2, 5, 19013]);
    expect(r.selected).to.deep.equal([address(1)]);
    expect(values(r)).to.deep.equal([1]);
  });

  it("multi-krum averages the m lowest scores (equal weights), ties to the smaller id", () => {
    const updates = [0, 1, 2, 3, 100].map((x, i) => update(i, [x], 1 + 10 * i));
    const r = multiKrum(updates, { f: 1, m: 3 });
    // 1 and 2 score 2; 0 and 3 tie at 5 -> 0 is kept; mean of 0, 1, 2 is 1 whatever the sample counts
    expect(r.selected).to.deep.equal([address(0), address(1), address(2)]);
    expect(values(r)).to.deep.equal([1]);
    expect(multiKrum(updates, { f: 1 }).selected).to.have.length(4); // default m = n - f
  });

  it("bulyan: n - 2f picked by repeated Krum, then the beta values closest to the median", () => {
    // f = 1, n = 7: theta = 5, beta = 3. Round by round (nearest = max(1, remaining - 3)):
    // pick x=2 (score 1+1+4+4=10), then x=1 (ties x=3 at 14, smaller id), x=3 (10), x=0 (ties x=4 at 16), x=4 (ties 1000 at 996^2).
    const updates = [0, 1, 2, 3, 4, 1000, -1000].map((x, i) => update(i, [x, 2 * x]));
    const r = bulyan(updates, { f: 1 });
    expect(r.selected).to.deep.equal([0, 1, 2, 3, 4].map(address));
    // per coordinate: the 3 closest to the median of {0..4} are 1, 2, 3 -> 2; second coordinate 2, 4, 6 -> 4
    expect(values(r)).to.deep.equal([2, 4]);
    expect(r.details).to.include({ theta: 5, beta: 3 });
    // scores are Krum scores in the full set (nearest 4): x=2 -> 1+1+4+4
    expect(scores(r)[2]).to.equal(5 * 10);
  });

  it("geometric median of collinear points is their 1-D median, of a square's corners its centre", () => {
    const line = geometricMedian([update(0, [0]), update(1, [1]), update(2, [10])], { maxIterations: 2000, tolerance: 1e-12, nu: 1e-9 });
    expectClose(values(line)[0], 1, 1e-3);
    expect(line.details.iterations).to.be.greaterThan(1);
    const square = geometricMedian([update(0, [0, 0]), update(1, [2, 0]), update(2, [0, 2]), update(3, [2, 2])]);
    expect(values(square)).to.deep.equal([1, 1]);
  });

  it("norm clipping: clip to the median norm, then the sample-weighted mean", () => {
    // norms 5, 1, 10 -> median 5: [6,8] becomes [3,4]; mean of [3,4], [0,1], [3,4] = [2, 3]
    const r = normClipping([update(0, [3, 4]), update(1, [0, 1]), update(2, [6, 8])]);
    expect(values(r)).to.deep.equal([2, 3]);
    expect(scores(r)).to.deep.equal([1, 0.2, 2]);
    expect(r.participants.map((p) => p.clipFactor)).to.deep.equal([1, 1, 0.5]);
    expect(r.details).to.include({ clipBound: 5, clipped: 1 });
    const fixed = normClipping([update(0, [3, 4]), update(1, [0, 1])], { bound: 1 });
    expect(values(fixed)).to.deep.equal(f32([(0.6 + 0) / 2, (0.8 + 1) / 2]));
  });

  it("fltrust: trust = ReLU(cosine to the server update), magnitudes set to the server norm", () => {
    const server = Float32Array.of(1, 0);
    const r = flTrust([update(0, [2, 0]), update(1, [0, 3]), update(2, [-1, 0]), update(3, [1, 1])], { serverUpdate: server });
    // trust 1, 0, 0, 1/sqrt2; rescaled [1,0] and [1/sqrt2, 1/sqrt2]: ([1,0] + [1/2, 1/2]) / (1 + 1/sqrt2)
    const t = 1 / Math.SQRT2;
    expect(values(r)).to.deep.equal(f32([1.5 / (1 + t), 0.5 / (1 + t)]));
    expect(scores(r)[0]).to.equal(0);
    expect(scores(r)[1]).to.equal(1);
    expect(scores(r)[2]).to.equal(1);
    expectClose(scores(r)[3], 1 - t, 1e-12);
    expect(r.selected).to.deep.equal([address(0), address(3)]);
  });

  it("fltrust with no trusted update leaves the model where it is", () => {
    const r = flTrust([update(0, [-1, 0]), update(1, [0, 0])], { serverUpdate: Float32Array.of(1, 0) });
    expect(values(r)).to.deep.equal([0, 0]);
    expect(r.details.noTrust).to.equal(true);
  });

  it("clipping works as a pre-step for any rule and is reported per participant", () => {
    const updates = [update(0, [3, 4]), update(1, [0, 1]), update(2, [60, 80])];
    const r = median(updates, { clip: 1 });
    // clipped to norm 1: [0.6,0.8], [0,1], [0.6,0.8] -> median [0.6, 0.8]
    expect(values(r)).to.deep.equal(f32([0.6, 0.8]));
    expect(r.participants.map((p) => p.clipFactor)).to.deep.equal([0.2, 1, 0.01]);
    expect(r.participants[2].norm).to.equal(100); // evidence is about the update as submitted
    expect(r.details.clipBound).to.equal(1);
  });
});
