// Order statistics over small reusable buffers (one column of the update matrix at a time).
// `selectValue` is a quickselect whose partition step has no data-dependent branch (see
// partitionInto), so random data costs no branch mispredictions. No closures, no allocation
// per call.

const SHORT = 16;

/** Sorts buf[lo, hi) ascending by insertion (fast for the short ranges it is used on). */
export function insertionSort(buf: Float64Array, lo: number, hi: number): void {
  for (let i = lo + 1; i < hi; i++) {
    const x = buf[i];
    let j = i - 1;
    while (j >= lo && buf[j] > x) {
      buf[j + 1] = buf[j];
      j--;
    }
    buf[j + 1] = x;
  }
}

/**
 * The k-th smallest (0-based) of a[0, len). `a` and `b` are scratch buffers of at least len
 * values; the contents of both are overwritten. The result is an order statistic, so it does
 * not depend on how the values were arranged.
 */
export function selectValue(a: Float64Array, b: Float64Array, len: number, k: number): number {
  return selectInRange(a, b, 0, len, k);
}

/**
 * The value that belongs at index k (off <= k < off + len) if src[off, off + len) were
 * sorted. Reads and writes only indices in [off, off + len) of `src` and `dst`, so disjoint
 * ranges of the same two buffers can be searched one after the other.
 */
export function selectInRange(src: Float64Array, dst: Float64Array, off: number, len: number, k: number): number {
  while (len > SHORT) {
    const pivot = medianOfThree(src[off], src[off + (len >> 1)], src[off + len - 1]);
    const less = partitionInto(src, dst, off, len, pivot) - off;
    if (less === 0) {
      // The pivot is the minimum of the range: peel off the values equal to it, back into src.
      const equal = peelEqual(dst, src, off, len, pivot) - off;
      if (k < off + equal) return pivot;
      off += equal;
      len -= equal;
      continue;
    }
    if (k < off + less) {
      len = less;
    } else {
      off += less;
      len -= less;
    }
    const t = src;
    src = dst;
    dst = t;
  }
  insertionSort(src, off, off + len);
  return src[k];
}

/**
 * Copies src[off, off + len) into dst[off, off + len): values below the pivot to the front, the
 * others to the back. Each value is written to both ends and only the matching cursor moves;
 * `+(x < pivot)` compiles to a flag, not a branch, so random data costs no mispredictions.
 * Returns the index where the values >= pivot begin.
 */
export function partitionInto(src: Float64Array, dst: Float64Array, off: number, len: number, pivot: number): number {
  let lo = off;
  let hi = off + len - 1;
  for (let i = off; i < off + len; i++) {
    const x = src[i];
    dst[lo] = x;
    dst[hi] = x;
    const less = +(x < pivot);
    lo += less;
    hi += less - 1;
  }
  return lo;
}

/** Like partitionInto, splitting at <= pivot: the values equal to the pivot (the range's minimum) go to the front. */
function peelEqual(src: Float64Array, dst: Float64Array, off: number, len: number, pivot: number): number {
  let lo = off;
  let hi = off + len - 1;
  for (let i = off; i < off + len; i++) {
    const x = src[i];
    dst[lo] = x;
    dst[hi] = x;
    const equal = +(x <= pivot);
    lo += equal;
    hi += equal - 1;
  }
  return lo;
}

/** Sorts buf[lo, hi) ascending: quicksort on long ranges, insertion sort on short ones. */
export function sortRange(buf: Float64Array, lo: number, hi: number): void {
  while (hi - lo > SHORT) {
    const pivot = medianOfThree(buf[lo], buf[(lo + hi - 1) >>> 1], buf[hi - 1]);
    let i = lo;
    let j = hi - 1;
    while (i <= j) {
      while (buf[i] < pivot) i++;
      while (buf[j] > pivot) j--;
      if (i <= j) {
        const t = buf[i];
        buf[i] = buf[j];
        buf[j] = t;
        i++;
        j--;
      }
    }
    // Recurse into the shorter side, loop on the longer one: stack depth stays O(log n).
    if (j + 1 - lo < hi - i) {
      sortRange(buf, lo, j + 1);
      lo = i;
    } else {
      sortRange(buf, i, hi);
      hi = j + 1;
    }
  }
  insertionSort(buf, lo, hi);
}

export function medianOfThree(x: number, y: number, z: number): number {
  if (x < y) return y < z ? y : x < z ? z : x;
  return x < z ? x : y < z ? z : y;
}
