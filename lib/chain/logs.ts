// Event readers that page through logs in bounded block ranges: public RPCs cap the range of
// one eth_getLogs call, and a long-lived task's history would exceed it.
import type { BaseContract, ContractEventName, EventLog, Log } from "ethers";

export interface PagingOptions {
  readonly fromBlock?: number;
  readonly toBlock?: number;
  /** Largest block span of one eth_getLogs call. */
  readonly maxRange?: number;
}

/** Yields the contract's logs matching `event`, oldest first, one bounded page at a time. */
export async function* pagedEvents(
  contract: BaseContract,
  event: ContractEventName,
  options: PagingOptions = {},
): AsyncGenerator<EventLog | Log> {
  const runner = contract.runner;
  const provider = runner && "getBlockNumber" in runner ? runner : runner?.provider;
  if (!provider || !("getBlockNumber" in provider)) throw new Error("contract has no provider to read logs from");
  const maxRange = Math.max(1, options.maxRange ?? 5_000);
  const last = options.toBlock ?? (await (provider as { getBlockNumber(): Promise<number> }).getBlockNumber());
  for (let from = options.fromBlock ?? 0; from <= last; from += maxRange) {
    const to = Math.min(last, from + maxRange - 1);
    for (const log of await contract.queryFilter(event, from, to)) yield log;
  }
}

/** Collects `pagedEvents` into an array. */
export async function allEvents(contract: BaseContract, event: ContractEventName, options: PagingOptions = {}) {
  const out: (EventLog | Log)[] = [];
  for await (const log of pagedEvents(contract, event, options)) out.push(log);
  return out;
}
