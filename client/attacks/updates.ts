// Byzantine update crafting: pure functions from honest updates to malicious ones, for the
// simulator and for testing the robust aggregation rules. Each returns a new tensor set in
// the same names and shapes, so the result encodes like any honest update.
import { AnchorFLError } from "../../lib/errors.js";
import { Random } from "../../lib/random.js";
import { canonicalOrder, flatten, unflatten, type Tensor, type TensorShape } from "../../lib/tensors.js";

export class AttackArgumentError extends AnchorFLError {}

const copy = (ts: readonly Tensor[]): Tensor[] => canonicalOrder(ts).map((t) => ({ name: t.name, shape: [...t.shape], data: Float32Array.from(t.data) }));

const mapValues = (ts: readonly Tensor[], f: (v: number) => number): Tensor[] =>
  canonicalOrder(ts).map((t) => ({ name: t.name, shape: [...t.shape], data: t.data.map(f) }));

/** Sign flip: -delta (cosine -1 with the honest update). */
export function signFlip(delta: readonly Tensor[]): Tensor[] {
  return mapValues(delta, (v) => -v);
}

/** Scaling / boosting: lambda · delta (the model-replacement attack uses lambda ≈ n). */
export function scaleUpdate(delta: readonly Tensor[], lambda: number): Tensor[] {
  if (!Number.isFinite(lambda)) throw new AttackArgumentError(`lambda must be finite, found ${lambda}`);
  return mapValues(delta, (v) => v * lambda);
}

/** Gaussian noise: N(0, sigma²) in place of the update ("replace") or added to it ("add"). */
export function gaussianUpdate(delta: readonly Tensor[], sigma: number, mode: "replace" | "add", rng: Random): Tensor[] {
  if (!(sigma >= 0) || !Number.isFinite(sigma)) throw new AttackArgumentError(`sigma must be a non-negative finite number, found ${sigma}`);
  return mapValues(delta, (v) => (mode === "add" ? v : 0) + sigma * rng.normal());
}

/** Zero update: a free rider that trains nothing but claims a share. */
export function zeroUpdate(shapes: readonly TensorShape[]): Tensor[] {
  return canonicalOrder(shapes).map((s) => ({ name: s.name, shape: [...s.shape], data: new Float32Array(s.shape.reduce((a, b) => a * b, 1)) }));
}

/** Stale update: resubmits this client's own delta from the previous round. */
export function staleUpdate(previousOwn: readonly Tensor[] | undefined): Tensor[] {
  if (!previousOwn) throw new AttackArgumentError("a stale update needs this client's delta from the previous round, found none", { hint: "the first round a client plays has nothing to resubmit" });
  return copy(previousOwn);
}

/** Copied update: resubmits another participant's revealed update from the previous round. */
export function copiedUpdate(previousOther: readonly Tensor[] | undefined): Tensor[] {
  if (!previousOther) throw new AttackArgumentError("a copied update needs another participant's revealed update from the previous round, found none");
  return copy(previousOther);
}

function checkHonest(honest: readonly (readonly Tensor[])[], attack: string): Float32Array[] {
  if (honest.length === 0) throw new AttackArgumentError(`${attack} needs at least one honest update to estimate from, found none`);
  const flat = honest.map((u) => flatten(u));
  const d = flat[0].length;
  const bad = flat.findIndex((f) => f.length !== d);
  if (bad >= 0) throw new AttackArgumentError(`${attack}: honest update ${bad} has ${flat[bad].length} values, the first has ${d}`);
  return flat;
}

/** Per-coordinate mean and population standard deviation (float64) of the updates. */
export function coordinateStats(honest: readonly (readonly Tensor[])[]): { mean: Float64Array; std: Float64Array } {
  const flat = checkHonest(honest, "coordinate statistics");
  const d = flat[0].length;
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (const f of flat) for (let j = 0; j < d; j++) mean[j] += f[j];
  for (let j = 0; j < d; j++) mean[j] /= flat.length;
  for (const f of flat) for (let j = 0; j < d; j++) std[j] += (f[j] - mean[j]) ** 2;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j] / flat.length);
  return { mean, std };
}

/** Inverse of the standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new AttackArgumentError(`a normal quantile needs p in (0, 1), found ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) => (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/**
 * z_max of "A little is enough" (Baruch et al. 2019, Alg. 3): with n workers of which f are
 * Byzantine, s = floor(n/2 + 1) - f honest workers must be "further from the mean" than the
 * attackers, so z_max = Φ⁻¹((n - s) / n).
 */
export function alieZ(n: number, f: number): number {
  if (!Number.isInteger(n) || !Number.isInteger(f) || n <= 0 || f <= 0 || f >= n) {
    throw new AttackArgumentError(`ALIE needs integers 0 < f < n, found n = ${n}, f = ${f}`);
  }
  const s = Math.floor(n / 2 + 1) - f;
  if (s <= 0) throw new AttackArgumentError(`with f = ${f} of n = ${n} the attackers are a majority (s = ${s}); ALIE's z is unbounded`);
  return normalQuantile((n - s) / n);
}

/** "A little is enough": every coordinate set to mean - z · std of the honest updates. */
export function littleIsEnough(honest: readonly (readonly Tensor[])[], z: number): Tensor[] {
  if (!Number.isFinite(z)) throw new AttackArgumentError(`z must be finite, found ${z}`);
  const { mean, std } = coordinateStats(honest);
  return unflatten(Float32Array.from(mean, (m, j) => m - z * std[j]), honest[0]);
}

/** Inner-product manipulation (Xie et al. 2020): -epsilon · the honest mean, so <attack, mean> < 0. */
export function innerProductManipulation(honest: readonly (readonly Tensor[])[], epsilon: number): Tensor[] {
  if (!(epsilon > 0) || !Number.isFinite(epsilon)) throw new AttackArgumentError(`epsilon must be a positive finite number, found ${epsilon}`);
  const { mean } = coordinateStats(honest);
  return unflatten(Float32Array.from(mean, (m) => -epsilon * m), honest[0]);
}
