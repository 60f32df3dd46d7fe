// The README's first command, reduced: the demo runs end to end as a separate process (in-process
// chain, embedded store, real training, a malicious client slashed, rewards claimed, audit written).
import { expect } from "chai";
import { execFile } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

describe("demo (npm run demo, reduced)", function () {
  this.timeout(300_000);

  it("trains, slashes the attacker, pays the honest clients and writes the audit trail", async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), "anchorfl-demo-"));
    const { stdout } = await run("npx", ["tsx", "scripts/demo.ts", "--clients", "4", "--malicious", "1", "--attack", "sign-flip", "--rounds", "2", "--home", home], {
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).to.match(/━━ round 1 ━━/).and.match(/━━ round 2 ━━/);
    const slashed = stdout.split("\n").filter((l) => /round \d: client #4 .*\(sign-flip\) lost/.test(l));
    expect(slashed, stdout).to.have.length(2);
    expect(stdout).to.not.match(/client #[123] .* lost/);
    const accuracies = [...stdout.matchAll(/^accuracy (\d+\.\d)%/gm)].map((m) => Number(m[1]));
    expect(accuracies).to.have.length(2);
    expect(accuracies[1]).to.be.above(60);
    const audit = JSON.parse(await readFile(path.join(home, "audit", "task-1.json"), "utf8"));
    expect(audit.rounds.length).to.equal(2);
  });
});

describe("demo options", function () {
  this.timeout(120_000);

  it("refuses a rule's missing or unknown parameter before any training", async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), "anchorfl-demo-"));
    const demo = (...args: string[]) => run("npx", ["tsx", "scripts/demo.ts", "--home", home, ...args]).then(
      () => expect.fail("the demo should have refused"),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    const missing = await demo("--rule", "krum");
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.match(/krum: expected parameter f/);
    expect(missing.stdout).to.not.match(/━━ round 1/);
    const unknown = await demo("--rule", "multi-krum", "--rule-param", "f=1,g=2");
    expect(unknown.stderr).to.match(/unknown parameter g/);
  });
});
