// The WebAssembly SIMD kernels (lib/aggregation/simd.ts) behind the median and trimmed mean,
// against two references: a straightforward stable sort of each column (ties keep row order:
// the middle value(s), the kept values added in sorted order from 0), and the selection-based
// computation the kernels replace (coordinatewise.ts's selectionMedian / selectionTrimmedMean),
// which they must match bit for bit, signed zeros included, so that model digests do not depend
// on which path ran. The data is built to be awkward: ties, -0 next to +0, subnormals, values
// near the float32 limits, runs of zeros.
import { expect } from "chai";
import { coordinateMedian, coordinateTrimmedMean, selectionMedian, selectionTrimmedMean } from "../../lib/aggregation/coordinatewise.js";
import { prune, sortingNetwork } from "../../lib/aggregation/networks.js";
import { SIMD_MAX, simdAvailable, simdMedianKernel, simdTrimmedMeanKernel } from "../../lib/aggregation/simd.js";
import { Code } from "../../lib/aggregation/wasm.js";
import { seededRandom } from "./fixtures.js";

const AWKWARD = [0, -0, 1.401298464324817e-45, -1.401298464324817e-45, 1e-40, -1e-40, 1e-30, -1e-30, 0.5, -0.5, 1, -1, 3.4e38, -3.4e38];

/** Columns of mixed kinds: uniform values, draws from the awkward values, mostly zeros of both signs. */
function awkwardRows(n: number, d: number, seed: number): Float32Array[] {
  const random = seededRandom(seed);
  const rows = Array.from({ length: n }, () => new Float32Array(d));
  for (let k = 0; k < d; k++) {
    const kind = k % 3;
    for (let i = 0; i < n; i++) {
      const pick = AWKWARD[Math.floor(random() * AWKWARD.length)];
      rows[i][k] = kind === 0 ? random() * 2 - 1 : kind === 1 ? pick : random() < 0.8 ? (random() < 0.5 ? 0 : -0) : pick;
    }
  }
  return rows;
}

/** Column k, stably sorted by value (-0 and +0 tie). */
function stableColumn(rows: readonly Float32Array[], k: number): number[] {
  return rows.map((r) => r[k]).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function referenceMedian(rows: readonly Float32Array[], d: number): Float32Array {
  const n = rows.length;
  const mid = n >> 1;
  return Float32Array.from({ length: d }, (_, k) => {
    const c = stableColumn(rows, k);
    return n % 2 === 1 ? c[mid] : (c[mid - 1] + c[mid]) / 2;
  });
}

function referenceTrimmedMean(rows: readonly Float32Array[], d: number, trim: number): Float32Array {
  const n = rows.length;
  return Float32Array.from({ length: d }, (_, k) => {
    const c = stableColumn(rows, k);
    let sum = 0;
    for (let i = trim; i < n - trim; i++) sum += c[i];
    return sum / (n - 2 * trim);
  });
}

function expectSameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  const differ = actual.findIndex((x, k) => !Object.is(x, expected[k]));
  expect(differ, `${what}: first difference at ${differ} (${actual[differ]} vs ${expected[differ]})`).to.equal(-1);
}

describe("SIMD kernels for the coordinate-wise rules", () => {
  it("this engine runs wasm SIMD (otherwise every rule silently takes the slower selection path)", () => {
    expect(simdAvailable).to.equal(true);
  });

  it("LEB128 encodes as the WebAssembly binary format says", () => {
    const u32 = (value: number) => [...new Code().u32(value).toBytes()];
    const s32 = (value: number) => [...new Code().s32(value).toBytes()];
    expect(u32(0)).to.deep.equal([0]);
    expect(u32(127)).to.deep.equal([0x7f]);
    expect(u32(128)).to.deep.equal([0x80, 0x01]);
    expect(u32(624485)).to.deep.equal([0xe5, 0x8e, 0x26]);
    expect(u32(2 ** 32 - 1)).to.deep.equal([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(s32(-1)).to.deep.equal([0x7f]);
    expect(s32(63)).to.deep.equal([0x3f]);
    expect(s32(64)).to.deep.equal([0xc0, 0x00]);
    expect(s32(-123456)).to.deep.equal([0xc0, 0xbb, 0x78]);
  });

  it("Batcher's network, cut to n wires, sorts every 0-1 input (so every input) for n up to 16", () => {
    for (let n = 1; n <= 16; n++) {
      const network = sortingNetwork(n);
      for (let mask = 0; mask < 1 << n; mask++) {
        const v = Array.from({ length: n }, (_, i) => (mask >> i) & 1);
        for (const { lo, hi } of network) if (v[lo] > v[hi]) [v[lo], v[hi]] = [v[hi], v[lo]];
        const ones = v.reduce((a, b) => a + b, 0);
        expect(v.every((x, i) => x === +(i >= n - ones)), `n = ${n}, input ${mask.toString(2)}`).to.equal(true);
      }
    }
  });

  it("pruning keeps every comparator the wanted ranks depend on, and drops the others", () => {
    const n = 12;
    const full = sortingNetwork(n);
    const median = prune(full, n, [5, 6]);
    expect(median.length).to.be.lessThan(full.length);
    for (let mask = 0; mask < 1 << n; mask++) {
      const v = Array.from({ length: n }, (_, i) => (mask >> i) & 1);
      for (const { lo, hi } of median) if (v[lo] > v[hi]) [v[lo], v[hi]] = [v[hi], v[lo]];
      const ones = v.reduce((a, b) => a + b, 0);
      expect([v[5], v[6]], `input ${mask.toString(2)}`).to.deep.equal([+(5 >= n - ones), +(6 >= n - ones)]);
    }
  });

  for (let n = 1; n <= 40; n++) {
    it(`median, n = ${n}: the same bits as the stable-sort reference${n > 16 ? " (zeros: same value)" : ""} and as selection`, () => {
      const d = 600;
      const rows = awkwardRows(n, d, 1000 + n);
      const actual = coordinateMedian(rows, d);
      const expected = referenceMedian(rows, d);
      if (n <= 16) {
        expectSameBits(actual, expected, "median");
      } else {
        // Past 16 the reference computation is a selection, which picks among tied zeros in its
        // own order; the value still matches, and the bits do wherever the median is not zero.
        expectSameBits(actual.map((x) => x + 0), expected.map((x) => x + 0), "median");
      }
      expectSameBits(actual, selectionMedian(rows, d), "median vs selection");
      expect(expected.some((x) => Object.is(x, -0)) || n === 1, "the data has negative-zero medians").to.equal(true);
    });
  }

  for (let n = 1; n <= 40; n++) {
    const trims = [...new Set([0, Math.floor(0.2 * n), Math.floor(0.49 * n), Math.floor((n - 1) / 2)])];
    it(`trimmed mean, n = ${n}, trim in {${trims.join(", ")}}: the same bits as ${n <= 16 ? "the sorted-order reference and " : ""}selection`, () => {
      const d = 600;
      const rows = awkwardRows(n, d, 2000 + n);
      for (const trim of trims) {
        const actual = coordinateTrimmedMean(rows, d, trim);
        if (n <= 16) expectSameBits(actual, referenceTrimmedMean(rows, d, trim), `trim ${trim}`);
        expectSameBits(actual, selectionTrimmedMean(rows, d, trim), `trim ${trim} vs selection`);
      }
    });
  }

  for (const n of [50, 64, 100, 101, SIMD_MAX, SIMD_MAX + 1]) {
    it(`n = ${n}: median and trimmed mean bit-identical to selection over several blocks and a ragged end`, function () {
      this.timeout(20_000);
      const d = Math.ceil(70_000 / n) * 4 + 3; // past the kernel's block of ~65,536 / n coordinates, and not a multiple of 4
      const rows = awkwardRows(n, d, 3000 + n);
      expectSameBits(coordinateMedian(rows, d), selectionMedian(rows, d), "median");
      for (const trim of [0, Math.floor(0.2 * n), Math.floor((n - 1) / 2)]) expectSameBits(coordinateTrimmedMean(rows, d, trim), selectionTrimmedMean(rows, d, trim), `trim ${trim}`);
    });
  }

  // The comparisons above go through coordinatewise.ts, which recomputes whatever a kernel hands
  // back: a kernel that handed back everything would pass them. Here the kernels run alone.
  it("the kernels settle every nonzero result themselves (only zeros are handed back), also for d = 0 to 5", () => {
    for (const n of [1, 2, 7, 16, 17, 40]) {
      for (const d of [0, 1, 2, 3, 5, 603]) {
        const rows = awkwardRows(n, d, 4000 + 10 * n + d);
        const check = (out: Float32Array, expected: Float32Array, what: string) => {
          for (let k = 0; k < d; k++) {
            const handedBack = Number.isNaN(out[k]);
            expect(handedBack ? expected[k] === 0 : Object.is(out[k], expected[k]), `${what}, n = ${n}, d = ${d}, k = ${k}: ${out[k]} vs ${expected[k]}`).to.equal(true);
          }
        };
        const out = new Float32Array(d);
        simdMedianKernel(n)(rows, d, out);
        check(out, selectionMedian(rows, d), "median");
        for (const trim of new Set([0, Math.floor((n - 1) / 2)])) {
          simdTrimmedMeanKernel(n, trim)(rows, d, out);
          check(out, selectionTrimmedMean(rows, d, trim), `trim ${trim}`);
        }
      }
    }
  });

  it("sparse updates (mostly +0, no -0: top-k compression) are settled by the kernels, zero results included", () => {
    for (const n of [5, 10, 16, 17, 50]) {
      const d = 2003;
      const random = seededRandom(5000 + n);
      // Odd coordinates mostly zero (zero medians), even ones mostly not; nonzero values include subnormals.
      const rows = Array.from({ length: n }, () =>
        Float32Array.from({ length: d }, (_, k) => (random() < (k % 2 ? 0.85 : 0.3) ? 0 : random() < 0.2 ? AWKWARD[2 + Math.floor(random() * 12)] : random() - 0.5)),
      );
      const out = new Float32Array(d);
      simdMedianKernel(n)(rows, d, out);
      expectSameBits(out, selectionMedian(rows, d), `median, n = ${n}`);
      expect(out.some((x) => x === 0) && out.some((x) => x !== 0), "both zero and nonzero medians").to.equal(true);
      for (const trim of new Set([0, 1, Math.floor((n - 1) / 2)])) {
        simdTrimmedMeanKernel(n, trim)(rows, d, out);
        expectSameBits(out, selectionTrimmedMean(rows, d, trim), `trim ${trim}, n = ${n}`);
      }
    }
  });

  it("rows that are views into a larger buffer, at an offset, read the right values", () => {
    const n = 7;
    const d = 50;
    const backing = new Float32Array(n * d + 3);
    const source = awkwardRows(n, d, 3);
    const rows = source.map((r, i) => {
      const view = new Float32Array(backing.buffer, (3 + i * d) * 4, d);
      view.set(r);
      return view;
    });
    expectSameBits(coordinateMedian(rows, d), referenceMedian(source, d), "median");
    expectSameBits(coordinateTrimmedMean(rows, d, 2), referenceTrimmedMean(source, d, 2), "trimmed mean");
  });
});
