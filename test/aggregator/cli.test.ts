// The aggregator's command line against a real `hardhat node` over JSON-RPC and the embedded
// store in a temp home: a task owner creates a task, a client takes part with `client run
// --once`, `aggregate --once --eval` bonds, judges, submits and finalizes, `verify` reproduces
// the round; `aggregate-files` writes a model offline; bad options fail by name.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { RuleParameterError } from "../../lib/aggregation/index.js";
import { VerifyError } from "../../lib/aggregator/verify.js";
import { PolicyParameterError } from "../../lib/aggregator/policy.js";
import { AggregatorError } from "../../lib/aggregator/service.js";
import { RootDataError } from "../../lib/aggregator/state-fltrust.js";
import { decodeUpdate } from "../../lib/codec/update-file.js";
import { localAccount } from "../../lib/config.js";
import { sha256Digest } from "../../lib/digest.js";
import { CommandOptionError } from "../../scripts/commands/task.js";
import { deployToNode, runCli, runCliError } from "../helpers/cli.js";
import { startHardhatNode, type RunningNode } from "../helpers/hardhat-node.js";
import { PARTICIPANTS, baseBytes, roundInputs } from "./round-fixture.js";

describe("aggregator CLI against a hardhat node", function () {
  this.timeout(180_000);
  let node: RunningNode;
  let home: string;

  const cli = (...args: string[]) => runCli(["--rpc", node.url, "--home", home], args);

  const cliError = (...args: string[]) => runCliError(cli, ...args);

  before(async () => {
    [node, home] = await Promise.all([startHardhatNode(), mkdtemp(path.join(tmpdir(), "anchorfl-aggregate-cli-"))]);
    await deployToNode(node.url, home);
  });

  after(async () => {
    await node?.stop();
    await rm(home, { recursive: true, force: true });
  });

  it("aggregate --once --eval bonds, judges, submits and finalizes a round; verify reproduces it exactly", async () => {
    const client = localAccount(1).address;
    await cli("token", "mint", "--to", `${localAccount(0).address},${client}`, "--amount", "1000");
    expect(await cli("task", "create", "--min-stake", "10", "--reward", "5", "--fund", "50", "--bond", "5", "--max-participants", "1", "--commit-window", "120", "--reveal-window", "120", "--open")).to.match(/task 1 created/);
    await cli("--account", "1", "client", "join", "--task", "1", "--stake", "25");
    expect(await cli("--account", "1", "client", "run", "--task", "1", "--once", "--shard", "3", "--of", "90", "--seed", "7", "--poll", "100")).to.match(/done: round 1 revealed$/);

    expect(await cliError("verify", "--task", "1", "--round", "1")).to.be.instanceOf(VerifyError).and.have.property("message").match(/round 1 is not finalized \(phase Aggregation\)/);
    const out = await cli("aggregate", "--task", "1", "--once", "--eval", "--poll", "1");
    expect(out).to.match(/bonded 5000000000000000000 token units as aggregator/);
    expect(out).to.match(/task 1 round 1: 1 committed, 1 revealed, 1 file\(s\) fetched, 0 unavailable \(\d+ ms\); aggregating with trimmed-mean/);
    expect(out).to.match(/task 1 round 1: 1 accepted; 0 slashed; model 0x[0-9a-f]{64}, accuracy 0\.\d+ on mnist-test; gas \d+; finalized \(1 vote\(s\)\)/);
    expect(await cli("aggregate", "--task", "1", "--once")).to.match(/task 1 round 1: already-submitted \(round Finalized\)/);

    const verified = await cli("verify", "--task", "1", "--round", "1", "--eval");
    expect(verified).to.match(/model: match 0x/).and.match(/report: match/).and.match(/slashes: match \(none\)/);
    expect(verified).to.match(/evaluation \(approximate, training backend, tolerance 0\.01\): match/);
    expect(verified.split("\n").at(-1)).to.equal("verified: the round reproduces exactly");
    expect(process.exitCode ?? 0).to.equal(0);
  });

  it("aggregate-files writes the model offline and prints each file's evidence", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "anchorfl-files-"));
    try {
      const inputs = roundInputs();
      const names: string[] = [];
      for (const i of [0, 1, 2, 3, 6]) {
        const r = inputs.reveals.find((x) => x.participant === PARTICIPANTS[i])!;
        const name = path.join(dir, `client-${i}.safetensors`);
        await writeFile(name, (inputs.files.get(r.updateDigest) as { bytes: Uint8Array }).bytes);
        names.push(name);
      }
      await writeFile(path.join(dir, "base.safetensors"), baseBytes);
      const outFile = path.join(dir, "out.safetensors");
      const printed = await cli("aggregate-files", ...names, "--rule", "multi-krum", "--f", "1", "--base", path.join(dir, "base.safetensors"), "--out", outFile);
      const bytes = new Uint8Array(await readFile(outFile));
      expect(decodeUpdate(bytes).metadata.kind).to.equal("model");
      expect(printed).to.include(`model written to ${outFile}: ${bytes.length} bytes, digest ${sha256Digest(bytes)}`);
      expect(printed).to.match(/client-6\.safetensors: left out, score/, "multi-krum leaves the sign flip out");
      expect(await cliError("aggregate-files", ...names, "--rule", "krum", "--out", outFile)).to.be.instanceOf(RuleParameterError).and.have.property("message").match(/expected parameter f/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses bad options by name", async () => {
    expect(await cliError("aggregate", "--task", "1", "--policy", "normFactor")).to.be.instanceOf(CommandOptionError).and.have.property("message").match(/--policy must be key=value/);
    expect(await cliError("aggregate", "--task", "1", "--policy", "nromFactor=3", "--once")).to.be.instanceOf(PolicyParameterError);
    expect(await cliError("aggregate", "--task", "1", "--eval", "cifar")).to.be.instanceOf(CommandOptionError).and.have.property("message").match(/--eval supports mnist-test/);
    expect(await cliError("aggregate", "--task", "1", "--rule", "fltrust", "--root-data", "mnist-root:x:10", "--once")).to.be.instanceOf(RootDataError).and.have.property("message").match(/mnist-root:<seed>:<size>/);
    expect(await cliError("aggregate", "--task", "1", "--server-lr", "0.1", "--once")).to.be.instanceOf(AggregatorError).and.have.property("message").match(/without a server optimiser/);
    expect(await cliError("aggregate", "--task", "1", "--optimizer", "adam", "--once")).to.be.instanceOf(RuleParameterError).and.have.property("message").match(/unknown server optimiser "adam"/);
    expect(await cliError("aggregate", "--task", "1", "--rule", "nope", "--once")).to.be.instanceOf(RuleParameterError).and.have.property("message").match(/unknown rule "nope"/);
  });
});
