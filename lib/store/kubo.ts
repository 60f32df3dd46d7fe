// The external content store: any node that speaks the Kubo RPC API (Kubo, IPFS Cluster's
// proxy, pinning services), via kubo-rpc-client. Files are added with AnchorFL's fixed CID
// settings and the CID the node returns is checked against the one computed locally, so a
// node configured differently is refused instead of producing CIDs nobody else can rebuild.
// Every call has a timeout; every error names the CID and the endpoint.
import { create, type KuboRPCClient } from "kubo-rpc-client";
import * as dagPb from "@ipld/dag-pb";
import type { CID } from "multiformats/cid";
import { describeContent, resolveRef, UNIXFS_CHUNK_SIZE, verifyContent, type ContentRef, type StoredContent } from "./cid.js";
import {
  ContentNotFoundError,
  ContentTimeoutError,
  ContentTooLargeError,
  IntegrityError,
  StoreConfigError,
  StoreError,
  StoreUnavailableError,
} from "./errors.js";
import { DEFAULT_MAX_BYTES, type ContentStore, type GetOptions } from "./types.js";

const DAG_PB_CODEC = 0x70;

export interface KuboStoreOptions {
  /** RPC endpoint, e.g. http://127.0.0.1:5001 */
  url: string;
  /** Timeout of each RPC call (default 30 s); `get` may override it. */
  timeoutMs?: number;
  /**
   * How long `has` waits for one block before answering false (default 2 s). Kubo answers
   * at once for a missing block because `has` asks it to stay offline; servers that ignore
   * that flag would search the network, so the wait is bounded.
   */
  hasTimeoutMs?: number;
}

export class KuboStore implements ContentStore {
  readonly description: string;
  private readonly client: KuboRPCClient;
  private readonly timeoutMs: number;
  private readonly hasTimeoutMs: number;

  constructor(options: KuboStoreOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch (cause) {
      throw new StoreConfigError(`expected the Kubo RPC endpoint as a URL like http://127.0.0.1:5001, found "${options.url}"`, { cause });
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new StoreConfigError(`expected an http(s) Kubo RPC endpoint, found "${options.url}"`);
    }
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.hasTimeoutMs = options.hasTimeoutMs ?? 2_000;
    this.description = `Kubo RPC at ${url.origin}`;
    this.client = create({ url: url.origin, timeout: this.timeoutMs });
  }

  async put(bytes: Uint8Array): Promise<StoredContent> {
    const expected = await describeContent(bytes);
    const added = await this.call(expected.cid, "add", () =>
      this.client.add(bytes, {
        cidVersion: 1,
        rawLeaves: true,
        chunker: `size-${UNIXFS_CHUNK_SIZE}`,
        hashAlg: "sha2-256",
        trickle: false,
        pin: false,
        timeout: this.timeoutMs,
      }),
    );
    if (added.cid.toString() !== expected.cid) {
      throw new IntegrityError(`expected ${this.description} to store the file as ${expected.cid}, found ${added.cid}`, {
        hint: "the node chunks or lays out files differently from AnchorFL's fixed settings (CIDv1, raw leaves, 1 MiB chunks, balanced, 174 children)",
        details: { expected: expected.cid, found: added.cid.toString(), endpoint: this.description },
      });
    }
    return expected;
  }

  async get(ref: ContentRef, options: GetOptions = {}): Promise<Uint8Array> {
    const resolved = resolveRef(ref);
    const cid = resolved.cid.toString();
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    const bytes = await this.call(
      cid,
      "cat",
      async () => {
        const chunks: Uint8Array[] = [];
        let size = 0;
        for await (const chunk of this.client.cat(resolved.cid, { timeout: timeoutMs })) {
          size += chunk.length;
          if (size > maxBytes) {
            throw new ContentTooLargeError(`expected at most ${maxBytes} bytes of ${cid}, found more at ${this.description}`, {
              details: { cid, maxBytes },
            });
          }
          chunks.push(chunk);
        }
        return Buffer.concat(chunks);
      },
      timeoutMs,
    );
    await verifyContent(bytes, resolved, this.description);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  async pin(ref: ContentRef): Promise<void> {
    const { cid } = resolveRef(ref);
    // Kubo's pin add is idempotent; it fetches missing blocks, bounded by the timeout.
    await this.call(cid.toString(), "pin add", () => this.client.pin.add(cid, { timeout: this.timeoutMs }));
  }

  async unpin(ref: ContentRef): Promise<void> {
    const { cid } = resolveRef(ref);
    try {
      await this.call(cid.toString(), "pin rm", () => this.client.pin.rm(cid, { timeout: this.timeoutMs }));
    } catch (err) {
      if (!isNotPinned(err)) throw err;
    }
  }

  async isPinned(ref: ContentRef): Promise<boolean> {
    const { cid } = resolveRef(ref);
    try {
      return await this.call(cid.toString(), "pin ls", async () => {
        for await (const pin of this.client.pin.ls({ paths: [cid], type: "recursive", timeout: this.timeoutMs })) {
          if (pin.cid.equals(cid)) return true;
        }
        return false;
      });
    } catch (err) {
      if (isNotPinned(err)) return false;
      throw err;
    }
  }

  async has(ref: ContentRef): Promise<boolean> {
    const { cid } = resolveRef(ref);
    return this.hasAll(cid);
  }

  async close(): Promise<void> {
    // kubo-rpc-client keeps no connection state that needs closing.
  }

  private async hasAll(cid: CID): Promise<boolean> {
    const options = { timeout: this.hasTimeoutMs, searchParams: new URLSearchParams({ offline: "true" }) };
    try {
      if (cid.code !== DAG_PB_CODEC) {
        await this.call(cid.toString(), "block stat", () => this.client.block.stat(cid, options), this.hasTimeoutMs);
        return true;
      }
      const block = await this.call(cid.toString(), "block get", () => this.client.block.get(cid, options), this.hasTimeoutMs);
      for (const link of dagPb.decode(block).Links) {
        if (!(await this.hasAll(link.Hash))) return false;
      }
      return true;
    } catch (err) {
      if (err instanceof ContentNotFoundError || err instanceof ContentTimeoutError) return false;
      throw err;
    }
  }

  /** Runs one RPC call and turns its failure into a typed error naming the CID and endpoint. */
  private async call<T>(cid: string, what: string, fn: () => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.translate(err, cid, what, timeoutMs);
    }
  }

  private translate(err: unknown, cid: string, what: string, timeoutMs: number): Error {
    if (err instanceof StoreError) return err;
    const e = err as Error & { cause?: { code?: string } };
    const details = { cid, endpoint: this.description, call: what };
    if (e.name === "TimeoutError" || e.name === "AbortError") {
      return new ContentTimeoutError(`expected ${what} of ${cid} at ${this.description} to finish within ${timeoutMs} ms, found no answer in time`, {
        hint: "no reachable node has the content, or the node is overloaded",
        details: { ...details, timeoutMs },
        cause: err,
      });
    }
    // undici reports a refused, reset or unresolvable connection as TypeError("fetch failed") with a system error code as cause.
    if (e.message === "fetch failed" || /^E[A-Z_]+$/.test(e.cause?.code ?? "")) {
      return new StoreUnavailableError(`expected a Kubo RPC endpoint at ${this.description}, found it unreachable (${e.cause?.code ?? e.message}) during ${what} of ${cid}`, {
        hint: "start the IPFS daemon, or unset IPFS_API to use the embedded store",
        details,
        cause: err,
      });
    }
    if (/not found|no link named|could not resolve/i.test(e.message)) {
      return new ContentNotFoundError(`expected ${cid} at ${this.description}, found: ${e.message}`, { details, cause: err });
    }
    return new StoreError(`${what} of ${cid} at ${this.description} failed: ${e.message}`, { details, cause: err });
  }
}

function isNotPinned(err: unknown): boolean {
  return err instanceof StoreError && /not pinned/i.test(err.message);
}
