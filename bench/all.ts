// Every benchmark in one run, each in its own process (so one's memory and JIT state cannot
// colour the next), in the order of docs/BENCHMARKS.md. `--quick` runs each that has one in its reduced
// form (about 30 minutes on 2 cores instead of several hours; gas, training and aggregation take a few
// minutes and always run in full); each script rewrites its own sections.
//   npx tsx bench/all.ts [--quick] [--only name,name]
import { spawnSync } from "node:child_process";

const quick = process.argv.includes("--quick");
const onlyAt = process.argv.indexOf("--only");
const only = onlyAt > 0 ? new Set(process.argv[onlyAt + 1]?.split(",")) : undefined;

/** Script name → its arguments in the reduced form (full form: none). */
const BENCHES: readonly (readonly [string, readonly string[]])[] = [
  ["gas", []],
  ["training", []],
  ["aggregation", []],
  ["evidence", ["--quick"]],
  ["anchoring", ["--quick"]],
  ["compression", ["--quick"]],
  ["detection", ["--quick"]],
  ["swarm", ["--rounds", "2"]],
];

const unknown = [...(only ?? [])].filter((name) => !BENCHES.some(([b]) => b === name));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")} (known: ${BENCHES.map(([b]) => b).join(", ")})`);
  process.exit(2);
}

const timings: string[] = [];
for (const [name, reduced] of BENCHES) {
  if (only && !only.has(name)) continue;
  const args = ["tsx", `bench/${name}.ts`, ...(quick ? reduced : [])];
  console.log(`\n=== bench/${name}.ts ${quick ? reduced.join(" ") : ""}`);
  const started = Date.now();
  const run = spawnSync("npx", args, { stdio: "inherit" });
  const seconds = Math.round((Date.now() - started) / 1000);
  timings.push(`${name}: ${run.status === 0 ? "ok" : `FAILED (exit ${run.status ?? run.signal})`} in ${seconds} s`);
  if (run.status !== 0) {
    console.error(timings.join("\n"));
    process.exit(1);
  }
}
console.log(`\n${timings.join("\n")}`);
