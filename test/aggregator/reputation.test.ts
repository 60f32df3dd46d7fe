// Reputation, pure: the formula on hand-computed histories (prior, decay, window), determinism
// across runs and permutations, top-k selection with ties under over-subscription, reputation
// weighting of FedAvg, the report's record of it, and verify's comparison naming a tampered score.
import { expect } from "chai";
import {
  ReputationError,
  reputationScores,
  reputationWeightedSamples,
  selectByReputation,
  type HistoryRound,
  type ReputationParams,
} from "../../lib/aggregator/reputation.js";
import { aggregateRound } from "../../lib/aggregator/round.js";
import { reportDifferences } from "../../lib/aggregator/verify.js";
import { sha256Digest, type Hex32 } from "../../lib/digest.js";
import { checkTaskOptions, TaskOptionsError, type ReputationOption } from "../../lib/protocol/options.js";
import { ReportFormatError, parseReport, type Verdict } from "../../lib/protocol/report.js";
import { CommandOptionError, modelSpecByName, parseReputationOption } from "../../scripts/commands/task.js";
import { PARTICIPANTS, roundInputs } from "./round-fixture.js";

const [A, B, C, D] = PARTICIPANTS;
const digestOf = (round: number) => sha256Digest(new TextEncoder().encode(`report ${round}`)) as Hex32;
const past = (round: number, verdicts: Record<string, Verdict>): HistoryRound => ({
  round: BigInt(round),
  reportDigest: digestOf(round),
  verdicts: Object.entries(verdicts).map(([address, verdict]) => ({ address, verdict })),
});
const params = (p: Partial<ReputationParams> = {}): ReputationParams => ({ halfLife: 1, window: 16, prior: 0.5, priorWeight: 1, ...p });

/** The fixture round (5 accepted of 9 committers, see round-fixture.ts) under a task with the reputation option. */
function inputsWith(option: ReputationOption, history: readonly HistoryRound[] | undefined, order?: number[], rule = "fedavg") {
  const base = roundInputs(order);
  return { ...base, spec: { ...base.spec, options: { reputation: option } }, rule: { name: rule, params: {} }, reputationHistory: history };
}

describe("reputation", function () {
  this.timeout(60_000);
  // Fixture round 2 comes after these; B (P1) was an outlier last round, so it ranks low.
  const fixtureHistory = [past(1, { [A]: "accepted", [B]: "outlier", [C]: "accepted", [D]: "accepted" })];
  const history = [past(2, { [A]: "outlier", [B]: "accepted" }), past(3, { [A]: "outlier", [B]: "no-reveal", [C]: "accepted" }), past(4, { [A]: "accepted", [C]: "duplicate" })];

  it("is the prior for a newcomer and a decayed, prior-smoothed share of accepted rounds otherwise (hand-computed)", () => {
    // Before round 5 with half-life 1: round 4 weighs 1, round 3 0.5, round 2 0.25.
    const scores = reputationScores(history, 5n, [A, B, C, D], params());
    expect(scores.get(A)).to.equal(0.545455); // (0.5 + 1) / (1 + 0.25 + 0.5 + 1)
    expect(scores.get(B)).to.equal(0.428571); // (0.5 + 0.25) / (1 + 0.25 + 0.5)
    expect(scores.get(C)).to.equal(0.4); // (0.5 + 0.5) / (1 + 0.5 + 1)
    expect(scores.get(D)).to.equal(0.5); // never seen: the prior
    expect(reputationScores(history, 5n, [D], params({ prior: 0.8, priorWeight: 3 })).get(D)).to.equal(0.8);
  });

  it("decays with the half-life and reads only the window", () => {
    // Half-life 2: round 3 weighs 0.5^(1/2).
    expect(reputationScores(history, 5n, [C], params({ halfLife: 2 })).get(C)).to.equal(0.445903); // (0.5 + 0.70711) / (1 + 0.70711 + 1)
    // Window 2 before round 5 is rounds 3..4: A's round-2 outlier no longer counts.
    const windowed = reputationScores(history, 5n, [A, B], params({ window: 2 }));
    expect(windowed.get(A)).to.equal(0.6); // (0.5 + 1) / (1 + 0.5 + 1)
    expect(windowed.get(B)).to.equal(0.333333); // 0.5 / (1 + 0.5)
    // Rounds at or after the scored round never count, whatever the caller passes.
    expect(reputationScores([...history, past(5, { [D]: "outlier" })], 5n, [D], params()).get(D)).to.equal(0.5);
    // An old bad record fades back towards the prior as rounds pass without the participant.
    const later = reputationScores([past(1, { [A]: "outlier" })], 10n, [A], params({ halfLife: 2 })).get(A)!;
    const soon = reputationScores([past(1, { [A]: "outlier" })], 2n, [A], params({ halfLife: 2 })).get(A)!;
    expect(soon).to.equal(0.25);
    expect(later).to.be.above(soon).and.below(0.5);
  });

  it("is the same for any order of history rounds, verdict lists and addresses", () => {
    const reversed = [...history].reverse().map((h) => ({ ...h, verdicts: [...h.verdicts].reverse() }));
    const a = reputationScores(history, 5n, [A, B, C, D], params({ halfLife: 3 }));
    const b = reputationScores(reversed, 5n, [D, C, B, A].map((x) => x.toLowerCase()), params({ halfLife: 3 }));
    expect([...b.entries()].sort()).to.deep.equal([...a.entries()].sort());
  });

  it("selects the top k accepted updates when over-subscribed, ties broken by address", () => {
    const scores = new Map([
      [A, 0.6],
      [B, 0.6],
      [C, 0.7],
      [D, 0.5],
    ]);
    const [low, high] = [A, B].sort((x, y) => (x.toLowerCase() < y.toLowerCase() ? -1 : 1));
    expect(selectByReputation([D, B, C, A], scores, 2)).to.deep.equal([C, low].sort((x, y) => (x.toLowerCase() < y.toLowerCase() ? -1 : 1)));
    expect(selectByReputation([D, B, C, A], scores, 2)).to.not.include(high);
    expect(selectByReputation([D, B], scores, 2)).to.have.length(2);
    expect(selectByReputation([D, B], scores, undefined)).to.have.length(2);
  });

  it("weights sample counts by millionths of the score, and refuses counts it cannot weigh exactly", () => {
    expect(reputationWeightedSamples(A, 100, 0.545455)).to.equal(54_545_500);
    expect(reputationWeightedSamples(A, 100, 0)).to.equal(100);
    expect(() => reputationWeightedSamples(A, 2 ** 40, 0.5)).to.throw(ReputationError, /claims 1099511627776 samples/);
  });

  it("validates the task option by name", () => {
    expect(checkTaskOptions({ reputation: { weighting: true, select: 3, halfLife: 2.5 } })).to.have.property("reputation");
    expect(() => checkTaskOptions({ reputation: { select: 0, window: 100, prior: 2, weighting: "yes", decay: 1 } })).to.throw(
      TaskOptionsError,
      /options\.reputation\.decay is not a known option.*weighting must be true or false.*select must be a positive integer.*window must be an integer from 1 to 64.*prior must be a number in \[0, 1\]/,
    );
  });

  it("task create --reputation: parses its items into the option carried by the spec, refusing unknown or malformed items by name", () => {
    expect(parseReputationOption("on")).to.deep.equal({});
    expect(parseReputationOption("weighting, select=3,half-life=2.5,window=8,prior=0.4,prior-weight=2")).to.deep.equal({
      weighting: true,
      select: 3,
      halfLife: 2.5,
      window: 8,
      prior: 0.4,
      priorWeight: 2,
    });
    expect(modelSpecByName("mlp", 0, { reputation: parseReputationOption("select=3") }).options).to.deep.equal({ reputation: { select: 3 } });
    expect(() => parseReputationOption("decay=2")).to.throw(CommandOptionError, /unknown item "decay=2"/);
    expect(() => parseReputationOption("select=")).to.throw(CommandOptionError, /select needs a number/);
    expect(() => parseReputationOption("weighting=yes")).to.throw(CommandOptionError, /takes no value/);
    expect(() => modelSpecByName("mlp", 0, { reputation: parseReputationOption("window=0") })).to.throw(TaskOptionsError, /window must be an integer from 1 to 64/);
  });

  it("in a round: aggregates only the top k, weights FedAvg, records every committer's score; same bytes across runs and arrival orders", async () => {
    const option = { weighting: true, select: 3, halfLife: 2 };
    const out = await aggregateRound(inputsWith(option, fixtureHistory));
    const rep = out.report.reputation!;
    expect(rep.weighted).to.equal(true);
    expect(rep.window).to.deep.equal({ from: "1", to: "1" });
    expect(rep.history).to.deep.equal([{ round: "1", report: digestOf(1) }]);
    expect(rep.scores.map((s) => s.address)).to.deep.equal([...PARTICIPANTS].sort((x, y) => (x.toLowerCase() < y.toLowerCase() ? -1 : 1)));
    const score = (a: string) => rep.scores.find((s) => s.address === a)!;
    expect([score(A).reputation, score(B).reputation, score(PARTICIPANTS[4]).reputation]).to.deep.equal([0.75, 0.25, 0.5]);
    // Five accepted (P0..P4), three aggregated: A, C and D score 0.75, newcomer P4 0.5, last round's outlier B 0.25.
    expect(rep.scores.filter((s) => s.aggregated).map((s) => s.address).sort()).to.deep.equal([A, C, D].sort());
    expect(out.aggregation!.participants.map((p) => p.id).sort()).to.deep.equal([A, C, D].map((a) => a.toLowerCase()).sort());
    expect(out.report.participants.filter((p) => p.verdict === "accepted")).to.have.length(5);
    // Rewards still go to all five accepted updates.
    expect(out.report.rewards.allocations).to.have.length(5);
    expect(parseReport(out.reportBytes).reputation).to.deep.equal(rep);

    const again = await aggregateRound(inputsWith(option, fixtureHistory, [8, 7, 6, 5, 4, 3, 2, 1, 0]));
    expect(Buffer.from(again.reportBytes).equals(Buffer.from(out.reportBytes))).to.equal(true);
    expect(Buffer.from(again.modelBytes).equals(Buffer.from(out.modelBytes))).to.equal(true);

    // Weighting changes FedAvg's model when the aggregated scores differ; a robust rule takes no weights and says so.
    const weighted = await aggregateRound(inputsWith({ weighting: true }, fixtureHistory));
    const unweighted = await aggregateRound(inputsWith({}, fixtureHistory));
    expect(unweighted.report.reputation!.weighted).to.equal(false);
    expect(sha256Digest(unweighted.modelBytes)).to.not.equal(sha256Digest(weighted.modelBytes));
    const weightOf = (a: string) => weighted.aggregation!.participants.find((p) => p.id === a.toLowerCase())!.weight!;
    expect(weightOf(B) / weightOf(A)).to.equal((101 * 250_000) / (100 * 750_000)); // samples 100 + i, times millionths of the score
    const median = await aggregateRound(inputsWith(option, fixtureHistory, undefined, "median"));
    expect(median.report.reputation!.weighted).to.equal(false);
  });

  it("a round with the option and no history is refused; a tampered score is named by verify's comparison", async () => {
    try {
      await aggregateRound(inputsWith({ weighting: true }, undefined));
      expect.fail("expected a ReputationError");
    } catch (error) {
      expect(error).to.be.instanceOf(ReputationError);
      expect((error as Error).message).to.match(/reputation option is set, but round 2 was given no history/);
    }
    const out = await aggregateRound(inputsWith({ weighting: true }, fixtureHistory));
    const rep = out.report.reputation!;
    const tampered = { ...out.report, reputation: { ...rep, scores: rep.scores.map((s, i) => (i === 0 ? { ...s, reputation: 1 } : s)) } };
    expect(reportDifferences(tampered, out.report)).to.deep.equal(["reputation"]);
    expect(reportDifferences(out.report, out.report)).to.deep.equal([]);
    // A report whose reputation record is malformed is refused by the one validator, by name.
    const broken = { ...out.report, reputation: { ...rep, scores: [{ address: A, reputation: 2, aggregated: "yes" }] } };
    expect(() => parseReport(new TextEncoder().encode(JSON.stringify(broken)))).to.throw(ReportFormatError, /reputation must be \{params, window/);
  });
});
