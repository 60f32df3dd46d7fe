// Determinism of the adaptive parts of a round: reputation (scores, selection, sample weights)
// and the anomaly detector (scores, flags, the seeded projection) give the same exact values in
// another process and whatever order their inputs arrive in, which `verify` relies on when it
// re-runs a round elsewhere. The inputs and values live in adaptive-fixtures.ts.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import {
  adaptiveValues,
  anomalyInputs,
  anomalyValues,
  participant,
  reputationInputs,
  reputationValues,
} from "./adaptive-fixtures.js";

const SHUFFLES = [1, 2, 3];

describe("adaptive determinism: reputation and anomaly detection", function () {
  this.timeout(60_000);

  it("another process computes the same exact values", async () => {
    const script = path.join(import.meta.dirname, "adaptive-fixtures.ts");
    const { stdout } = await promisify(execFile)("npx", ["tsx", script], {
      cwd: path.join(import.meta.dirname, "..", ".."),
    });
    // Through JSON on both sides, as the report is: a value that differs only in the child shows here.
    expect(JSON.parse(stdout)).to.deep.equal(JSON.parse(JSON.stringify(adaptiveValues())));
  });

  it("permuted inputs (history rounds, verdict lists, committers, address spelling, update order) give identical values", () => {
    const reputation = reputationValues();
    const anomaly = anomalyValues();
    const canonicalCommitters = reputationInputs().committers;
    const canonicalUpdates = anomalyInputs().map((u) => u.address);
    for (const seed of SHUFFLES) {
      const shuffledReputation = reputationInputs(seed);
      const shuffledUpdates = anomalyInputs(seed);
      // The shuffles really do reorder, or this test could not fail.
      expect(shuffledReputation.committers, `seed ${seed}`).to.not.deep.equal(canonicalCommitters);
      expect(
        shuffledUpdates.map((u) => u.address),
        `seed ${seed}`,
      ).to.not.deep.equal(canonicalUpdates);
      expect(reputationValues(shuffledReputation), `reputation, seed ${seed}`).to.deep.equal(reputation);
      expect(anomalyValues(shuffledUpdates), `anomaly, seed ${seed}`).to.deep.equal(anomaly);
    }
  });

  it("the fixture separates participants (so the comparisons can fail)", () => {
    const { reputation, anomaly } = adaptiveValues();
    const scores = reputation.section.scores.map((s) => s.reputation);
    // Nine committers, nine scores: a mix-up between participants would change the comparison.
    expect(new Set(scores).size).to.equal(scores.length);
    expect(reputation.section.scores.some((s) => s.aggregated)).to.equal(true);
    expect(reputation.section.scores.some((s) => !s.aggregated)).to.equal(true);
    expect(new Set(Object.values(reputation.samples)).size).to.equal(Object.keys(reputation.samples).length);

    expect(anomaly.scores).to.have.length(12);
    // The scaled, sign-flipped and noise updates (9, 10, 11), as adaptive-fixtures.ts says, and none of the honest nine.
    const flagged = anomaly.scores.filter((s) => s.flagged).map((s) => s.address);
    expect(flagged.sort()).to.deep.equal([9, 10, 11].map(participant).sort());
    expect(new Set(anomaly.scores.map((s) => s.score)).size).to.equal(anomaly.scores.length);
  });
});
