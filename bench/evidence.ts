// Evidence for the learning side of AnchorFL, from one command: learning quality (centralized
// vs FedAvg on IID and Dirichlet partitions), the robustness matrix (rules x attacks, final
// test accuracy) and the slashing quality of the default policy. Everything runs in memory
// through lib/simulation (real MNIST digits, real tfjs training, the real behaviours, policy
// and rules); the chain is left out because anchoring changes no number here.
//
//   npx tsx bench/evidence.ts --quick    a few minutes: MLP, small data, few rounds, 20% attackers
//   npx tsx bench/evidence.ts            the full form: all 9,000 digits, 20 rounds, MLP and CNN, 20% and 40%
//
// Prints the tables and writes the sections "learning" and "robustness" of docs/BENCHMARKS.md.
import os from "node:os";
import { formatBehaviour, parseBehaviour, type Behaviour } from "../client/attacks/behaviours.js";
import { subset, type Dataset } from "../client/data/dataset.js";
import { loadMnist } from "../client/data/mnist.js";
import { parsePartitionSpec } from "../client/data/partition.js";
import { initBackend } from "../client/model/backend.js";
import { cnnSpec, mlpSpec, type ModelSpec } from "../client/model/spec.js";
import { BreakdownConditionError, type RawParams } from "../lib/aggregation/index.js";
import { POLICY_NAME } from "../lib/aggregator/policy.js";
import { DEFAULT_RULE, DEFAULT_RULE_PARAMS } from "../lib/aggregator/round.js";
import { maliciousCount, simulate, slashingCounts, type SimulationResult, type SimulationSettings } from "../lib/simulation/simulate.js";
import { machineLine, markdownTable, writeSection } from "./report.js";

const QUICK = process.argv.includes("--quick");
const COMMAND = `npx tsx bench/evidence.ts${QUICK ? " --quick" : ""}`;
const SEED = 1;
const TRAINING = { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: "sgd" } as const;

const FORM = QUICK
  ? { learning: { clients: 10, rounds: 5, digits: 2000 }, matrix: { clients: 15, rounds: 4, digits: 1500, fractions: [0.2] }, specs: [mlpSpec()] }
  : { learning: { clients: 10, rounds: 20, digits: 9000 }, matrix: { clients: 20, rounds: 10, digits: 9000, fractions: [0.2, 0.4] }, specs: [mlpSpec(), cnnSpec()] };

const ATTACKS: readonly Behaviour[] = ["label-flip", "sign-flip", "scale:10", "gaussian:0.1", "alie", "ipm:0.5", "free-ride:zero"].map(parseBehaviour);
const RULES = ["fedavg", "median", "trimmed-mean", "multi-krum", "bulyan", "geometric-median", "norm-clipping"];
/** The rules that need f get the true number of attackers: the most favourable setting for them. */
const ruleParams = (rule: string, f: number): RawParams => (rule === "multi-krum" || rule === "bulyan" ? { f } : {});

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
const firstN = (ds: Dataset, n: number) => subset(ds, Array.from({ length: Math.min(n, ds.n) }, (_, i) => i));

/** First round whose accuracy reaches `target`, or "> R". */
function roundsToReach(result: SimulationResult, target: number): string {
  const hit = result.rounds.find((r) => r.accuracy >= target);
  return hit ? String(hit.round) : `> ${result.rounds.length}`;
}

async function learning(train: Dataset, test: Dataset): Promise<string> {
  const { clients, rounds, digits } = FORM.learning;
  const pool = firstN(train, digits);
  const sections: string[] = [];
  for (const spec of FORM.specs) {
    const base = { spec, train: pool, test, rounds, rule: "fedavg", attack: { kind: "honest" }, maliciousFraction: 0, usePolicy: false, seed: SEED, ...TRAINING } satisfies Omit<SimulationSettings, "clients" | "partition">;
    // Centralized = one client holding every digit: the same epochs over the same data per round.
    const runs: [string, SimulationResult][] = [["centralized", await simulate({ ...base, clients: 1, partition: { kind: "iid" } })]];
    for (const p of ["iid", "dirichlet:0.5", "dirichlet:0.1"]) {
      log(`learning ${spec.name} ${p}`);
      runs.push([`FedAvg ${p}`, await simulate({ ...base, clients, partition: parsePartitionSpec(p) })]);
    }
    const central = runs[0][1].rounds.at(-1)!.accuracy;
    const rows = runs.map(([name, r]) => [name, ...r.rounds.map((x) => pct(x.accuracy)), roundsToReach(r, 0.95 * central), roundsToReach(r, 0.97 * central)]);
    const table = markdownTable(["setting", ...runs[0][1].rounds.map((r) => `round ${r.round}`), `rounds to 95% of ${pct(central)}`, "rounds to 97%"], rows);
    console.log(`\n${spec.name}\n${table}`);
    sections.push(`### ${spec.name}\n\n${table}`);
  }
  return [
    "## Learning quality (lib/simulation)",
    "",
    `Command: \`${COMMAND}\`. Machine: ${machineLine()}; 1-minute load average ${os.loadavg()[0].toFixed(1)} at the start.`,
    `Settings: ${clients} clients sharing ${pool.n.toLocaleString("en")} training digits of the embedded MNIST split (split seed 0), test accuracy on the 1,000 held-out digits after each round; every round each client trains ${TRAINING.epochs} epoch (batch ${TRAINING.batchSize}, SGD, learning rate ${TRAINING.learningRate}) and FedAvg averages the deltas by sample count; seed ${SEED}. Centralized is one client holding all the digits with the same epochs per round. The last two columns count rounds until the accuracy reaches 95% / 97% of centralized's final accuracy.`,
    "",
    ...sections,
  ].join("\n");
}

interface Cell {
  readonly accuracy?: number;
  readonly skipped?: string;
  readonly result?: SimulationResult;
}

async function cell(settings: SimulationSettings): Promise<Cell> {
  try {
    const result = await simulate(settings);
    return { accuracy: result.rounds.at(-1)!.accuracy, result };
  } catch (error) {
    if (error instanceof BreakdownConditionError) return { skipped: "n/a" };
    throw error;
  }
}

async function robustness(train: Dataset, test: Dataset): Promise<string> {
  const { clients, rounds, digits, fractions } = FORM.matrix;
  const pool = firstN(train, digits);
  const spec: ModelSpec = mlpSpec();
  const base = { spec, train: pool, test, clients, rounds, partition: { kind: "iid" }, seed: SEED, ...TRAINING } satisfies Partial<SimulationSettings>;
  const columns: { label: string; attack: Behaviour; fraction: number }[] = [];
  for (const fraction of fractions) {
    columns.push({ label: `none (f = ${maliciousCount(clients, fraction)})`, attack: { kind: "honest" }, fraction });
    for (const attack of ATTACKS) columns.push({ label: `${formatBehaviour(attack)} ${pct(fraction)}`, attack, fraction });
  }
  const rows: string[][] = [];
  const accuracy = new Map<string, number | undefined>();
  for (const rule of RULES) {
    const row = [rule];
    for (const c of columns) {
      log(`matrix ${rule} ${c.label}`);
      const f = maliciousCount(clients, c.fraction);
      const out = await cell({ ...base, rule, ruleParams: ruleParams(rule, f), attack: c.attack, maliciousFraction: c.attack.kind === "honest" ? 0 : c.fraction, usePolicy: false });
      accuracy.set(`${rule}|${c.attack.kind === "honest" ? "none" : formatBehaviour(c.attack)}|${c.fraction}`, out.accuracy);
      row.push(out.skipped ?? pct(out.accuracy!));
    }
    rows.push(row);
  }

  // The deployed aggregator: the policy removes what it slashes, then the default rule.
  const deployed = async (partition: string, attack: Behaviour, fraction: number) =>
    cell({ ...base, partition: parsePartitionSpec(partition), rule: DEFAULT_RULE, ruleParams: DEFAULT_RULE_PARAMS, attack, maliciousFraction: attack.kind === "honest" ? 0 : fraction, usePolicy: true });
  const deployedRow = [`${DEFAULT_RULE} + policy (deployed)`];
  const slashRows: string[][] = [];
  for (const partition of ["iid", "dirichlet:0.5"]) {
    for (const c of columns) {
      log(`policy ${partition} ${c.label}`);
      const out = await deployed(partition, c.attack, c.fraction);
      if (partition === "iid") deployedRow.push(pct(out.accuracy!));
      if (c.fraction !== fractions[0]) continue;
      const s = slashingCounts(out.result!);
      const slashed = s.truePositives + s.falsePositives;
      slashRows.push([
        partition,
        c.attack.kind === "honest" ? "none" : formatBehaviour(c.attack),
        `${s.truePositives} / ${s.maliciousTotal}`,
        slashed === 0 ? "–" : pct(s.truePositives / slashed),
        s.maliciousTotal === 0 ? "–" : pct(s.truePositives / s.maliciousTotal),
        `${s.falsePositives} (${s.honestSlashed.length} clients)`,
        pct(out.accuracy!),
      ]);
    }
  }
  rows.push(deployedRow);
  const matrix = markdownTable(["rule", ...columns.map((c) => c.label)], rows);
  const slashing = markdownTable(["partition", "attack", "attacker-rounds slashed", "precision", "recall", "honest client-rounds slashed", "final accuracy"], slashRows);
  console.log(`\n${matrix}\n\n${slashing}`);
  return [
    "## Robustness matrix and slashing quality (lib/simulation)",
    "",
    `Command: \`${COMMAND}\`. Machine: ${machineLine()}; 1-minute load average ${os.loadavg()[0].toFixed(1)} at the start.`,
    `Settings: ${spec.name}, ${clients} clients, IID partition of ${pool.n.toLocaleString("en")} training digits, ${rounds} rounds, ${TRAINING.epochs} local epoch per round (batch ${TRAINING.batchSize}, SGD, learning rate ${TRAINING.learningRate}), seed ${SEED}; cells are the final test accuracy on the 1,000 held-out digits. The attackers are the last round(fraction x n) clients and collude: ALIE (z from the paper's formula for n and f) and IPM see the round's honest updates. multi-krum and bulyan get the true f; trimmed-mean drops 20% at each end; norm-clipping clips to the median norm. "n/a": the rule's breakdown condition fails at this n and f (bulyan needs n >= 4f + 3). The rows above the last aggregate every update; the last row is the deployed aggregator: the ${POLICY_NAME} policy removes what it slashes, then ${DEFAULT_RULE} (beta ${DEFAULT_RULE_PARAMS.beta}) aggregates the rest.`,
    "",
    matrix,
    "",
    `### Slashing quality of the ${POLICY_NAME} policy (${pct(fractions[0])} attackers, summed over ${rounds} rounds)`,
    "",
    "Precision: the share of slashed client-rounds that were attackers; recall: the share of attacker-rounds slashed. The target is no honest client slashed on IID and Dirichlet(0.5) data; the policy is conservative by design (it slashes only gross outliers: wrong direction, far too large, zero, copies), so subtle attacks (label flip, ALIE, IPM) are left to the robust rule and count against its recall.",
    "",
    slashing,
    "",
    "### Against the literature",
    "",
    literature((rule, attack) => accuracy.get(`${rule}|${attack}|${fractions[0]}`)),
  ].join("\n");
}

/** Prose comparing the matrix with the published findings, quoting this run's numbers. */
function literature(acc: (rule: string, attack: string) => number | undefined): string {
  const at = (rule: string, attack: string) => {
    const a = acc(rule, attack);
    return a === undefined ? "n/a" : pct(a);
  };
  const loss = (rule: string, attack: string) => {
    const a = acc(rule, attack);
    const clean = acc(rule, "none");
    return a === undefined || clean === undefined ? undefined : clean - a;
  };
  const drop = (rule: string, attack: string) => {
    const d = loss(rule, attack);
    return d === undefined ? "n/a" : `${(100 * d).toFixed(1)} points`;
  };
  const subtle = ["multi-krum", "bulyan", "geometric-median", "median"].flatMap((r) => ["alie", "ipm:0.5"].map((a) => loss(r, a) ?? 0));
  // One test digit is 0.1 point: below 2 points a single seed cannot tell an attack from noise.
  const verdict =
    Math.max(...subtle) < 0.02
      ? "Every one of these losses is under 2 points, within the noise of one seed on 1,000 test digits: this run does not reproduce the papers' degradation, which they measure over many more rounds on converged models."
      : "The largest of these losses are beyond the noise of one seed on 1,000 test digits, in the direction the papers report.";
  return [
    `Blanchard et al. (2017, Krum) and Yin et al. (2018, median and trimmed mean) show the mean collapsing under a single arbitrary update while the robust rules keep their accuracy. Here FedAvg goes from ${at("fedavg", "none")} without attack to ${at("fedavg", "sign-flip")} under sign flip and ${at("fedavg", "scale:10")} under x10 scaling, while the median holds ${at("median", "sign-flip")} / ${at("median", "scale:10")} and multi-krum ${at("multi-krum", "sign-flip")} / ${at("multi-krum", "scale:10")}.`,
    `Baruch et al. (2019, "A little is enough") and Xie et al. (2020, inner-product manipulation) show that small, coordinated shifts inside the honest spread get through distance-based rules. Here ALIE costs multi-krum ${drop("multi-krum", "alie")} and geometric median ${drop("geometric-median", "alie")}; IPM (epsilon 0.5) costs multi-krum ${drop("multi-krum", "ipm:0.5")}, bulyan ${drop("bulyan", "ipm:0.5")} and the median ${drop("median", "ipm:0.5")}. ${verdict}`,
    "Where our setting differs: a small MLP (101,770 parameters) rather than the papers' CNNs and ResNets, 1,000 test digits (one digit is 0.1 point, so differences under about 2 points are within seed noise), few rounds from a random start (the papers compare converged models, so our absolute accuracies are lower and an attack's damage compounds over fewer steps), all colluders submitting the same crafted vector (ALIE's identical copies are also caught by the policy's near-copy test, which the papers' aggregators do not have), and one seed per cell.",
  ].join("\n\n");
}

async function main(): Promise<void> {
  const backend = await initBackend(undefined, { log });
  log(`backend ${backend.name}; ${QUICK ? "quick" : "full"} form`);
  const { train, test } = await loadMnist();
  const learningSection = await learning(train, test);
  await writeSection("learning", learningSection);
  const robustnessSection = await robustness(train, test);
  await writeSection("robustness", robustnessSection);
}

await main();
