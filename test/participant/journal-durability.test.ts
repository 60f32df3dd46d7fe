// Which journal writes must make their rename durable (folder fsync) before the participant
// goes on: exactly those that add a salt, i.e. a pending entry the file did not hold before.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { JournalFile, addsSalt, emptyJournal, readJournal, removeEntry, upsertEntry, writeFileDurably, type JournalEntry } from "../../client/participant/journal.js";

const ME = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const hex = (byte: string) => `0x${byte.repeat(32)}` as JournalEntry["salt"];

function entry(round: number, state: JournalEntry["state"], salt: string, taskId = "1"): JournalEntry {
  return {
    chainId: "31337",
    coordinator: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    taskId,
    round: String(round),
    updateDigest: hex("aa"),
    contentRoot: hex("00"),
    salt: hex(salt),
    numSamples: 100,
    cid: "bafkreifake",
    state,
    updatedAt: "2026-01-01T00:00:00.000Z",
  };
}

describe("participant: journal durability", () => {
  it("asks for a durable rename only when a write adds a salt", () => {
    const empty = emptyJournal(ME);
    const committing = upsertEntry(empty, entry(1, "committing", "11"));
    const committed = upsertEntry(committing, entry(1, "committed", "11"));
    const revealed = upsertEntry(committed, entry(1, "revealed", "11"));
    expect(addsSalt(empty, committing), "the salt before the commit").to.equal(true);
    expect(addsSalt(committing, committed), "committed: the chain shows it").to.equal(false);
    expect(addsSalt(committed, revealed), "revealed: the chain shows it").to.equal(false);
    expect(addsSalt(committing, removeEntry(committing, entry(1, "committing", "11"))), "a removal").to.equal(false);
    expect(addsSalt(revealed, upsertEntry(revealed, entry(2, "committing", "22"))), "the next round's salt").to.equal(true);
    expect(addsSalt(committed, upsertEntry(committed, entry(1, "committing", "33", "2"))), "another task's salt next to a pending one").to.equal(true);
    // A finished entry's salt is no longer needed: the same salt pending again must be made durable again.
    expect(addsSalt(revealed, upsertEntry(revealed, entry(1, "committing", "11")))).to.equal(true);
  });

  it("writes every state whole through JournalFile and leaves no temp file, durable or not", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "anchorfl-journal-"));
    try {
      const file = path.join(dir, "journal", `${ME}.json`);
      const journal = new JournalFile(file, ME);
      for (const state of ["committing", "committed", "revealed"] as const) await journal.put(entry(1, state, "11"));
      await journal.put(entry(2, "committing", "22"));
      await journal.remove(entry(2, "committing", "22"));
      const back = await readJournal(file, ME);
      expect(back.entries.map((e) => [e.round, e.state])).to.deep.equal([["1", "revealed"]]);
      await writeFileDurably(path.join(dir, "journal", "other.bin"), new Uint8Array([1, 2, 3]), { durable: false });
      expect((await readdir(path.join(dir, "journal"))).sort()).to.deep.equal([`${ME}.json`, "other.bin"].sort());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
