// What every command needs, built once from the global options: settings, the chain (provider,
// signer, coordinator), and the content store. The demo builds the same Context from the
// in-process chain, so commands and the demo share one code path.
import path from "node:path";
import type { Command } from "commander";
import { VoidSigner, ZeroAddress, type Provider, type Signer } from "ethers";
import { connectCoordinator, type AnchorCoordinator } from "../../lib/chain/coordinator.js";
import { connectRpc } from "../../lib/chain/rpc.js";
import { ConfigError, loadSigner, readDeployment, resolveSettings, type Settings, type SettingsOverrides } from "../../lib/config.js";
import { openContentStore, storeConfigFromEnv, type ContentStore, type StoreConfig } from "../../lib/store/index.js";

export interface Context {
  readonly settings: Settings;
  readonly provider: Provider;
  readonly chainId: bigint;
  readonly signer: Signer;
  readonly coordinator: AnchorCoordinator;
  /** Block the coordinator was deployed in: event readers start there. */
  readonly fromBlock: number;
  /** Opened on first use; closed by `close()`. */
  store(): Promise<ContentStore>;
  close(): Promise<void>;
}

export interface GlobalOptions {
  rpc?: string;
  home?: string;
  account?: string;
  coordinator?: string;
  ipfs?: string;
}

/** Adds the options every command shares. */
export function addGlobalOptions(program: Command): Command {
  return program
    .option("--rpc <url>", "JSON-RPC endpoint (env ANCHORFL_RPC_URL; default http://127.0.0.1:8545)")
    .option("--home <dir>", "data folder: deployments, embedded IPFS store, journals (env ANCHORFL_HOME; default ./.anchorfl)")
    .option("--account <index>", "Hardhat development account to sign with, local chain only (env ANCHORFL_ACCOUNT; default 0)")
    .option("--coordinator <address>", "coordinator address (env ANCHORFL_COORDINATOR; default: the recorded deployment)")
    .option("--ipfs <url>", "Kubo RPC endpoint instead of the embedded store (env IPFS_API)");
}

export function settingsFrom(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Settings {
  const overrides: SettingsOverrides = {
    ...(options.rpc ? { rpcUrl: options.rpc } : {}),
    ...(options.home ? { home: options.home } : {}),
    ...(options.account !== undefined ? { localAccount: Number(options.account) } : {}),
    ...(options.coordinator ? { coordinator: options.coordinator } : {}),
  };
  return resolveSettings(env, overrides);
}

/** The store the options and environment select (lib/store rules), the embedded one defaulting to `<home>/ipfs`. */
export function storeConfigFor(settings: Settings, ipfs: string | undefined, env: NodeJS.ProcessEnv = process.env): StoreConfig {
  return storeConfigFromEnv({
    ...env,
    ...(ipfs ? { IPFS_API: ipfs } : {}),
    ANCHORFL_IPFS_DIR: env.ANCHORFL_IPFS_DIR || path.join(settings.home, "ipfs"),
  });
}

/** Builds a Context from already-connected parts (used by the demo on the in-process chain). */
export function makeContext(parts: {
  settings: Settings;
  provider: Provider;
  chainId: bigint;
  signer: Signer;
  coordinator: AnchorCoordinator;
  fromBlock: number;
  storeConfig: StoreConfig;
  sharedStore?: ContentStore;
}): Context {
  let store: Promise<ContentStore> | undefined = parts.sharedStore ? Promise.resolve(parts.sharedStore) : undefined;
  return {
    settings: parts.settings,
    provider: parts.provider,
    chainId: parts.chainId,
    signer: parts.signer,
    coordinator: parts.coordinator,
    fromBlock: parts.fromBlock,
    store: () => (store ??= openContentStore(parts.storeConfig)),
    close: async () => {
      if (store && !parts.sharedStore) await (await store).close();
      const p = parts.provider as { destroy?: () => void };
      p.destroy?.();
    },
  };
}

/**
 * Connects to the chain the options name and finds the deployment and the signer. `readOnly`
 * commands (audit, verify, dashboard) need no key on any chain: they get a VoidSigner.
 */
export async function openContext(options: GlobalOptions, { readOnly = false } = {}): Promise<Context> {
  const settings = settingsFrom(options);
  const provider = await connectRpc(settings.rpcUrl);
  try {
    const chainId = (await provider.getNetwork()).chainId;
    const signer = readOnly ? new VoidSigner(ZeroAddress, provider) : await loadSigner(settings, provider, chainId);
    const deployment = settings.coordinator ? undefined : await readDeployment(settings.home, chainId);
    const coordinator = await connectCoordinator(settings.coordinator ?? deployment!.coordinator, signer);
    const fromBlock = deployment?.deployBlock ?? 0;
    return makeContext({ settings, provider, chainId, signer, coordinator, fromBlock, storeConfig: storeConfigFor(settings, options.ipfs) });
  } catch (error) {
    provider.destroy();
    throw error;
  }
}

/** Parses a task or round number (uint256 on-chain, so a bigint). */
export function parseId(text: string, what: string): bigint {
  if (!/^[1-9][0-9]{0,77}$/.test(String(text).trim())) throw new ConfigError(`${what} must be a positive integer, got "${text}"`);
  return BigInt(String(text).trim());
}

/** Runs `fn` with a Context built from the command's options, closing it afterwards. */
export async function withContext<T>(options: GlobalOptions, fn: (ctx: Context) => Promise<T>, { readOnly = false } = {}): Promise<T> {
  const ctx = await openContext(options, { readOnly });
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}
