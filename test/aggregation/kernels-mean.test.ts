// weightedMeanFloat32 (FedAvg's kernel: a compiled single pass for up to 16 rows, blocks beyond)
// must give toFloat32(weightedMean(...)) to the bit: the same additions in the same order.
import { expect } from "chai";
import { fedAvg, weightedMean, weightedMeanFloat32 } from "../../lib/aggregation/index.js";
import { toFloat32 } from "../../lib/aggregation/kernels.js";
import { seededRandom } from "./fixtures.js";

const AWKWARD = [0, -0, 1.401298464324817e-45, -1e-40, 1e-30, 0.1, -0.7, 3.4e38, -3.4e38, 1e20];

function rowsOf(m: number, d: number, seed: number): Float32Array[] {
  const random = seededRandom(seed);
  return Array.from({ length: m }, () =>
    Float32Array.from({ length: d }, (_, k) => (k % 2 === 0 ? random() * 2 - 1 : AWKWARD[Math.floor(random() * AWKWARD.length)])),
  );
}

function expectSameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  const differ = actual.findIndex((x, k) => !Object.is(x, expected[k]));
  expect(differ, `${what}: first difference at ${differ} (${actual[differ]} vs ${expected[differ]})`).to.equal(-1);
}

describe("weightedMeanFloat32", () => {
  // 4100 coordinates: the blocked path (over 16 rows) crosses a block boundary.
  const d = 4100;
  for (const m of [1, 2, 3, 4, 5, 7, 8, 10, 16, 17, 21]) {
    it(`${m} rows, some with weight 0: the same bits as toFloat32(weightedMean)`, () => {
      const rows = rowsOf(m, d, 50 + m);
      const random = seededRandom(m);
      const weights = rows.map((_, i) => (i % 5 === 3 ? 0 : 1 + Math.floor(random() * 90)));
      const divisor = weights.reduce((a, b) => a + b, 0) || 1;
      expectSameBits(weightedMeanFloat32(rows, weights, divisor, d), toFloat32(weightedMean(rows, weights, divisor, d)), `m = ${m}`);
    });
  }

  it("sums that cancel to zero come out +0, as in the float64 path", () => {
    const rows = [Float32Array.of(-0, 1, -0), Float32Array.of(-0, -1, 0)];
    const out = weightedMeanFloat32(rows, [1, 1], 2, 3);
    expect([Object.is(out[0], 0), Object.is(out[1], 0), Object.is(out[2], 0)]).to.deep.equal([true, true, true]);
  });

  it("FedAvg's aggregate is that kernel's output", () => {
    const rows = rowsOf(6, 300, 9);
    const updates = rows.map((vector, i) => ({ id: `0x${(i + 1).toString(16).padStart(40, "0")}`, numSamples: 10 * (i + 1), vector }));
    const total = updates.reduce((s, u) => s + u.numSamples, 0);
    expectSameBits(fedAvg(updates).aggregate, toFloat32(weightedMean(rows, updates.map((u) => u.numSamples), total, 300)), "fedavg");
  });
});
