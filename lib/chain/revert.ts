// Turns failed calls and transactions into errors that name the contract's custom error and
// its arguments, e.g. `StakeTooLow(required: 100, available: 0)`, instead of raw revert data.
import { Interface, isCallException, isError, type ContractTransactionResponse, type TransactionReceipt } from "ethers";
import { AnchorFLError } from "../errors.js";

export class ContractRevertError extends AnchorFLError {
  /** The custom error's name, or undefined when the revert data matched no known error. */
  readonly errorName?: string;
  readonly errorArgs: Readonly<Record<string, unknown>>;

  constructor(action: string, errorName: string | undefined, errorArgs: Record<string, unknown>, detail: string, cause: unknown) {
    super(`${action} reverted: ${detail}`, { details: { errorName, errorArgs }, cause });
    this.errorName = errorName;
    this.errorArgs = errorArgs;
  }
}

function revertData(error: unknown): string | undefined {
  let e = error as { data?: unknown; error?: unknown; info?: { error?: { data?: unknown } }; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 6; depth++) {
    if (typeof e.data === "string" && e.data.startsWith("0x")) return e.data;
    const infoData = e.info?.error?.data;
    if (typeof infoData === "string" && infoData.startsWith("0x")) return infoData;
    e = (e.error ?? e.cause) as typeof e;
  }
  return undefined;
}

const show = (v: unknown): string => (typeof v === "bigint" ? v.toString() : Array.isArray(v) ? `[${v.map(show).join(", ")}]` : String(v));

/**
 * Decodes `error` against the given contract interfaces. Returns a ContractRevertError when it is
 * a revert (decoded or not) and the original error otherwise.
 */
export function decodeRevert(error: unknown, action: string, interfaces: readonly Interface[]): unknown {
  const data = revertData(error);
  if (data && data.length >= 10) {
    for (const iface of interfaces) {
      const parsed = iface.parseError(data);
      if (!parsed) continue;
      const args: Record<string, unknown> = {};
      parsed.fragment.inputs.forEach((input, i) => (args[input.name || `arg${i}`] = parsed.args[i]));
      const detail = `${parsed.name}(${Object.entries(args).map(([k, v]) => `${k}: ${show(v)}`).join(", ")})`;
      return new ContractRevertError(action, parsed.name, args, detail, error);
    }
    return new ContractRevertError(action, undefined, {}, `unknown error data ${data.slice(0, 74)}`, error);
  }
  if (isCallException(error)) {
    const reason = error.reason ?? error.shortMessage;
    return new ContractRevertError(action, error.revert?.name, {}, reason, error);
  }
  return error;
}

/**
 * A nonce another sender with the same key took between our nonce read and our send: the node
 * answered "nonce too low" (ethers: NONCE_EXPIRED, also from eth_estimateGas) or, while the other
 * transaction is still pending, "replacement transaction underpriced" (REPLACEMENT_UNDERPRICED).
 * Not "already known": that is a transaction with our exact bytes already in the pool, and
 * sending again with the next nonce would submit it twice.
 */
function isNonceCollision(error: unknown): boolean {
  return isError(error, "NONCE_EXPIRED") || isError(error, "REPLACEMENT_UNDERPRICED");
}

const SEND_ATTEMPTS = 5;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends a transaction, waits for it to be mined and decodes any revert.
 *
 * Two processes may send from one key (a swarm member runs `client run` and `aggregate`): each
 * signer reads the pending nonce just before sending, so both can pick the same one and the node
 * rejects the later. Such a rejection comes from `send()` itself, before the node accepted anything,
 * so calling `send` again is safe: it builds a fresh transaction and reads the nonce anew. The
 * jittered pause keeps two retrying processes from colliding again in lockstep. Nothing is
 * re-sent once `send()` returned: that transaction is the node's, and waiting for it is all we do.
 */
export async function sendTransaction(
  action: string,
  interfaces: readonly Interface[],
  send: () => Promise<ContractTransactionResponse>,
): Promise<TransactionReceipt> {
  let response: ContractTransactionResponse;
  for (let attempt = 1; ; attempt++) {
    try {
      response = await send();
      break;
    } catch (error) {
      if (!isNonceCollision(error)) throw decodeRevert(error, action, interfaces);
      if (attempt >= SEND_ATTEMPTS) {
        throw new AnchorFLError(`${action}: another sender took the nonce ${attempt} times in a row`, {
          hint: "several processes are sending from this key faster than they can take turns; run fewer of them on one key",
          details: { attempts: attempt },
          cause: error,
        });
      }
      await sleep(50 * attempt + Math.random() * 100);
    }
  }
  try {
    const receipt = await response.wait();
    if (!receipt) throw new AnchorFLError(`${action}: transaction ${response.hash} was dropped`);
    return receipt;
  } catch (error) {
    throw decodeRevert(error, action, interfaces);
  }
}
