// Runs the whole test suite (Solidity tests, then mocha tests) through `hardhat test` and ends
// with one line `N passed, N failed, N skipped`, which CI reads. Hardhat's own summary counts
// pending (skipped) mocha tests as passing, so they are subtracted here.
// Extra arguments are passed to `hardhat test` (e.g. `npm test -- mocha test/lib/*.test.ts`).
import { spawn } from "node:child_process";
import { stripVTControlCharacters } from "node:util";

const child = spawn("npx", ["hardhat", "test", ...process.argv.slice(2)], {
  stdio: ["inherit", "pipe", "inherit"],
});
let output = "";
child.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  output += chunk.toString();
  if (output.length > 4_000_000) output = output.slice(-2_000_000);
});
child.on("close", (code) => {
  const plain = stripVTControlCharacters(output);
  const count = (re) => {
    const hits = [...plain.matchAll(re)];
    return hits.length === 0 ? 0 : Number(hits[hits.length - 1][1]);
  };
  const passing = count(/^\s*(\d+) passing/gm);
  const failing = count(/^\s*(\d+) failing/gm);
  const pending = [...plain.matchAll(/^\s*(\d+) pending/gm)].reduce((s, m) => s + Number(m[1]), 0);
  const sawSummary = /^\s*\d+ passing/m.test(plain);
  const failed = failing + (code !== 0 && failing === 0 ? 1 : 0);
  if (!sawSummary && code !== 0) console.log("hardhat test ended before printing a summary");
  console.log(`${Math.max(0, passing - pending)} passed, ${failed} failed, ${pending} skipped`);
  process.exit(code ?? 1);
});
