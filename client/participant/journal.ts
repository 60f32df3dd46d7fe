// The participant's journal: what it must not forget between committing and revealing. The
// salt exists nowhere else, so an entry is written (temp file, fsync, rename, folder fsync)
// BEFORE the commit transaction is sent; a client that crashes after committing finds it on
// restart and reveals. One file per signing address under <home>/journal/. Pure entry logic +
// a small file layer.
//
// Which writes need which fsync (on this project's 2-core machine at load 12, a journal write
// took ~8 ms without fsync, ~17 ms with the file's, ~31 ms with the folder's as well):
//   - every write fsyncs its temp file before the rename: a rename that reached the disk ahead
//     of the data could leave an empty journal, losing every salt in it;
//   - only a write that adds a salt (a new pending entry) also fsyncs the folder, making the
//     rename itself durable: the commit transaction must not be sent before that. The other
//     writes (committed, revealed, withheld, removals) only record what the chain already
//     shows; if a crash undoes one, the previous whole file comes back and recover() settles
//     the entry against the chain (a "committing" entry whose commit landed is revealed, a
//     "committed" one already revealed is marked so), exactly as after a crash just before it.
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import path from "node:path";
import { getAddress } from "ethers";
import { commitmentOf } from "../../lib/commitment.js";
import type { Hex32 } from "../../lib/digest.js";
import { AnchorFLError } from "../../lib/errors.js";

export class JournalError extends AnchorFLError {}

export const JOURNAL_FORMAT = "anchorfl.journal.v1";

/**
 * committing: written, commit transaction not known to have landed; committed: on-chain;
 * revealed: done; withheld: committed on purpose without a reveal (commit-then-withhold).
 */
export const ENTRY_STATES = ["committing", "committed", "revealed", "withheld"] as const;
export type EntryState = (typeof ENTRY_STATES)[number];

export interface JournalEntry {
  readonly chainId: string;
  readonly coordinator: string;
  readonly taskId: string;
  readonly round: string;
  readonly updateDigest: Hex32;
  readonly contentRoot: Hex32;
  readonly salt: Hex32;
  readonly numSamples: number;
  readonly cid: string;
  readonly state: EntryState;
  readonly updatedAt: string;
}

export interface Journal {
  readonly format: typeof JOURNAL_FORMAT;
  readonly participant: string;
  readonly entries: readonly JournalEntry[];
}

/** Finished entries kept for later rounds (a stale free rider resubmits its last update). */
export const KEEP_FINISHED = 8;

export function journalPath(home: string, participant: string): string {
  return path.join(home, "journal", `${getAddress(participant)}.json`);
}

export const emptyJournal = (participant: string): Journal => ({ format: JOURNAL_FORMAT, participant: getAddress(participant), entries: [] });

const sameRound = (a: Pick<JournalEntry, "chainId" | "coordinator" | "taskId" | "round">, b: typeof a) =>
  a.chainId === b.chainId && a.coordinator.toLowerCase() === b.coordinator.toLowerCase() && a.taskId === b.taskId && a.round === b.round;

/** Entries still owing a reveal (or not yet known to be committed). */
export const isPending = (e: JournalEntry): boolean => e.state === "committing" || e.state === "committed";

/** Adds or replaces the entry for its round; keeps every pending entry and the newest finished ones. Pure. */
export function upsertEntry(journal: Journal, entry: JournalEntry): Journal {
  const others = journal.entries.filter((e) => !sameRound(e, entry));
  const all = [...others, entry];
  const finished = all.filter((e) => !isPending(e));
  const dropped = new Set(finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED)));
  return { ...journal, entries: all.filter((e) => !dropped.has(e)) };
}

export function removeEntry(journal: Journal, entry: JournalEntry): Journal {
  return { ...journal, entries: journal.entries.filter((e) => !sameRound(e, entry)) };
}

/** This deployment's and task's entries, oldest round first. */
export function taskEntries(journal: Journal, chainId: bigint, coordinator: string, taskId: bigint): JournalEntry[] {
  return journal.entries
    .filter((e) => e.chainId === String(chainId) && e.coordinator.toLowerCase() === coordinator.toLowerCase() && e.taskId === String(taskId))
    .sort((a, b) => (BigInt(a.round) < BigInt(b.round) ? -1 : BigInt(a.round) > BigInt(b.round) ? 1 : 0));
}

/** The commitment the entry was committed under (recomputed, so the journal cannot disagree with itself). */
export function entryCommitment(entry: JournalEntry, participant: string): Hex32 {
  return commitmentOf({ ...entry, participant });
}

const HEX32 = /^0x[0-9a-f]{64}$/;
const DECIMAL = /^(0|[1-9][0-9]*)$/;

/** Validates a journal read from disk; throws JournalError naming the file and the first bad field. */
export function parseJournal(text: string, file: string, participant: string): Journal {
  const fail = (field: string, expected: string, found?: unknown): never => {
    throw new JournalError(`journal ${file}: ${field} must be ${expected}${found === undefined ? "" : `, found ${JSON.stringify(found)}`}`, {
      hint: "the journal holds commitment salts: fix or move the file by hand rather than deleting it",
      details: { file, field },
    });
  };
  let value: Journal;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new JournalError(`journal ${file} is not valid JSON: ${(cause as Error).message}`, {
      hint: "the journal holds commitment salts: fix or move the file by hand rather than deleting it",
      cause,
    });
  }
  if (typeof value !== "object" || value === null) fail("(root)", "an object");
  if (value.format !== JOURNAL_FORMAT) fail("format", JSON.stringify(JOURNAL_FORMAT), value.format);
  if (typeof value.participant !== "string" || value.participant.toLowerCase() !== participant.toLowerCase()) {
    fail("participant", `the signing address ${getAddress(participant)}`, value.participant);
  }
  if (!Array.isArray(value.entries)) fail("entries", "an array");
  value.entries.forEach((e, i) => {
    const at = `entries[${i}]`;
    if (typeof e !== "object" || e === null) fail(at, "an object");
    for (const key of ["chainId", "taskId", "round"] as const) if (typeof e[key] !== "string" || !DECIMAL.test(e[key])) fail(`${at}.${key}`, "a decimal string", e[key]);
    if (typeof e.coordinator !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(e.coordinator)) fail(`${at}.coordinator`, "an address", e.coordinator);
    for (const key of ["updateDigest", "contentRoot", "salt"] as const) if (typeof e[key] !== "string" || !HEX32.test(e[key])) fail(`${at}.${key}`, "0x + 64 lowercase hex digits", e[key]);
    if (!Number.isSafeInteger(e.numSamples) || e.numSamples < 0) fail(`${at}.numSamples`, "a non-negative integer", e.numSamples);
    if (typeof e.cid !== "string" || e.cid.length === 0) fail(`${at}.cid`, "a CID string", e.cid);
    if (!ENTRY_STATES.includes(e.state)) fail(`${at}.state`, ENTRY_STATES.join(" | "), e.state);
  });
  return value;
}

/** Reads the journal, or an empty one when the file does not exist yet. */
export async function readJournal(file: string, participant: string): Promise<Journal> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return emptyJournal(participant);
    throw new JournalError(`cannot read journal ${file}: ${(error as Error).message}`, { cause: error });
  }
  return parseJournal(text, file, participant);
}

/** True when `after` holds a pending entry (a salt) that `before` did not: its rename must be durable. Pure. */
export function addsSalt(before: Journal, after: Journal): boolean {
  const known = new Set(before.entries.filter(isPending).map((e) => e.salt));
  return after.entries.some((e) => isPending(e) && !known.has(e.salt));
}

/**
 * Replaces the journal file atomically: write a temp file, fsync it, rename it over the old
 * one, and (`durable`, the default) fsync the folder. A crash leaves either the old or the new
 * journal, never half; without `durable` it may leave the old one (see the module comment).
 */
export async function writeJournal(file: string, journal: Journal, options: { durable?: boolean } = {}): Promise<void> {
  try {
    await writeFileDurably(file, `${JSON.stringify(journal, null, 2)}\n`, options);
  } catch (error) {
    throw new JournalError(`cannot write journal ${file}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The atomic replace behind writeJournal, also used for the participant's other state (its
 * error-feedback residual). `durable: false` skips only the folder fsync: the new data is on
 * disk before the rename, but the rename may be undone by a crash.
 */
export async function writeFileDurably(file: string, data: string | Uint8Array, { durable = true }: { durable?: boolean } = {}): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    const handle = await open(tmp, "w", 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  if (!durable) return;
  const folder = await open(dir, "r");
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

// Read-modify-write cycles on one file are queued, so two handles in one process (a restarted
// participant object, a simulation) never interleave and lose an entry.
const queues = new Map<string, Promise<unknown>>();

function serialized<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const run = (queues.get(file) ?? Promise.resolve()).then(fn, fn);
  const tail = run.catch(() => {});
  queues.set(file, tail);
  void tail.then(() => queues.get(file) === tail && queues.delete(file));
  return run;
}

/** The journal of one participant: read-modify-write through the durable writer. */
export class JournalFile {
  constructor(
    readonly file: string,
    readonly participant: string,
  ) {}

  read(): Promise<Journal> {
    return readJournal(this.file, this.participant);
  }

  put(entry: Omit<JournalEntry, "updatedAt">): Promise<JournalEntry> {
    return serialized(this.file, async () => {
      const full = { ...entry, updatedAt: new Date().toISOString() };
      const before = await this.read();
      const after = upsertEntry(before, full);
      await writeJournal(this.file, after, { durable: addsSalt(before, after) });
      return full;
    });
  }

  // A removal adds no salt: if a crash undoes it, recover() drops or settles the entry again.
  remove(entry: JournalEntry): Promise<void> {
    return serialized(this.file, async () => writeJournal(this.file, removeEntry(await this.read(), entry), { durable: false }));
  }
}
