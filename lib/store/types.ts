// The one content-store interface every backend implements (DESIGN.md "Content store").
import type { ContentRef, StoredContent } from "./cid.js";

export interface GetOptions {
  /** Give up (ContentTimeoutError) after this long; default per backend. */
  timeoutMs?: number;
  /** Refuse content larger than this (ContentTooLargeError); default 1 GiB. */
  maxBytes?: number;
}

export interface ContentStore {
  /** Stores the bytes under AnchorFL's fixed CID settings; does not pin. */
  put(bytes: Uint8Array): Promise<StoredContent>;
  /** Fetches and verifies the bytes (IntegrityError on any mismatch, whatever the backend said). */
  get(ref: ContentRef, options?: GetOptions): Promise<Uint8Array>;
  /** Keeps the content from garbage collection; idempotent. The content must be present. */
  pin(ref: ContentRef): Promise<void>;
  /** Releases a pin; idempotent (unpinning what isn't pinned is not an error). */
  unpin(ref: ContentRef): Promise<void>;
  /** Whether the store holds the whole content right now (no network fetch). */
  has(ref: ContentRef): Promise<boolean>;
  /** Whether the content is pinned (directly, as a root). */
  isPinned(ref: ContentRef): Promise<boolean>;
  close(): Promise<void>;
  /** Where the content lives, for messages: "embedded Helia store at <dir>" or "Kubo RPC at <url>". */
  readonly description: string;
}

export const DEFAULT_MAX_BYTES = 1024 * 1024 * 1024;
