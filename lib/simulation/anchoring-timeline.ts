// Splitting a round's wall time into what it was spent on. The anchoring benchmark records
// spans (start, end, part) from the edges: the participant's timing hook, the content store,
// every JSON-RPC request, the aggregator's steps. Spans overlap, because participants wait
// and reveal concurrently and a request runs while another participant trains, so each
// instant of the round goes to the most specific part active then (PARTS is in that order);
// instants no span covers are the remainder (journal writes, polling sleeps, glue). The parts
// and the remainder therefore add up to the round's wall time exactly.
import { AnchorFLError } from "../errors.js";

export class TimelineError extends AnchorFLError {}

/** Most specific first: an instant covered by several parts counts for the first of them. */
export const PARTS = ["training", "encoding", "aggregation", "storing", "pinning", "journaling", "chain-tx", "fetch-verify", "chain-reads"] as const;
export type Part = (typeof PARTS)[number];
export type Split = Record<Part | "remainder", number>;

export interface Span {
  readonly part: Part;
  readonly start: number;
  readonly end: number;
}

/** Collects spans; `time` wraps a promise-returning call. Times are performance.now() ms. */
export class Timeline {
  readonly spans: Span[] = [];

  add(part: Part, start: number, end: number): void {
    if (!(end >= start)) throw new TimelineError(`span "${part}" ends (${end}) before it starts (${start})`);
    this.spans.push({ part, start, end });
  }

  async time<T>(part: Part, run: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await run();
    } finally {
      this.add(part, start, performance.now());
    }
  }

  clear(): void {
    this.spans.length = 0;
  }
}

/** Milliseconds of [from, to] per part (most specific part wins an instant) and the uncovered remainder. */
export function splitWallTime(spans: readonly Span[], from: number, to: number): Split {
  if (!(to >= from)) throw new TimelineError(`the window ends (${to}) before it starts (${from})`);
  const split = Object.fromEntries([...PARTS, "remainder"].map((p) => [p, 0])) as Split;
  const clipped = spans.map((s) => ({ rank: PARTS.indexOf(s.part), start: Math.max(s.start, from), end: Math.min(s.end, to) })).filter((s) => s.end > s.start);
  const edges = [...new Set([from, to, ...clipped.flatMap((s) => [s.start, s.end])])].sort((a, b) => a - b);
  for (let i = 0; i + 1 < edges.length; i++) {
    const [a, b] = [edges[i], edges[i + 1]];
    let best: number = PARTS.length;
    for (const s of clipped) if (s.start <= a && s.end >= b && s.rank < best) best = s.rank;
    split[PARTS[best] ?? "remainder"] += b - a;
  }
  return split;
}
