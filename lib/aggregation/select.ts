// Order statistics over small reusable buffers (one column of the update matrix at a time).
// `selectInRange` is a quickselect whose partition step has no data-dependent branch (see
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
 * The value that belongs at index k (off <= k < off + len) if src[off, off + len) were
 * sorted. With `below`, also puts the value that belongs at k - 1 in below[0] (-Infinity when
 * k = off): it is either in the last, sorted range or the largest of the part most recently
 * split off below the range, so it costs no extra pass. Reads and writes only indices in
 * [off, off + len) of `src` and `dst`, so disjoint ranges of the same two buffers can be
 * searched one after the other.
 */
export function selectInRange(src: Float64Array, dst: Float64Array, off: number, len: number, k: number, below?: Float64Array): number {
  // The part most recently split off just below the range (its values are all below the range's).
  let lowBuf: Float64Array | undefined;
  let lowStart = 0;
  let lowEnd = 0;
  while (len > SHORT) {
    const pivot = medianOfThree(src[off], src[off + (len >> 1)], src[off + len - 1]);
    const split = partitionInto(src, dst, off, len, pivot);
    if (split === off) {
      // The pivot is the minimum of the range: peel off the values equal to it, back into src.
      const equalEnd = peelEqual(dst, src, off, len, pivot);
      if (k < equalEnd) {
        if (below) below[0] = k > off ? pivot : maxOf(lowBuf, lowStart, lowEnd);
        return pivot;
      }
      lowBuf = src;
      lowStart = off;
      lowEnd = equalEnd;
      len -= equalEnd - off;
      off = equalEnd;
      continue;
    }
    if (k < split) {
      len = split - off;
    } else {
      lowBuf = dst;
      lowStart = off;
      lowEnd = split;
      len -= split - off;
      off = split;
    }
    const t = src;
    src = dst;
    dst = t;
  }
  insertionSort(src, off, off + len);
  if (below) below[0] = k > off ? src[k - 1] : maxOf(lowBuf, lowStart, lowEnd);
  return src[k];
}

function maxOf(buf: Float64Array | undefined, start: number, end: number): number {
  let m = -Infinity;
  if (buf) for (let i = start; i < end; i++) m = Math.max(m, buf[i]);
  return m;
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

/** Median of a few numbers (the mean of the two middle ones when there is an even count); the one median helper of clipping, the anomaly detector and the verdict policy. */
export function medianOf(values: ArrayLike<number>): number {
  const sorted = Float64Array.from(values);
  sortRange(sorted, 0, sorted.length);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function medianOfThree(x: number, y: number, z: number): number {
  if (x < y) return y < z ? y : x < z ? z : x;
  return x < z ? x : y < z ? z : y;
}
