// The one seeded pseudo-random generator of the project. Everything that must be
// reproducible from a seed (data shuffles, partitions, simulated attacks) draws from here,
// never from Math.random, so a run can be repeated bit for bit on any machine.
//
// mulberry32 is a small 32-bit generator with a full 2^32 period: plenty for shuffling and
// sampling in simulations, and not meant for secrets (use node:crypto for those).
import { AnchorFLError } from "./errors.js";

export class RandomArgumentError extends AnchorFLError {}

/** Mixes a 32-bit value (the finaliser of MurmurHash3): nearby seeds give unrelated streams. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function hashString(s: string): number {
  let h = 0x811c9dc5; // FNV-1a, then mixed
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return mix32(h);
}

/**
 * Derives an independent 32-bit seed from a seed and stream labels, e.g.
 * `deriveSeed(seed, "epoch", 3)`, so that each use of a seed gets its own stream.
 */
export function deriveSeed(seed: number, ...labels: readonly (number | string)[]): number {
  if (!Number.isSafeInteger(seed)) {
    throw new RandomArgumentError(`seed must be a safe integer, found ${seed}`, { details: { seed } });
  }
  // Safe integers above 2^32 keep their high bits instead of being silently truncated.
  let h = mix32((seed >>> 0) ^ mix32(Math.floor(seed / 2 ** 32) >>> 0));
  for (const label of labels) {
    h = mix32(h ^ (typeof label === "number" ? mix32(label >>> 0) : hashString(label)));
  }
  return h;
}

export class Random {
  private state: number;
  private spareNormal: number | undefined;

  /** A generator seeded by `seed` and optional stream labels (see deriveSeed). */
  constructor(seed: number, ...labels: readonly (number | string)[]) {
    this.state = deriveSeed(seed, ...labels);
  }

  /** Uniform in [0, 1), 32 bits of resolution (mulberry32). */
  float(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) {
      throw new RandomArgumentError(`int(n) needs a positive integer n, found ${n}`);
    }
    return Math.floor(this.float() * n);
  }

  /** Standard normal (Marsaglia's polar method; the second value is kept for the next call). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const z = this.spareNormal;
      this.spareNormal = undefined;
      return z;
    }
    let u: number, v: number, s: number;
    do {
      u = 2 * this.float() - 1;
      v = 2 * this.float() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const k = Math.sqrt((-2 * Math.log(s)) / s);
    this.spareNormal = v * k;
    return u * k;
  }

  /** Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 uses the u^(1/shape) boost. */
  gamma(shape: number): number {
    if (!(shape > 0) || !Number.isFinite(shape)) {
      throw new RandomArgumentError(`gamma shape must be a positive finite number, found ${shape}`);
    }
    if (shape < 1) {
      // 1 - float() is in (0, 1], so the power never sees 0.
      return this.gamma(shape + 1) * Math.pow(1 - this.float(), 1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number, v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = 1 - this.float();
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
    }
  }

  /** A draw from the symmetric Dirichlet(alpha) distribution over k categories. */
  dirichlet(alpha: number, k: number): number[] {
    const g = Array.from({ length: k }, () => this.gamma(alpha));
    const sum = g.reduce((a, b) => a + b, 0);
    // With tiny alpha every gamma draw can underflow to 0; all mass then goes to one category.
    if (sum === 0) {
      const out = new Array<number>(k).fill(0);
      out[this.int(k)] = 1;
      return out;
    }
    return g.map((x) => x / sum);
  }

  /** Fisher-Yates shuffle into a new array; the input is not touched. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }
}
