// The participant's pure decisions (commit now / too late / wait; what to do with a journal entry
// on start; whether a global model fits the round) and its journal file: durable, validated,
// pruned, never overwritten when unreadable, and safe under concurrent writers in one process.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { decideCommit, decideRecovery, type CommitFacts } from "../../client/participant/decide.js";
import { ModelMismatchError } from "../../client/participant/errors.js";
import {
  JournalError,
  JournalFile,
  KEEP_FINISHED,
  emptyJournal,
  parseJournal,
  readJournal,
  taskEntries,
  upsertEntry,
  type JournalEntry,
} from "../../client/participant/journal.js";
import { checkGlobalModel } from "../../client/participant/round.js";
import type { UpdateMetadata } from "../../lib/codec/update-metadata.js";
import type { Hex32 } from "../../lib/digest.js";

const ME = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const COORDINATOR = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const hex = (byte: string) => `0x${byte.repeat(32)}` as Hex32;

function entry(round: number, state: JournalEntry["state"], taskId = "1"): JournalEntry {
  return {
    chainId: "31337",
    coordinator: COORDINATOR,
    taskId,
    round: String(round),
    updateDigest: hex("aa"),
    contentRoot: hex("00"),
    salt: hex("5a"),
    numSamples: 100,
    cid: "bafkreifake",
    state,
    updatedAt: "2026-01-01T00:00:00.000Z",
  };
}

describe("participant decisions", function () {
  describe("decideCommit", function () {
    const base: CommitFacts = { phase: "Commit", now: 1_000n, commitEnd: 1_100n, revealEnd: 1_400n, alreadyCommitted: false, safetyMarginS: 15 };

    it("commits while the deadline is more than the margin away and the reveal window has room", () => {
      expect(decideCommit(base)).to.deep.equal({ action: "commit" });
      expect(decideCommit({ ...base, now: 1_084n })).to.deep.equal({ action: "commit" });
    });

    it("is too late once the deadline is within the safety margin, or past", () => {
      for (const now of [1_085n, 1_099n, 1_100n, 2_000n]) expect(decideCommit({ ...base, now }).action, `now ${now}`).to.equal("too-late");
      expect(decideCommit({ ...base, now: 1_090n })).to.deep.include({ reason: "the commit deadline is 10 s away, within the 15 s safety margin" });
    });

    it("does not commit when the reveal window is too short to reveal in", () => {
      expect(decideCommit({ ...base, revealEnd: 1_110n })).to.deep.equal({ action: "too-late", reason: "the reveal window (10 s) is shorter than the 15 s safety margin" });
    });

    it("is too late in Reveal or Aggregation, and waits when no round is open or it already committed", () => {
      expect(decideCommit({ ...base, phase: "Reveal" }).action).to.equal("too-late");
      expect(decideCommit({ ...base, phase: "Aggregation" }).action).to.equal("too-late");
      for (const phase of ["None", "Finalized", "Failed"] as const) expect(decideCommit({ ...base, phase }).action, phase).to.equal("wait");
      expect(decideCommit({ ...base, alreadyCommitted: true })).to.deep.equal({ action: "wait", reason: "already committed in this round" });
    });
  });

  describe("decideRecovery", function () {
    it("reveals in Reveal, waits in Commit, reports a miss afterwards, and drops commits that never landed", () => {
      const on = { committedOnChain: true, revealedOnChain: false, sendsPending: false };
      expect(decideRecovery({ ...on, phase: "Reveal" })).to.equal("reveal");
      expect(decideRecovery({ ...on, phase: "Commit" })).to.equal("await-reveal");
      for (const phase of ["Aggregation", "Finalized", "Failed"] as const) expect(decideRecovery({ ...on, phase })).to.equal("missed");
      expect(decideRecovery({ phase: "Reveal", committedOnChain: true, revealedOnChain: true, sendsPending: false })).to.equal("revealed");
      expect(decideRecovery({ phase: "Reveal", committedOnChain: false, revealedOnChain: false, sendsPending: false })).to.equal("not-committed");
      expect(decideRecovery({ phase: "Commit", committedOnChain: false, revealedOnChain: false, sendsPending: false })).to.equal("not-committed");
    });

    it("keeps a commit that is not on chain while commits are open and the account has transactions pending (it may still land)", () => {
      const off = { committedOnChain: false, revealedOnChain: false, sendsPending: true };
      expect(decideRecovery({ ...off, phase: "Commit" })).to.equal("await-commit");
      for (const phase of ["Reveal", "Aggregation", "Finalized", "Failed"] as const) expect(decideRecovery({ ...off, phase }), phase).to.equal("not-committed");
    });
  });

  describe("checkGlobalModel", function () {
    const spec = hex("5e");
    const meta = (over: Partial<UpdateMetadata> = {}): UpdateMetadata => ({
      taskId: 1n,
      round: 3n,
      participant: ME,
      baseModelDigest: hex("01"),
      numSamples: 300,
      kind: "model",
      modelSpecDigest: spec,
      extra: {},
      ...over,
    });
    const pointer = { digest: hex("77"), contentRoot: hex("00"), round: 3n };

    it("accepts the model the round was opened on, of the task's spec, naming its task and round", () => {
      checkGlobalModel(meta(), { taskId: 1n, pointer, roundBase: hex("77"), modelSpecDigest: spec });
      // Genesis files predate the task: task 0, round 0.
      checkGlobalModel(meta({ taskId: 0n, round: 0n }), { taskId: 1n, pointer: { ...pointer, round: 0n }, roundBase: hex("77"), modelSpecDigest: spec });
    });

    it("refuses a model the round was not opened on, of another spec, of another task or round, or not built on its round's base", () => {
      const expected = { taskId: 1n, pointer, roundBase: hex("77"), modelSpecDigest: spec };
      expect(() => checkGlobalModel(meta(), { ...expected, roundBase: hex("78") })).to.throw(ModelMismatchError, "the round was opened on model");
      expect(() => checkGlobalModel(meta({ modelSpecDigest: hex("5f") }), expected)).to.throw(ModelMismatchError, "was built for spec");
      expect(() => checkGlobalModel(meta({ taskId: 2n }), expected)).to.throw(ModelMismatchError, "says task 2 round 3");
      expect(() => checkGlobalModel(meta({ round: 2n }), expected)).to.throw(ModelMismatchError, "says task 1 round 2");
      checkGlobalModel(meta(), { ...expected, producedFrom: hex("01") });
      expect(() => checkGlobalModel(meta(), { ...expected, producedFrom: hex("02") })).to.throw(ModelMismatchError, "but round 3 was opened on");
    });
  });

  describe("journal", function () {
    let dir: string;
    beforeEach(async () => (dir = await mkdtemp(path.join(tmpdir(), "anchorfl-journal-"))));
    afterEach(async () => rm(dir, { recursive: true, force: true }));

    it("keeps every pending entry and only the newest finished ones, one entry per round", () => {
      let j = emptyJournal(ME);
      j = upsertEntry(j, entry(1, "committed"));
      for (let r = 2; r <= KEEP_FINISHED + 4; r++) j = upsertEntry(j, entry(r, "revealed"));
      j = upsertEntry(j, entry(5, "withheld"));
      const rounds = taskEntries(j, 31337n, COORDINATOR.toLowerCase(), 1n).map((e) => `${e.round}:${e.state}`);
      expect(rounds[0]).to.equal("1:committed");
      expect(rounds.filter((r) => !r.endsWith("committed"))).to.have.length(KEEP_FINISHED);
      expect(rounds).to.include("5:withheld").and.not.include("5:revealed");
      expect(taskEntries(upsertEntry(j, entry(1, "revealed", "2")), 31337n, COORDINATOR, 2n)).to.have.length(1);
    });

    it("writes durably and reads back what it wrote", async () => {
      const file = path.join(dir, "journal", `${ME}.json`);
      const journal = new JournalFile(file, ME);
      await journal.put(entry(1, "committing"));
      await journal.put({ ...entry(1, "committing"), state: "committed" });
      const back = await readJournal(file, ME);
      expect(back.entries.map((e) => e.state)).to.deep.equal(["committed"]);
      expect(await readJournal(path.join(dir, "none.json"), ME)).to.deep.equal(emptyJournal(ME));
    });

    it("loses no entry when many writers in one process race", async () => {
      const journal = new JournalFile(path.join(dir, `${ME}.json`), ME);
      const other = new JournalFile(journal.file, ME);
      await Promise.all(Array.from({ length: 12 }, (_, r) => (r % 2 ? journal : other).put(entry(r + 1, "committed"))));
      expect((await journal.read()).entries).to.have.length(12);
    });

    it("refuses a hostile or damaged journal with a typed error naming the field, and never overwrites it", async () => {
      const good = JSON.stringify({ ...emptyJournal(ME), entries: [entry(1, "committed")] });
      const bad = (mutate: (j: { participant: string; entries: Record<string, unknown>[] }) => void) => {
        const j = JSON.parse(good);
        mutate(j);
        return JSON.stringify(j);
      };
      expect(() => parseJournal("{", "f.json", ME)).to.throw(JournalError, "journal f.json is not valid JSON");
      expect(() => parseJournal(bad((j) => (j.entries[0].salt = "0x12")), "f.json", ME)).to.throw(JournalError, "entries[0].salt must be 0x + 64 lowercase hex digits");
      expect(() => parseJournal(bad((j) => (j.entries[0].state = "lost")), "f.json", ME)).to.throw(JournalError, "entries[0].state");
      expect(() => parseJournal(bad((j) => (j.entries[0].round = "-1")), "f.json", ME)).to.throw(JournalError, "entries[0].round must be a decimal string");
      expect(() => parseJournal(bad((j) => (j.entries[0].numSamples = 1.5)), "f.json", ME)).to.throw(JournalError, "entries[0].numSamples");
      expect(() => parseJournal(bad((j) => (j.participant = COORDINATOR)), "f.json", ME)).to.throw(JournalError, "participant must be the signing address");

      const file = path.join(dir, `${ME}.json`);
      const damaged = good.slice(0, 40);
      await writeFile(file, damaged);
      const error = await new JournalFile(file, ME).put(entry(2, "committing")).then(
        () => expect.fail("wrote over a damaged journal"),
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(JournalError);
      expect((error as Error).message).to.include("fix or move the file by hand");
      expect(await readFile(file, "utf8")).to.equal(damaged);
    });
  });
});
