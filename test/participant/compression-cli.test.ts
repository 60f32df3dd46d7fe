// The compression flags end to end through the command line against a real `hardhat node`:
// `task create --compression topk:0.1` binds the option into the spec, `client run --once` sends
// a top-k update and keeps its residual next to the journal, `aggregate --once` accepts it, and
// `verify` reproduces the round exactly from the compressed file; a bad flag fails by name.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { JsonRpcProvider } from "ethers";
import { readReveals } from "../../lib/chain/coordinator.js";
import { AnchorCoordinator__factory } from "../../types/ethers-contracts/index.js";
import { readDeployment, localAccount } from "../../lib/config.js";
import { TaskOptionsError } from "../../lib/protocol/options.js";
import { EmbeddedStore } from "../../lib/store/index.js";
import { decodeUpdate } from "../../lib/codec/update-file.js";
import { flatten } from "../../lib/tensors.js";
import { mlpSpec, modelShapes } from "../../client/model/spec.js";
import { deployToNode, runCli, runCliError } from "../helpers/cli.js";
import { startHardhatNode, type RunningNode } from "../helpers/hardhat-node.js";

describe("compression through the command line against a hardhat node", function () {
  this.timeout(180_000);
  let node: RunningNode;
  let home: string;

  const cli = (...args: string[]) => runCli(["--rpc", node.url, "--home", home], args);

  before(async () => {
    [node, home] = await Promise.all([startHardhatNode(), mkdtemp(path.join(tmpdir(), "anchorfl-compression-cli-"))]);
    await deployToNode(node.url, home);
  });

  after(async () => {
    await node?.stop();
    await rm(home, { recursive: true, force: true });
  });

  it("task create --compression topk:0.1, client run, aggregate and verify", async () => {
    expect(await runCliError(cli, "task", "create", "--compression", "topk:2")).to.be.instanceOf(TaskOptionsError).and.have.property("message").match(/fraction must be a number in \(0, 1\]/);
    const client = localAccount(1).address;
    await cli("token", "mint", "--to", `${localAccount(0).address},${client}`, "--amount", "1000");
    const flags = ["--min-stake", "10", "--reward", "5", "--fund", "50", "--bond", "5", "--max-participants", "1", "--commit-window", "120", "--reveal-window", "120"];
    expect(await cli("task", "create", ...flags, "--compression", "topk:0.1", "--open")).to.match(/task 1 created/);
    await cli("--account", "1", "client", "join", "--task", "1", "--stake", "25");
    expect(await cli("--account", "1", "client", "run", "--task", "1", "--once", "--shard", "3", "--of", "90", "--seed", "7", "--poll", "100")).to.match(/done: round 1 revealed$/);
    expect((await readdir(path.join(home, "journal"))).filter((f) => f.includes(".residual-31337-"))).to.have.length(1);

    const out = await cli("aggregate", "--task", "1", "--once", "--poll", "1");
    expect(out).to.match(/task 1 round 1: 1 accepted; 0 slashed; model 0x[0-9a-f]{64}; gas \d+; finalized \(1 vote\(s\)\)/);
    const verified = await cli("verify", "--task", "1", "--round", "1");
    expect(verified.split("\n").at(-1)).to.equal("verified: the round reproduces exactly");

    // The revealed file is a top-k file of 10% of the model's values.
    const provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true });
    const store = await EmbeddedStore.open({ dataDir: path.join(home, "ipfs") });
    try {
      const coordinator = AnchorCoordinator__factory.connect((await readDeployment(home, 31337n)).coordinator, provider);
      const [reveal] = await readReveals(coordinator, 1n, 1n);
      const bytes = await store.get({ digest: reveal.updateDigest, contentRoot: reveal.contentRoot });
      const file = decodeUpdate(bytes, { expected: modelShapes(mlpSpec()), compression: { scheme: "topk", fraction: 0.1 } });
      expect(file.metadata.compression).to.equal("topk");
      expect(flatten(file.tensors).filter((x) => x !== 0).length).to.be.at.most(10_177);
      expect(bytes.length).to.be.below(90_000);
    } finally {
      await store.close();
      provider.destroy();
    }
  });
});
