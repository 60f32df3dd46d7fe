// Update compression: bytes per update and per round, and accuracy after R rounds, for every
// scheme a task can choose (float32, f16, i8, top-k with and without error feedback), on the
// same seeds, data and training. Every update goes through the real codec: the simulator
// encodes it with encodeUpdate under the scheme, decodes it with the aggregator's strict
// decodeUpdate, carries each client's error-feedback residual, and aggregates what was decoded.
// Sizes are the encoded files' lengths (header and metadata included). Prints the table and
// writes it to docs/BENCHMARKS.md (section "compression").
//
//   npx tsx bench/compression.ts            10 clients, 15 rounds, 3,000 digits, seeds 1 and 2 (about 45 minutes on 2 busy cores)
//   npx tsx bench/compression.ts --quick    10 clients, 8 rounds, 2,000 digits, seed 1 (about 8 minutes on 2 busy cores)
import os from "node:os";
import { loadMnist } from "../client/data/mnist.js";
import { initBackend } from "../client/model/backend.js";
import { mlpSpec, parameterCount } from "../client/model/spec.js";
import { medianOf } from "../lib/aggregation/select.js";
import { parseCompression, type CompressionOption } from "../lib/protocol/options.js";
import { simulate, type SimulationSettings } from "../lib/simulation/simulate.js";
import { firstN, log, machineLine, markdownTable, writeSection } from "./report.js";

const quick = process.argv.includes("--quick");
const COMMAND = `npx tsx bench/compression.ts${quick ? " --quick" : ""}`;
const FORM = quick ? { clients: 10, rounds: 8, digits: 2_000, seeds: [1] } : { clients: 10, rounds: 15, digits: 3_000, seeds: [1, 2] };
const TRAINING = { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: "sgd" } as const;
/** The issue's target: this many times fewer bytes, at most this many points of accuracy below float32. */
const TARGET = { ratio: 4, points: 0.5 };

const SCHEMES: readonly { readonly label: string; readonly compression?: CompressionOption }[] = [
  { label: "float32 (none)" },
  ...["f16", "i8", "topk:0.1", "topk:0.1:no-ef", "topk:0.02", "topk:0.02:no-ef"].map((text) => {
    const compression = parseCompression(text);
    const label = compression.scheme !== "topk" ? text : `top-k ${compression.fraction}${compression.errorFeedback === false ? " without error feedback" : " + error feedback"}`;
    return { label, compression };
  }),
];

const points = (x: number) => (x * 100).toFixed(1);

interface Measured {
  readonly label: string;
  readonly bytesPerUpdate: number;
  readonly bytesPerRound: number;
  /** Final accuracy per seed. */
  readonly accuracy: readonly number[];
}

async function main(): Promise<void> {
  const load = os.loadavg()[0].toFixed(1);
  await initBackend("wasm", { log: () => {} });
  const split = await loadMnist();
  const spec = mlpSpec();
  const base = {
    spec,
    train: firstN(split.train, FORM.digits),
    test: split.test,
    clients: FORM.clients,
    rounds: FORM.rounds,
    partition: { kind: "iid" },
    rule: "fedavg",
    attack: { kind: "honest" },
    maliciousFraction: 0,
    usePolicy: false,
    evaluate: "last",
    ...TRAINING,
  } satisfies Omit<SimulationSettings, "seed">;

  const measured: Measured[] = [];
  for (const scheme of SCHEMES) {
    const accuracy: number[] = [];
    const files: number[] = [];
    const rounds: number[] = [];
    for (const seed of FORM.seeds) {
      log(`${scheme.label}, seed ${seed}`);
      const result = await simulate({ ...base, seed, encoding: { compression: scheme.compression } });
      accuracy.push(result.final.accuracy);
      for (const r of result.rounds) {
        files.push(...r.updateBytes!);
        rounds.push(r.updateBytes!.reduce((a, b) => a + b, 0));
      }
    }
    measured.push({ label: scheme.label, bytesPerUpdate: medianOf(files), bytesPerRound: medianOf(rounds), accuracy });
    log(`  ${medianOf(files)} bytes per update, accuracy ${accuracy.map(points).join(", ")}`);
  }

  const reference = measured[0];
  const rows = measured.map((m) => {
    const ratio = reference.bytesPerUpdate / m.bytesPerUpdate;
    // Accuracies are multiples of 1 / test size: rounding the difference keeps float noise out of the comparison.
    const difference = Math.round(medianOf(m.accuracy.map((a, i) => a - reference.accuracy[i])) * 1e6) / 1e6;
    const meets = m !== reference && ratio >= TARGET.ratio && difference >= -TARGET.points / 100;
    return {
      m,
      ratio,
      meets,
      cells: [
        m.label,
        m.bytesPerUpdate.toLocaleString("en"),
        m.bytesPerRound.toLocaleString("en"),
        `${ratio.toFixed(2)}x`,
        `${points(medianOf(m.accuracy))}%${m.accuracy.length > 1 ? ` (${points(Math.min(...m.accuracy))}-${points(Math.max(...m.accuracy))})` : ""}`,
        m === reference ? "" : `${difference >= 0 ? "+" : ""}${points(difference)}`,
        m === reference ? "" : meets ? "yes" : "no",
      ],
    };
  });
  const table = markdownTable(["scheme", "bytes / update", `bytes / round (${FORM.clients} clients)`, "fewer bytes", `accuracy after ${FORM.rounds} rounds`, "vs float32 (points)", `>= ${TARGET.ratio}x and >= -${TARGET.points} pts`], rows.map((r) => r.cells));
  const winners = rows.filter((r) => r.meets).map((r) => `${r.m.label} (${r.ratio.toFixed(1)}x)`);
  const verdict = winners.length
    ? `Target met: ${winners.join(", ")} ${winners.length === 1 ? "sends" : "send"} at least ${TARGET.ratio}x fewer bytes than float32 with accuracy within ${TARGET.points} points (median over seeds of the per-seed difference).`
    : `Target not met: no scheme sends ${TARGET.ratio}x fewer bytes with accuracy within ${TARGET.points} points of float32 in this run.`;
  const seedText = FORM.seeds.length > 1 ? `seeds ${FORM.seeds.join(", ")} (median, range in brackets; each seed shared by every scheme)` : `seed ${FORM.seeds[0]} (shared by every scheme)`;
  const markdown = [
    "## Update compression (lib/codec/compression.ts)",
    "",
    `Command: \`${COMMAND}\`.`,
    `Machine: ${machineLine()}; 1-minute load average ${load} when the run started.`,
    `Settings: ${spec.name} (${parameterCount(spec).toLocaleString("en")} parameters), ${FORM.clients} clients, IID partition of the first ${FORM.digits.toLocaleString("en")} MNIST training digits, ${FORM.rounds} rounds of FedAvg, ${TRAINING.epochs} local epoch per round (batch ${TRAINING.batchSize}, SGD, learning rate ${TRAINING.learningRate}), ${seedText}; accuracy on the ${split.test.n.toLocaleString("en")} held-out digits after the last round. Every update is encoded with the real codec and decoded by the aggregator's strict decoder; top-k clients carry their residual round to round unless marked "without error feedback". Bytes are whole update files (header and metadata included), median over clients and rounds.`,
    "",
    table,
    "",
    verdict,
    "",
    "f16 halves the bytes and i8 quarters the data (its header and per-tensor scales keep the file just under 4x); top-k stores an I32 index and an F32 value per kept coordinate, so fraction f costs about 2f of float32.",
  ].join("\n");
  console.log(`\n${table}\n\n${verdict}`);
  await writeSection("compression", markdown);
}

await main();
