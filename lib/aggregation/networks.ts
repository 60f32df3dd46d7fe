// Sorting networks for the SIMD kernels (simd.ts): Batcher's odd-even merge sort cut to n
// wires, and pruned to the comparators that the wanted ranks depend on (for a median of 50 or
// 100 values, 330 of 403 or 898 of 1,104 comparators remain). A network is a fixed sequence of
// compare-exchanges, so the kernels have no data-dependent branch.

/** A compare-exchange: after it, wire `lo` holds the smaller of the two values and `hi` the larger. */
export interface Comparator {
  readonly lo: number;
  readonly hi: number;
}

/**
 * Batcher's odd-even merge sort for n wires: the network for the next power of two with every
 * comparator that touches a wire >= n dropped. Those wires stand for +Infinity, which a
 * comparator never moves below a real value, so the rest still sorts n values.
 */
export function sortingNetwork(n: number): Comparator[] {
  const size = 2 ** Math.ceil(Math.log2(Math.max(1, n)));
  const out: Comparator[] = [];
  for (let p = 1; p < size; p *= 2) {
    for (let k = p; k >= 1; k = Math.floor(k / 2)) {
      for (let j = k % p; j + k < size; j += 2 * k) {
        for (let i = 0; i < Math.min(k, size - j - k); i++) {
          const lo = i + j;
          const hi = i + j + k;
          if (Math.floor(lo / (2 * p)) === Math.floor(hi / (2 * p)) && hi < n) out.push({ lo, hi });
        }
      }
    }
  }
  return out;
}

/** A comparator that survives pruning, and which of its two outputs are read later. */
interface Step extends Comparator {
  readonly needLo: boolean;
  readonly needHi: boolean;
}

/** Keeps only the comparators whose outputs reach the `wanted` wires (walking back from the end). */
export function prune(network: readonly Comparator[], n: number, wanted: readonly number[]): Step[] {
  const needed = new Array<boolean>(n).fill(false);
  for (const w of wanted) needed[w] = true;
  const steps: Step[] = [];
  for (let c = network.length - 1; c >= 0; c--) {
    const { lo, hi } = network[c];
    if (!needed[lo] && !needed[hi]) continue;
    steps.push({ lo, hi, needLo: needed[lo], needHi: needed[hi] });
    needed[lo] = true;
    needed[hi] = true;
  }
  return steps.reverse();
}
