// The per-coordinate kernels against plain sort-based references, on sizes that take every
// path (the SIMD networks; and the selection-based reference computation: insertion sort for
// short columns, branch-free quickselect, the split search for the trimmed mean's two cuts) and
// on data full of ties (which take the equal-values paths).
import { expect } from "chai";
import { closestToMedianMean, coordinateMedian, coordinateTrimmedMean, pairwiseSquaredDistances } from "../../lib/aggregation/index.js";
import { selectionMedian, selectionTrimmedMean } from "../../lib/aggregation/coordinatewise.js";
import { seededRandom } from "./fixtures.js";
import { expectClose } from "../helpers/close.js";

function randomRows(n: number, d: number, seed: number, distinctValues?: number): Float32Array[] {
  const random = seededRandom(seed);
  const draw = () => (distinctValues ? Math.floor(random() * distinctValues) - 1 : random() * 2 - 1);
  return Array.from({ length: n }, () => Float32Array.from({ length: d }, draw));
}

function sortedColumn(rows: readonly Float32Array[], k: number): Float64Array {
  return Float64Array.from(rows, (r) => r[k]).sort();
}

describe("aggregation kernels against sort-based references", () => {
  const D = 300;
  const paths = [
    { path: "SIMD", medianOf: coordinateMedian, trimmedMeanOf: coordinateTrimmedMean },
    { path: "selection", medianOf: selectionMedian, trimmedMeanOf: selectionTrimmedMean },
  ];
  for (const { path, medianOf, trimmedMeanOf } of paths) for (const n of [1, 2, 5, 16, 17, 40, 101]) {
    for (const ties of [undefined, 3]) {
      it(`${path}: median and trimmed mean, n = ${n}${ties ? ", values from {-1, 0, 1}" : ""}`, () => {
        const rows = randomRows(n, D, n * 7 + (ties ?? 0), ties);
        const median = medianOf(rows, D);
        const trims = [0, Math.floor((n - 1) / 2), Math.floor(0.2 * n)];
        const trimmed = trims.map((t) => trimmedMeanOf(rows, D, t));
        for (let k = 0; k < D; k++) {
          const c = sortedColumn(rows, k);
          const mid = n >> 1;
          expect(median[k], `median at ${k}`).to.equal(Math.fround(n % 2 ? c[mid] : (c[mid - 1] + c[mid]) / 2));
          trims.forEach((t, q) => {
            let sum = 0;
            for (let i = t; i < n - t; i++) sum += c[i];
            expectClose(trimmed[q][k], sum / (n - 2 * t), 1e-6, `trim ${t} at ${k}`);
          });
        }
      });
    }
  }

  it("closest-to-median mean: all values give the mean, one value (odd n) the median", () => {
    const rows = randomRows(41, D, 5);
    const all = closestToMedianMean(rows, D, 41);
    const one = closestToMedianMean(rows, D, 1);
    for (let k = 0; k < D; k++) {
      const c = sortedColumn(rows, k);
      expectClose(all[k], c.reduce((a, b) => a + b, 0) / 41, 1e-6);
      expect(one[k]).to.equal(Math.fround(c[20]));
    }
  });

  it("pairwise squared distances match a direct computation, across block boundaries", () => {
    const d = 70_001; // not a multiple of the block or of the unrolling
    const rows = randomRows(5, d, 11);
    const dist = pairwiseSquaredDistances(rows, d);
    for (let i = 0; i < 5; i++) {
      expect(dist[i * 5 + i]).to.equal(0);
      for (let j = 0; j < 5; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += (rows[i][k] - rows[j][k]) ** 2;
        expectClose(dist[i * 5 + j], s, s * 1e-12);
        expect(dist[i * 5 + j]).to.equal(dist[j * 5 + i]);
      }
    }
  });
});
