// The one configuration source for every tool: where the chain is, which key signs, where the
// deployment addresses and the local data live. Values come from flags (overrides), then the
// environment, then defaults that suit a local Hardhat node.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { HDNodeWallet, Mnemonic, Wallet, getAddress, type Provider, type Signer } from "ethers";
import { AnchorFLError } from "./errors.js";

export class ConfigError extends AnchorFLError {}

/** Chain id of Hardhat's simulated network and of `hardhat node`. */
export const LOCAL_CHAIN_ID = 31337n;
/** Hardhat's well-known development mnemonic: its accounts are funded on local chains only. */
export const HARDHAT_MNEMONIC = "test test test test test test test test test test test junk";

export interface Settings {
  /** Folder for deployments, the embedded IPFS store, client journals. */
  readonly home: string;
  readonly rpcUrl: string;
  readonly privateKey?: string;
  readonly keystorePath?: string;
  readonly keystorePassword?: string;
  /** Index into Hardhat's development accounts; only accepted on a local chain. */
  readonly localAccount?: number;
  readonly coordinator?: string;
}

export type SettingsOverrides = Partial<Settings>;

/** Resolves settings from overrides, then environment, then defaults. Pure. */
export function resolveSettings(env: NodeJS.ProcessEnv, overrides: SettingsOverrides = {}, cwd = process.cwd()): Settings {
  const pick = <K extends keyof Settings>(key: K, envName: string): Settings[K] | undefined =>
    overrides[key] ?? (env[envName] === undefined || env[envName] === "" ? undefined : (env[envName] as Settings[K]));
  const account = overrides.localAccount ?? (env.ANCHORFL_ACCOUNT ? Number(env.ANCHORFL_ACCOUNT) : undefined);
  if (account !== undefined && (!Number.isInteger(account) || account < 0 || account > 999)) {
    throw new ConfigError(`account index must be an integer from 0 to 999, got ${String(account)}`);
  }
  return {
    home: path.resolve(cwd, pick("home", "ANCHORFL_HOME") ?? ".anchorfl"),
    rpcUrl: pick("rpcUrl", "ANCHORFL_RPC_URL") ?? "http://127.0.0.1:8545",
    privateKey: pick("privateKey", "ANCHORFL_PRIVATE_KEY"),
    keystorePath: pick("keystorePath", "ANCHORFL_KEYSTORE"),
    keystorePassword: pick("keystorePassword", "ANCHORFL_KEYSTORE_PASSWORD"),
    localAccount: account,
    coordinator: pick("coordinator", "ANCHORFL_COORDINATOR"),
  };
}

/** Hardhat's development account `index`, usable on a local chain only. */
export function localAccount(index: number, provider?: Provider): HDNodeWallet {
  return HDNodeWallet.fromMnemonic(Mnemonic.fromPhrase(HARDHAT_MNEMONIC), `m/44'/60'/0'/0/${index}`).connect(provider ?? null);
}

/**
 * The signer the settings name: a private key from the environment, an encrypted JSON keystore,
 * or (on a local chain only) one of Hardhat's development accounts. Never a key from a file in the repo.
 */
export async function loadSigner(settings: Settings, provider: Provider, chainId: bigint): Promise<Signer> {
  if (settings.privateKey) {
    try {
      return new Wallet(settings.privateKey, provider);
    } catch (error) {
      throw new ConfigError("ANCHORFL_PRIVATE_KEY is not a valid 32-byte hex private key", { cause: error });
    }
  }
  if (settings.keystorePath) {
    if (settings.keystorePassword === undefined) {
      throw new ConfigError(`keystore ${settings.keystorePath} needs a password`, { hint: "set ANCHORFL_KEYSTORE_PASSWORD" });
    }
    let json: string;
    try {
      json = await readFile(settings.keystorePath, "utf8");
    } catch (error) {
      throw new ConfigError(`cannot read keystore ${settings.keystorePath}`, { cause: error });
    }
    try {
      return (await Wallet.fromEncryptedJson(json, settings.keystorePassword)).connect(provider);
    } catch (error) {
      throw new ConfigError(`cannot decrypt keystore ${settings.keystorePath}: ${(error as Error).message}`, { cause: error });
    }
  }
  if (chainId !== LOCAL_CHAIN_ID) {
    throw new ConfigError(`no key configured for chain ${chainId}`, {
      hint: "set ANCHORFL_PRIVATE_KEY, or ANCHORFL_KEYSTORE and ANCHORFL_KEYSTORE_PASSWORD",
    });
  }
  return localAccount(settings.localAccount ?? 0, provider);
}

/** Where a deployment's addresses are recorded, per chain id. */
export interface Deployment {
  readonly chainId: string;
  readonly coordinator: string;
  readonly token: string;
  /** Block of the coordinator's deployment: event readers start there. */
  readonly deployBlock: number;
  readonly deployedAt: string;
}

export function deploymentFile(home: string, chainId: bigint): string {
  return path.join(home, "deployments", `${chainId}.json`);
}

export async function writeDeployment(home: string, deployment: Deployment): Promise<string> {
  const file = deploymentFile(home, BigInt(deployment.chainId));
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(deployment, null, 2)}\n`);
  await rename(tmp, file);
  return file;
}

/** Reads the recorded deployment for `chainId`; a clear error when there is none or it is malformed. */
export async function readDeployment(home: string, chainId: bigint): Promise<Deployment> {
  const file = deploymentFile(home, chainId);
  let raw: string;
  try {
    raw = await readFile(file, "utf8");
  } catch {
    throw new ConfigError(`no deployment recorded for chain ${chainId} (looked for ${file})`, {
      hint: "deploy first (`npm run deploy` for a local node), or set ANCHORFL_COORDINATOR",
    });
  }
  let d: Partial<Deployment>;
  try {
    d = JSON.parse(raw);
  } catch (error) {
    throw new ConfigError(`deployment file ${file} is not valid JSON`, { cause: error });
  }
  try {
    return {
      chainId: String(d.chainId),
      coordinator: getAddress(String(d.coordinator)),
      token: getAddress(String(d.token)),
      deployBlock: Number(d.deployBlock ?? 0),
      deployedAt: String(d.deployedAt ?? ""),
    };
  } catch (error) {
    throw new ConfigError(`deployment file ${file} holds an invalid address`, { cause: error });
  }
}
