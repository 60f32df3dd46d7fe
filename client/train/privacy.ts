// Local differential privacy for one update: clip the update's L2 norm to C, then add
// Gaussian noise N(0, (z·C)²) to every coordinate (the Gaussian mechanism with noise
// multiplier z), and report what that release spends.
//
// Accounting: the classic Gaussian-mechanism bound (Dwork & Roth 2014, Theorem A.1):
// sigma = sqrt(2 ln(1.25/delta)) · C / epsilon, i.e. epsilon = sqrt(2 ln(1.25/delta)) / z,
// for ONE release. The theorem assumes epsilon < 1 (z above about 4.8 at delta = 1e-5);
// larger values are still reported but are then only indicative. A client that releases
// one update per round composes these over the rounds it takes part in; that is the
// caller's ledger, not this function's.
import { randomBytes } from "node:crypto";
import { AnchorFLError } from "../../lib/errors.js";
import { Random } from "../../lib/random.js";
import type { Tensor } from "../../lib/tensors.js";

export class PrivacyArgumentError extends AnchorFLError {}

export interface PrivacySpent {
  readonly epsilon: number;
  readonly delta: number;
}

/** L2 norm over all tensors, accumulated in float64. */
export function l2Norm(tensors: readonly Tensor[]): number {
  let sum = 0;
  for (const t of tensors) for (let i = 0; i < t.data.length; i++) sum += t.data[i] * t.data[i];
  return Math.sqrt(sum);
}

/** Scales the update so its L2 norm is at most `clipNorm` (a new tensor set; unchanged values if already inside). */
export function clipToNorm(update: readonly Tensor[], clipNorm: number): Tensor[] {
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) throw new PrivacyArgumentError(`clipNorm must be a positive finite number, found ${clipNorm}`);
  const norm = l2Norm(update);
  const scale = norm > clipNorm ? clipNorm / norm : 1;
  return update.map((t) => ({ name: t.name, shape: [...t.shape], data: t.data.map((v) => v * scale) }));
}

/** epsilon spent by one Gaussian release with noise multiplier z at the given delta (bound above). */
export function gaussianEpsilon(noiseMultiplier: number, delta: number): number {
  if (!(noiseMultiplier > 0) || !Number.isFinite(noiseMultiplier)) {
    throw new PrivacyArgumentError(`noise multiplier must be a positive finite number, found ${noiseMultiplier}`);
  }
  if (!(delta > 0 && delta < 1)) throw new PrivacyArgumentError(`delta must be in (0, 1), found ${delta}`);
  return Math.sqrt(2 * Math.log(1.25 / delta)) / noiseMultiplier;
}

/** A standard-normal source from the OS's secure generator: DP noise must not be reproducible by others. */
export function secureNormalSource(): () => number {
  // Randomness is fetched 64 KiB at a time: one syscall per 4,096 normals, not one each.
  let pool = new Uint32Array(0);
  let at = 0;
  const uniform53 = () => {
    if (at + 2 > pool.length) {
      pool = new Uint32Array(randomBytes(65536).buffer.slice(0));
      at = 0;
    }
    const hi = pool[at++] >>> 5; // 27 bits
    const lo = pool[at++] >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 2 ** 53; // in [0, 1)
  };
  // Box-Muller; 1 - u keeps the logarithm away from 0.
  return () => Math.sqrt(-2 * Math.log(1 - uniform53())) * Math.cos(2 * Math.PI * uniform53());
}

/** A reproducible standard-normal source, for tests and simulations only. */
export function seededNormalSource(seed: number): () => number {
  const rng = new Random(seed, "dp-noise");
  return () => rng.normal();
}

/** Adds N(0, sigma²) to every coordinate (a new tensor set). */
export function addGaussianNoise(update: readonly Tensor[], sigma: number, normal: () => number): Tensor[] {
  return update.map((t) => ({ name: t.name, shape: [...t.shape], data: t.data.map((v) => v + sigma * normal()) }));
}

/** Clip to C, add N(0, (z·C)²), and say what the release spends. */
export function privatize(update: readonly Tensor[], { clipNorm, noiseMultiplier, delta = 1e-5, normal = secureNormalSource() }: { clipNorm: number; noiseMultiplier: number; delta?: number; normal?: () => number }): { update: Tensor[]; privacy: PrivacySpent } {
  const epsilon = gaussianEpsilon(noiseMultiplier, delta);
  return { update: addGaussianNoise(clipToNorm(update, clipNorm), noiseMultiplier * clipNorm, normal), privacy: { epsilon, delta } };
}
