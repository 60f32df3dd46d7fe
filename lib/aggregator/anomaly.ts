// The anomaly detector: robust statistics over a round's updates that score how unlike the
// round's crowd each one is, for the verdict policy to weigh next to its own tests. Three views
// of each update, each turned into a robust z-score (distance from the median in units of the
// scaled median absolute deviation, which a minority of attackers cannot drag):
//   - its log norm (scaling, boosting, and updates too small to be trained),
//   - its cosine to the coordinate-wise median (wrong direction, and "too central" updates
//     such as ALIE's, which honest noise never produces),
//   - its direction seen through a seeded random projection to k dimensions (any direction
//     the crowd does not share, e.g. label flipping, at k numbers per update).
// Pure and deterministic: canonical (address) order, float64 arithmetic, and the projection is
// drawn from the project's seeded PRNG with a seed derived from task and round, coordinate by
// coordinate in a fixed order, so anyone re-running the round gets the same scores bit for bit.
import { sumOfSquares, dot } from "../aggregation/kernels.js";
import { medianOf } from "../aggregation/select.js";
import { compareAddresses } from "../chain/coordinator.js";
import { Random } from "../random.js";

export interface AnomalyParams {
  /**
   * A score above this flags an update. Default 6, measured (bench/detection.ts): honest
   * clients reach scores of 5.7 on Dirichlet(0.5) data, mostly on the cosine view (non-IID
   * updates legitimately point their own way), so the textbook 3.5 of Iglewicz and Hoaglin
   * flags honest clients here.
   */
  readonly threshold: number;
  /** Dimensions of the random projection, 1 to 32 (one PRNG draw gives 32 signs per coordinate). */
  readonly dims: number;
}

export const DEFAULT_ANOMALY: AnomalyParams = { threshold: 6, dims: 16 };

/** Fewer updates than this: no scores (a median and MAD of four numbers judge nothing). */
export const MIN_ANOMALY_UPDATES = 5;

/** z-scores are clamped here so that a report stays finite when the crowd has no spread. */
const Z_LIMIT = 1e6;

/** MAD x 1.4826 estimates the standard deviation of normal data. */
const MAD_SCALE = 1.482602218505602;

export interface AnomalyInput {
  readonly address: string;
  /** A non-zero flat update (zero updates are free riding, judged before). */
  readonly vector: Float32Array;
}

export interface AnomalyScore {
  readonly address: string;
  /** max(|normZ|, |cosineZ|, projectionZ): the most anomalous view. */
  readonly score: number;
  readonly normZ: number;
  readonly cosineZ: number;
  /** One-sided: only being far from the crowd's projections is suspicious. */
  readonly projectionZ: number;
  /** How many of the three views exceed half the threshold: agreement between signals, which slashing requires (ALIE is both too small and too central). */
  readonly signals: number;
  /** score above the threshold. (Two views agreeing below it also caught ALIE, but flagged honest clients at 40% attackers.) */
  readonly flagged: boolean;
}

/** Robust z-scores (x - median) / (1.4826 MAD), clamped to +-Z_LIMIT; with no spread, any deviation is the limit. */
export function robustZ(values: readonly number[]): number[] {
  const m = medianOf(values);
  const scale = MAD_SCALE * medianOf(values.map((x) => Math.abs(x - m)));
  return values.map((x) => {
    const dev = x - m;
    if (dev === 0) return 0;
    const z = scale === 0 ? Math.sign(dev) * Z_LIMIT : dev / scale;
    return Math.max(-Z_LIMIT, Math.min(Z_LIMIT, z));
  });
}

/**
 * Projects each update's direction (the update over its norm) onto `dims` random +-1 axes.
 * Coordinate j takes one 32-bit draw whose bit c is the sign of axis c, so the projection
 * depends only on the seed and d, never on n or the order updates arrived in.
 */
export function project(
  vectors: readonly Float32Array[],
  dims: number,
  seed: readonly (string | number)[],
  norms: readonly number[] = vectors.map((v) => Math.sqrt(sumOfSquares(v))),
): Float64Array[] {
  const rng = new Random(0, "anchorfl-anomaly", ...seed);
  const d = vectors[0]?.length ?? 0;
  const inverse = norms.map((n) => 1 / n);
  const out = vectors.map(() => new Float64Array(dims));
  const signs = new Float64Array(dims);
  const scale = 1 / Math.sqrt(dims);
  for (let j = 0; j < d; j++) {
    const bits = rng.float() * 4294967296;
    for (let c = 0; c < dims; c++) signs[c] = Math.floor(bits / 2 ** c) % 2 === 1 ? scale : -scale;
    for (let i = 0; i < vectors.length; i++) {
      const x = vectors[i][j] * inverse[i];
      const p = out[i];
      for (let c = 0; c < dims; c++) p[c] += signs[c] * x;
    }
  }
  return out;
}

/**
 * Scores every update against the round's crowd. `reference` is the coordinate-wise median of
 * the same updates (the policy computes it once for both). Returns canonical (address) order;
 * empty when there are fewer than MIN_ANOMALY_UPDATES updates.
 */
export function anomalyScores(updates: readonly AnomalyInput[], reference: Float32Array, params: AnomalyParams, seed: readonly (string | number)[]): AnomalyScore[] {
  if (updates.length < MIN_ANOMALY_UPDATES) return [];
  const ordered = [...updates].sort((a, b) => compareAddresses(a.address, b.address));
  const norms = ordered.map((u) => Math.sqrt(sumOfSquares(u.vector)));
  const referenceNorm = Math.sqrt(sumOfSquares(reference));
  const cosines = ordered.map((u, i) => (referenceNorm === 0 ? 0 : dot(u.vector, reference) / (norms[i] * referenceNorm)));
  const normZ = robustZ(norms.map(Math.log));
  const cosineZ = robustZ(cosines);

  // Per axis, each projection's robust z; an update's distance is the root sum of squares over
  // the axes, and that distance is scored against the crowd's distances once more.
  const projections = project(
    ordered.map((u) => u.vector),
    params.dims,
    seed,
    norms,
  );
  const distance = new Array<number>(ordered.length).fill(0);
  for (let c = 0; c < params.dims; c++) {
    robustZ(projections.map((p) => p[c])).forEach((z, i) => (distance[i] += z * z));
  }
  const projectionZ = robustZ(distance.map(Math.sqrt)).map((z) => Math.max(0, z));

  return ordered.map((u, i) => {
    const views = [Math.abs(normZ[i]), Math.abs(cosineZ[i]), projectionZ[i]];
    const score = Math.max(...views);
    const signals = views.filter((z) => z > params.threshold / 2).length;
    return { address: u.address, score, normZ: normZ[i], cosineZ: cosineZ[i], projectionZ: projectionZ[i], signals, flagged: score > params.threshold };
  });
}
