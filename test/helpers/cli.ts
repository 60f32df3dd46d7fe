// Helpers for the in-process CLI tests: run one `anchorfl …` command line with a fresh program
// (as a new process would have), expect one to fail, and deploy the contracts to a test node
// with the deployment recorded where the commands look for it.
import { expect } from "chai";
import { JsonRpcProvider } from "ethers";
import { localAccount, writeDeployment } from "../../lib/config.js";
import { buildProgram } from "../../scripts/commands/program.js";
import { AnchorCoordinator__factory, DemoToken__factory } from "../../types/ethers-contracts/index.js";

export async function runCli(globalArgs: readonly string[], args: readonly string[]): Promise<string> {
  const program = buildProgram().exitOverride();
  const out: string[] = [];
  const original = console.log;
  console.log = (...parts: unknown[]) => out.push(parts.join(" "));
  try {
    await program.parseAsync([...globalArgs, ...args], { from: "user" });
  } finally {
    console.log = original;
  }
  return out.join("\n");
}

/** Runs a command line that must fail; returns its error. */
export async function runCliError(cli: (...args: string[]) => Promise<string>, ...args: string[]): Promise<Error> {
  return cli(...args).then(
    (out) => expect.fail(`expected ${args.join(" ")} to fail, it printed:\n${out}`),
    (e: unknown) => e as Error,
  );
}

/** Deploys DemoToken and AnchorCoordinator from Hardhat account 0 and records them in `home`; returns the coordinator's address. */
export async function deployToNode(url: string, home: string): Promise<string> {
  const provider = new JsonRpcProvider(url, undefined, { staticNetwork: true, cacheTimeout: -1 });
  try {
    const deployer = localAccount(0, provider);
    const token = await new DemoToken__factory(deployer).deploy(deployer.address);
    await token.waitForDeployment();
    const coordinator = await new AnchorCoordinator__factory(deployer).deploy();
    const receipt = await coordinator.deploymentTransaction()!.wait();
    const address = await coordinator.getAddress();
    await writeDeployment(home, { chainId: "31337", coordinator: address, token: await token.getAddress(), deployBlock: receipt!.blockNumber, deployedAt: new Date().toISOString() });
    return address;
  } finally {
    provider.destroy();
  }
}
