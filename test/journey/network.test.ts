// The README's process-by-process local network, run as a user would: a real `hardhat node`,
// then every step a separate `anchorfl` process sharing one data folder (deployment record,
// embedded IPFS store, journals). Three clients train on real digits, one of them flips the
// sign of its update; the aggregator finalizes the round and slashes it; `audit` and `verify`
// read the result back.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { localAccount } from "../../lib/config.js";
import { startHardhatNode, type RunningNode } from "../helpers/hardhat-node.js";

const exec = promisify(execFile);

describe("local network, process by process (README)", function () {
  this.timeout(600_000);
  let node: RunningNode;
  let env: NodeJS.ProcessEnv;

  const anchorfl = async (...args: string[]) => {
    try {
      const { stdout } = await exec("npx", ["tsx", "scripts/anchorfl.ts", ...args], { env, maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`anchorfl ${args.join(" ")} failed:\n${e.stdout ?? ""}\n${e.stderr ?? e.message}`);
    }
  };

  before(async () => {
    node = await startHardhatNode();
    const home = await mkdtemp(path.join(os.tmpdir(), "anchorfl-net-"));
    env = { ...process.env, ANCHORFL_HOME: home, ANCHORFL_RPC_URL: node.url, IPFS_API: "" };
  });
  after(async () => node?.stop());

  it("deploys, runs a round with three client processes and an aggregator, slashes the attacker, and audits", async () => {
    const { stdout: deployed } = await exec("npx", ["tsx", "scripts/deploy.ts", "--rpc", node.url], { env });
    expect(deployed).to.match(/chain 31337: AnchorCoordinator 0x[0-9a-fA-F]{40}/);

    const clients = [1, 2, 3].map((i) => localAccount(i).address);
    await anchorfl("token", "mint", "--to", [localAccount(0).address, ...clients].join(","), "--amount", "5000");
    const created = await anchorfl("task", "create", "--max-participants", "3", "--commit-window", "300", "--open");
    expect(created).to.match(/task 1 created/).and.match(/round 1 of task 1 is open/);
    await Promise.all([1, 2, 3].map((i) => anchorfl("--account", String(i), "client", "join", "--task", "1", "--stake", "50")));

    const runs = [1, 2, 3].map((i) =>
      anchorfl("--account", String(i), "client", "run", "--task", "1", "--once", "--shard", String(i - 1), "--of", "3", "--poll", "200", ...(i === 3 ? ["--attack", "sign-flip"] : [])),
    );
    const [aggregated, ...outputs] = await Promise.all([anchorfl("aggregate", "--task", "1", "--once", "--poll", "1"), ...runs]);
    for (const out of outputs) expect(out).to.match(/revealed update/);
    expect(aggregated).to.match(/2 accepted, 1 outlier/);

    const audit = JSON.parse(await anchorfl("audit", "--task", "1", "--round", "1", "--json"));
    const round = audit.rounds[0];
    expect(round.phase).to.equal("Finalized");
    expect(round.slashes.map((s: { participant: string }) => s.participant)).to.deep.equal([clients[2]]);
    expect(round.reveals).to.have.length(3);

    const verified = await anchorfl("verify", "--task", "1", "--round", "1");
    expect(verified).to.match(/match/).and.not.match(/DIFFERS/);
  });
});
