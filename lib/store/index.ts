// The content store's public face: one factory, one setting. The embedded Helia store in
// the project's data folder is the default; `IPFS_API=http://127.0.0.1:5001` switches every
// tool to a Kubo RPC node instead.
import { resolve } from "node:path";
import { EmbeddedStore } from "./embedded.js";
import { StoreConfigError } from "./errors.js";
import { KuboStore } from "./kubo.js";
import type { ContentStore } from "./types.js";

export type StoreConfig = { kind: "embedded"; dataDir?: string } | { kind: "kubo"; url: string; timeoutMs?: number };

export const DEFAULT_DATA_DIR = ".anchorfl/ipfs";

/** Opens the store the config names. */
export async function openContentStore(config: StoreConfig): Promise<ContentStore> {
  switch (config.kind) {
    case "embedded":
      return EmbeddedStore.open({ dataDir: config.dataDir ?? resolve(DEFAULT_DATA_DIR) });
    case "kubo":
      return new KuboStore({ url: config.url, timeoutMs: config.timeoutMs });
    default:
      throw new StoreConfigError(`expected store kind "embedded" or "kubo", found ${JSON.stringify((config as { kind?: unknown }).kind)}`);
  }
}

/**
 * The store configuration the environment selects: `IPFS_API` (a Kubo RPC URL) if set,
 * else the embedded store in `ANCHORFL_IPFS_DIR` or `<cwd>/.anchorfl/ipfs`.
 */
export function storeConfigFromEnv(env: NodeJS.ProcessEnv = process.env): StoreConfig {
  const api = env.IPFS_API?.trim();
  if (api) return { kind: "kubo", url: api };
  const dir = env.ANCHORFL_IPFS_DIR?.trim();
  return { kind: "embedded", dataDir: resolve(dir || DEFAULT_DATA_DIR) };
}

/** Opens the store the environment selects (see `storeConfigFromEnv`). */
export function storeFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<ContentStore> {
  return openContentStore(storeConfigFromEnv(env));
}

export { EmbeddedStore, type GcOptions, type GcResult } from "./embedded.js";
export { KuboStore, type KuboStoreOptions } from "./kubo.js";
export * from "./cid.js";
export * from "./errors.js";
export type { ContentStore, GetOptions } from "./types.js";
