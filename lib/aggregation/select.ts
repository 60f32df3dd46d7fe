// Order statistics over small reusable buffers (one column of the update matrix at a time).
// `selectValue` is a quickselect whose partition step has no data-dependent branch: every
// value is written to both ends of a scratch buffer and only the matching cursor advances,
// so random data costs no branch mispredictions. No closures, no allocation per call.

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
  let src = a;
  let dst = b;
  let off = 0;
  while (len > SHORT) {
    const pivot = medianOfThree(src[off], src[off + (len >> 1)], src[off + len - 1]);
    const end = off + len;
    let lo = off;
    let hi = end - 1;
    for (let i = off; i < end; i++) {
      const x = src[i];
      dst[lo] = x;
      dst[hi] = x;
      const less = x < pivot ? 1 : 0;
      lo += less;
      hi += less - 1;
    }
    const less = lo - off;
    if (less === 0) {
      // The pivot is the minimum of the range: peel off the values equal to it, back into src.
      lo = off;
      hi = end - 1;
      for (let i = off; i < end; i++) {
        const x = dst[i];
        src[lo] = x;
        src[hi] = x;
        const equal = x <= pivot ? 1 : 0;
        lo += equal;
        hi += equal - 1;
      }
      const equal = lo - off;
      if (k < equal) return pivot;
      off = lo;
      len -= equal;
      k -= equal;
      continue;
    }
    if (k < less) {
      len = less;
    } else {
      off = lo;
      len -= less;
      k -= less;
    }
    const t = src;
    src = dst;
    dst = t;
  }
  insertionSort(src, off, off + len);
  return src[off + k];
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

function medianOfThree(x: number, y: number, z: number): number {
  if (x < y) return y < z ? y : x < z ? z : x;
  return x < z ? x : y < z ? z : y;
}
