// Deploys the DemoToken and the AnchorCoordinator with Ignition and records their addresses
// per chain id in <home>/deployments/<chainId>.json, where every other tool finds them.
//   npm run deploy                          # to `npm run node` on 127.0.0.1:8545 (network "localhost")
//   npm run deploy -- --rpc http://127.0.0.1:8555   # a local node on another port
//   npm run deploy -- --network remote      # ANCHORFL_RPC_URL + ANCHORFL_PRIVATE_KEY (env or keystore)
import { rm } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Command } from "commander";
import { network } from "hardhat";
import { resolveSettings, writeDeployment, LOCAL_CHAIN_ID, type Deployment } from "../lib/config.js";
import AnchorFLModule from "../ignition/modules/AnchorFL.js";

type Connection = Awaited<ReturnType<typeof network.create>>;

/** Deploys through an existing Hardhat network connection (the demo passes the in-process one). */
export async function deployAnchorFL(connection: Connection, home: string, networkName: string): Promise<Deployment> {
  const chainId = (await connection.ethers.provider.getNetwork()).chainId;
  if (chainId === LOCAL_CHAIN_ID && networkName !== "default") {
    // A restarted local node has lost the contracts Ignition's journal remembers: start afresh.
    await rm(path.join(import.meta.dirname, "..", "ignition", "deployments", `chain-${chainId}`), { recursive: true, force: true });
  }
  const { coordinator, token } = await connection.ignition.deploy(AnchorFLModule, { displayUi: false });
  const receipt = await coordinator.deploymentTransaction()?.wait();
  const deployBlock = receipt?.blockNumber ?? (await connection.ethers.provider.getBlockNumber());
  const deployment: Deployment = {
    chainId: chainId.toString(),
    coordinator: await coordinator.getAddress(),
    token: await token.getAddress(),
    deployBlock,
    deployedAt: new Date().toISOString(),
  };
  if (networkName !== "default") await writeDeployment(home, deployment);
  return deployment;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const options = new Command("deploy")
    .option("--network <name>", "Hardhat network from hardhat.config.ts", "localhost")
    .option("--rpc <url>", "the node's URL, for a local node on another port (network localhost only)")
    .option("--home <dir>", "data folder where the deployment is recorded (env ANCHORFL_HOME)")
    .parse()
    .opts<{ network: string; rpc?: string; home?: string }>();
  const settings = resolveSettings(process.env, options.home ? { home: options.home } : {});
  const connection = await network.create({
    network: options.network,
    ...(options.rpc && options.network === "localhost" ? { override: { url: options.rpc } } : {}),
  });
  const d = await deployAnchorFL(connection, settings.home, options.network);
  console.log(`chain ${d.chainId}: AnchorCoordinator ${d.coordinator}, DemoToken ${d.token} (block ${d.deployBlock})`);
  console.log(`recorded in ${path.join(settings.home, "deployments", `${d.chainId}.json`)}`);
  await connection.close();
}
