// JSON-RPC access for every tool. A dead endpoint gives one clear error naming the URL;
// transient failures (connection resets, timeouts, HTTP 429/5xx) are retried with backoff.
import { FetchRequest, JsonRpcProvider, Network, type JsonRpcPayload, type JsonRpcResult } from "ethers";
import { AnchorFLError } from "../errors.js";

export class RpcUnavailableError extends AnchorFLError {}

/**
 * A transaction whose sending failed in a way that may have delivered it. Deliberately not an
 * RpcUnavailableError: `client run` waits those out and then acts on what the chain shows, where a
 * transaction still pending looks never sent (its commit would be dropped from the journal and
 * made again with a new salt, and the first one, once mined, could not be revealed). The command
 * stops instead, as the README says.
 */
export class UnconfirmedSendError extends AnchorFLError {}

export interface RpcOptions {
  /** Per-request timeout. */
  readonly timeoutMs?: number;
  /** Attempts per request before giving up (1 = no retry). */
  readonly attempts?: number;
  /** First backoff delay; doubles each retry. */
  readonly backoffMs?: number;
  /** Block polling interval for `wait()` and event subscriptions. */
  readonly pollingMs?: number;
}

const TRANSIENT = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EAI_AGAIN|socket hang up|timeout|fetch failed|other side closed|\b(429|502|503|504)\b|SERVER_ERROR|TIMEOUT/i;

/**
 * A refused connection proves the request never reached the node: the only failure after which a
 * signed transaction is sent again here (a 429 never gets here: ethers' FetchRequest itself sends
 * again after one). After a timeout or a dropped connection it may have been received and mined;
 * the retry would then be told "nonce too low", and sendTransaction (revert.ts), which re-sends on
 * a nonce taken by another process, would perform the action twice. Judged by the error's code,
 * not its text: an HTTP error's message quotes the response body, which may mention anything.
 */
function notDelivered(error: unknown): boolean {
  const e = error as { code?: unknown; cause?: { code?: unknown } };
  return e?.code === "ECONNREFUSED" || e?.cause?.code === "ECONNREFUSED";
}

function errorText(error: unknown): string {
  const e = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  return `${e?.code ?? ""} ${e?.message ?? ""} ${e?.cause?.code ?? ""} ${e?.cause?.message ?? ""}`;
}

export function isTransientRpcError(error: unknown): boolean {
  return TRANSIENT.test(errorText(error));
}

function sendsTransaction(payload: JsonRpcPayload | JsonRpcPayload[]): boolean {
  return (Array.isArray(payload) ? payload : [payload]).some((p) => p.method === "eth_sendRawTransaction");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A JsonRpcProvider whose every request is retried on transient failures. */
export class RetryingJsonRpcProvider extends JsonRpcProvider {
  readonly url: string;
  readonly #attempts: number;
  readonly #backoffMs: number;

  constructor(url: string, network: Network, options: RpcOptions = {}) {
    const request = new FetchRequest(url);
    request.timeout = options.timeoutMs ?? 30_000;
    // No response cache: a cached eth_getTransactionCount hands a just-used nonce to the next transaction.
    super(request, network, { staticNetwork: network, pollingInterval: options.pollingMs ?? 1_000, cacheTimeout: -1 });
    this.url = url;
    this.#attempts = Math.max(1, options.attempts ?? 4);
    this.#backoffMs = options.backoffMs ?? 250;
  }

  override async _send(payload: JsonRpcPayload | JsonRpcPayload[]): Promise<JsonRpcResult[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await super._send(payload);
      } catch (error) {
        if (!isTransientRpcError(error)) throw error;
        if (sendsTransaction(payload) && !notDelivered(error)) {
          throw new UnconfirmedSendError(`RPC endpoint ${this.url} failed while a transaction was being sent (${(error as Error).message}); not sent again, since the node may have received it`, {
            hint: "look at the account's latest transactions (or the audit trail) before repeating the command",
            details: { url: this.url, attempts: attempt },
            cause: error,
          });
        }
        if (attempt >= this.#attempts) {
          throw new RpcUnavailableError(`RPC endpoint ${this.url} failed ${attempt} times: ${(error as Error).message}`, {
            hint: "check that the node is running and reachable (for a local chain: npm run node)",
            details: { url: this.url, attempts: attempt },
            cause: error,
          });
        }
        await sleep(this.#backoffMs * 2 ** (attempt - 1));
      }
    }
  }
}

/** Asks the endpoint for its chain id once, with a short timeout, so a dead URL fails fast and clearly. */
export async function probeChainId(url: string, timeoutMs = 5_000): Promise<bigint> {
  const request = new FetchRequest(url);
  request.timeout = timeoutMs;
  request.setHeader("content-type", "application/json");
  request.body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] });
  let text: string;
  try {
    const response = await request.send();
    response.assertOk();
    text = response.bodyText;
  } catch (error) {
    throw new RpcUnavailableError(`cannot reach the RPC endpoint ${url}: ${(error as Error).message.split("\n")[0]}`, {
      hint: "start a local chain with `npm run node`, or set ANCHORFL_RPC_URL to a reachable endpoint",
      details: { url },
      cause: error,
    });
  }
  let body: { result?: string; error?: { message?: string } };
  try {
    body = JSON.parse(text);
  } catch {
    throw new RpcUnavailableError(`${url} did not answer eth_chainId with JSON (got: ${text.slice(0, 80)})`, { details: { url } });
  }
  if (typeof body.result !== "string") {
    throw new RpcUnavailableError(`${url} refused eth_chainId: ${body.error?.message ?? "no result"}`, { details: { url } });
  }
  return BigInt(body.result);
}

/** Connects to an endpoint: probes it first, then returns a retrying provider pinned to its chain. */
export async function connectRpc(url: string, options: RpcOptions = {}): Promise<RetryingJsonRpcProvider> {
  const chainId = await probeChainId(url, Math.min(options.timeoutMs ?? 5_000, 10_000));
  return new RetryingJsonRpcProvider(url, Network.from(chainId), options);
}
