// The participant's command line against a real `hardhat node` over JSON-RPC and the embedded
// store in a temp home: the task owner creates a task, a client joins with a permit, takes part
// in a round with `client run --once` (train, pin, commit, reveal), reads its status, and starts
// a withdrawal; wrong input, an unknown task, a closed round and a dead RPC give typed errors.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { JsonRpcProvider } from "ethers";
import { RoundNotOpenError, StakeTokenError } from "../../client/participant/errors.js";
import { journalPath, readJournal } from "../../client/participant/journal.js";
import { CoordinatorError, readReveals } from "../../lib/chain/coordinator.js";
import { RpcUnavailableError } from "../../lib/chain/rpc.js";
import { localAccount } from "../../lib/config.js";
import { AnchorFLError } from "../../lib/errors.js";
import { parseAttack } from "../../scripts/commands/client.js";
import { CommandOptionError } from "../../scripts/commands/task.js";
import { AnchorCoordinator__factory } from "../../types/ethers-contracts/index.js";
import { deployToNode, runCli, runCliError } from "../helpers/cli.js";
import { freePort, startHardhatNode, type RunningNode } from "../helpers/hardhat-node.js";

const ENTRY = path.join(import.meta.dirname, "..", "..", "scripts", "anchorfl.ts");

/** `anchorfl …` as a separate process (this Node 22 running tsx), with its combined output. */
function spawnClientProcess(args: string[]) {
  const child = spawn(process.execPath, ["--import", "tsx", ENTRY, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const onData = (d: Buffer) => {
    text += d.toString();
    for (const w of waiters.filter((x) => x.re.test(text))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    exit,
    output: () => text,
    waitFor: (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(text)) return resolve();
        waiters.push({ re, resolve });
        void exit.then((code) => reject(new Error(`client exited (${code}) before printing ${re}:\n${text}`)));
      }),
  };
}

describe("participant CLI against a hardhat node", function () {
  this.timeout(180_000);
  let node: RunningNode;
  let home: string;
  let coordinatorAddress: string;

  const cli = (...args: string[]) => runCli(["--rpc", node.url, "--home", home], args);

  const spawnClient = (args: string[]) => {
    const p = spawnClientProcess(["--rpc", node.url, "--home", home, ...args]);
    children.push(p.child);
    return p;
  };
  const children: ChildProcess[] = [];

  const cliError = (...args: string[]) => runCliError(cli, ...args);

  before(async () => {
    [node, home] = await Promise.all([startHardhatNode(), mkdtemp(path.join(tmpdir(), "anchorfl-client-cli-"))]);
    coordinatorAddress = await deployToNode(node.url, home);
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await node?.stop();
    await rm(home, { recursive: true, force: true });
  });

  it("creates a task, joins with a permit, takes part in a round with run --once, and shows the status", async () => {
    const client = localAccount(1).address;
    await cli("token", "mint", "--to", `${localAccount(0).address},${client}`, "--amount", "1000");
    const created = await cli("task", "create", "--min-stake", "10", "--reward", "5", "--fund", "50", "--bond", "5", "--max-participants", "1", "--commit-window", "120", "--reveal-window", "120", "--unbonding", "30", "--open");
    expect(created).to.match(/task 1 created/).and.match(/round 1 of task 1 is open for commits/);

    expect(await cli("--account", "1", "client", "join", "--task", "1", "--stake", "25")).to.equal("staked 25 tokens in task 1; your stake is now 25 tokens");
    const run = await cli("--account", "1", "client", "run", "--task", "1", "--once", "--shard", "3", "--of", "90", "--seed", "7", "--poll", "100");
    expect(run).to.match(/shard 3 of 90 \(iid\): 100 examples/);
    expect(run).to.match(/task 1 round 1: trained on 100 samples/).and.match(/committed 0x[0-9a-f]{64}/).and.match(/revealed update baf\w+ \(100 samples\)/);
    expect(run).to.match(/done: round 1 revealed$/);

    const provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true });
    const reveals = await readReveals(AnchorCoordinator__factory.connect(coordinatorAddress, provider), 1n, 1n);
    provider.destroy();
    expect(reveals.map((r) => [r.participant, r.numSamples])).to.deep.equal([[client, 100n]]);

    const status = await cli("--account", "1", "client", "status", "--task", "1");
    expect(status.split("\n")).to.deep.equal([
      `account ${client} in task 1`,
      "  stake 25 tokens (free 25, task minimum 10)",
      "  no pending withdrawal",
      "  last committed round 1: revealed",
      "  claimable rewards 0 tokens",
      "  current round 1: Aggregation",
    ]);
    expect(await cli("--account", "1", "client", "claim", "--task", "1")).to.equal("nothing to claim");
    expect(await cli("--account", "1", "client", "withdraw", "--task", "1", "--amount", "5")).to.match(/^withdrawal of 5 tokens requested; complete it with --complete after \d{4}-/);
  });

  it("a client process killed (SIGKILL) right after its commit reveals from its journal on restart", async () => {
    const account = localAccount(2).address;
    await cli("token", "mint", "--to", account, "--amount", "100");
    const created = await cli("task", "create", "--min-stake", "10", "--reward", "5", "--fund", "20", "--bond", "5", "--max-participants", "3", "--commit-window", "300", "--reveal-window", "300", "--open");
    expect(created).to.match(/task 2 created/);
    await cli("--account", "2", "client", "join", "--task", "2", "--stake", "20");

    const args = ["--account", "2", "client", "run", "--task", "2", "--shard", "1", "--of", "90", "--poll", "100"];
    const killed = spawnClient(args);
    // Commits stay open (1 of 3 slots taken), so the process is waiting for the reveal phase when killed.
    await killed.waitFor(/committed 0x/);
    killed.child.kill("SIGKILL");
    expect(await killed.exit).to.equal(null, "killed by the signal");

    const journal = async () => (await readJournal(journalPath(home, account), account)).entries.find((e) => e.taskId === "2")!;
    const entry = await journal();
    expect(entry.state).to.equal("committed");
    const provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true });
    await provider.send("evm_increaseTime", [301]);
    await provider.send("evm_mine", []);
    const restarted = await cli(...args, "--once");
    expect(restarted).to.match(/found an unrevealed commit in the journal/).and.match(/revealed update/).and.match(/done: round 1 revealed$/);
    const reveals = await readReveals(AnchorCoordinator__factory.connect(coordinatorAddress, provider), 2n, 1n);
    provider.destroy();
    expect(reveals.map((r) => [r.participant, r.updateDigest])).to.deep.equal([[account, entry.updateDigest]]);
    expect((await journal()).state).to.equal("revealed");
  });

  it("gives typed errors naming the cause: closed round, unknown task, no tokens, bad options, dead RPC", async () => {
    expect(await cliError("--account", "1", "client", "run", "--task", "1", "--once", "--of", "90")).to.be.instanceOf(RoundNotOpenError).and.have.property("message").match(/commits are closed \(phase Aggregation\)/);
    expect(await cliError("client", "status", "--task", "7")).to.be.instanceOf(CoordinatorError).and.have.property("message").match(/task 7 does not exist/);
    expect(await cliError("--account", "5", "client", "join", "--task", "1", "--stake", "10")).to.be.instanceOf(StakeTokenError).and.have.property("message").match(/holds 0/);
    expect(await cliError("client", "withdraw", "--task", "1")).to.be.instanceOf(CommandOptionError);
    expect(await cliError("client", "run", "--task", "1", "--dp-noise", "1")).to.be.instanceOf(CommandOptionError).and.have.property("message").match(/--dp-noise needs --clip/);
    expect(await cliError("client", "run", "--task", "1", "--attack", "scale:x")).to.be.instanceOf(AnchorFLError).and.have.property("message").match(/expected a number for lambda/);
    const dead = `http://127.0.0.1:${await freePort()}`;
    expect(await cliError("--rpc", dead, "client", "status", "--task", "1")).to.be.instanceOf(RpcUnavailableError).and.have.property("message").match(/cannot reach the RPC endpoint/);
  });

  it("maps the --attack aliases onto behaviours", () => {
    expect(parseAttack("none")).to.deep.equal({ kind: "honest" });
    expect(parseAttack("noise:1.0")).to.deep.equal({ kind: "gaussian", sigma: 1, mode: "replace" });
    expect(parseAttack("copy")).to.deep.equal({ kind: "free-ride", mode: "copy" });
    expect(parseAttack("malformed")).to.deep.equal({ kind: "malformed", corruption: "nan" });
    expect(parseAttack("ipm")).to.deep.equal({ kind: "ipm", epsilon: 0.5 });
    expect(parseAttack("scale:10")).to.deep.equal({ kind: "scale", lambda: 10 });
    expect(parseAttack("withhold")).to.deep.equal({ kind: "withhold" });
  });
});
