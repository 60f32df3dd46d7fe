// Fixed inputs for the adaptive parts of a round, reputation and the anomaly detector, and their
// exact outputs. `verify` re-runs both on another machine, so they must not depend on the process
// or on the order inputs arrive in. Run as a script (npx tsx test/aggregator/adaptive-fixtures.ts)
// it prints adaptiveValues() as JSON, which adaptive-determinism.test.ts compares with the values
// computed in its own process.
import { createHash } from "node:crypto";
import path from "node:path";
import { getAddress, id } from "ethers";
import { coordinateMedian } from "../../lib/aggregation/index.js";
import { DEFAULT_ANOMALY, anomalyScores, project, type AnomalyInput } from "../../lib/aggregator/anomaly.js";
import { planReputation, type HistoryRound } from "../../lib/aggregator/reputation.js";
import { compareAddresses } from "../../lib/chain/coordinator.js";
import { sha256Digest, type Hex32 } from "../../lib/digest.js";
import type { ReputationOption } from "../../lib/protocol/options.js";
import { VERDICTS } from "../../lib/protocol/report.js";
import { Random } from "../../lib/random.js";

/** A checksummed address whose canonical (address) position is unrelated to i, so sorting has work to do. */
export function participant(i: number): string {
  return getAddress(`0x${id(`adaptive participant ${i}`).slice(26)}`);
}

/** A float64's exact bits: two processes agree on these or they differ, no printing precision in between. */
export function bits(x: number): string {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return b.toString("hex");
}

// ---- Reputation ----------------------------------------------------------------------------

/** Scored before this round; rounds 1..ROUND-1 are history, and the window leaves the first two out. */
const ROUND = 13n;
const PARTICIPANTS = 9;
/** Fractional half-life and a non-default prior, so Math.pow sees non-integer exponents. */
export const REPUTATION_OPTION: ReputationOption = {
  weighting: true,
  select: 4,
  halfLife: 2.5,
  window: 10,
  prior: 0.4,
  priorWeight: 1.5,
};

export interface ReputationInputs {
  readonly history: readonly HistoryRound[];
  readonly committers: readonly string[];
  readonly accepted: readonly string[];
}

/**
 * A seeded history: each past round lists a seeded subset of participants 0..7 with verdicts
 * mostly "accepted"; participant 8 is a newcomer. With `shuffleSeed`, the same inputs in another
 * order: history rounds, each round's verdicts, committers and accepted shuffled, and some
 * addresses lowercased (the chain and reports may spell them either way).
 */
export function reputationInputs(shuffleSeed?: number): ReputationInputs {
  const rng = new Random(21, "reputation history");
  const history: HistoryRound[] = [];
  for (let r = 1n; r < ROUND; r++) {
    const verdicts = [];
    for (let i = 0; i < PARTICIPANTS - 1; i++) {
      if (rng.float() < 0.25) continue; // did not commit in this round
      const verdict = rng.float() < 0.7 ? "accepted" : VERDICTS[1 + rng.int(VERDICTS.length - 1)];
      verdicts.push({ address: participant(i), verdict });
    }
    history.push({
      round: r,
      reportDigest: sha256Digest(new TextEncoder().encode(`report ${r}`)) as Hex32,
      verdicts,
    });
  }
  const committers = Array.from({ length: PARTICIPANTS }, (_, i) => participant(i));
  const accepted = committers.filter((_, i) => i !== 2 && i !== 5);
  if (shuffleSeed === undefined) return { history, committers, accepted };

  const order = new Random(shuffleSeed, "reputation order");
  const spell = (a: string) => (order.float() < 0.5 ? a.toLowerCase() : a);
  return {
    history: order
      .shuffle(history)
      .map((h) => ({
        ...h,
        verdicts: order.shuffle(h.verdicts).map((v) => ({ ...v, address: spell(v.address) })),
      })),
    committers: order.shuffle(committers).map(spell),
    accepted: order.shuffle(accepted).map(spell),
  };
}

/** The round's reputation plan: the report's section (scores, who is aggregated) and the sample weights the rule sees. */
export function reputationValues(inputs: ReputationInputs = reputationInputs()) {
  const plan = planReputation(
    REPUTATION_OPTION,
    inputs.history,
    ROUND,
    inputs.committers,
    inputs.accepted,
    "fedavg",
  );
  return {
    section: plan.section,
    scoreBits: Object.fromEntries(plan.section.scores.map((s) => [s.address, bits(s.reputation)])),
    samples: Object.fromEntries(plan.aggregated.map((a, i) => [getAddress(a), plan.samples(a, 100 + i)])),
  };
}

// ---- Anomaly detector ----------------------------------------------------------------------

const D = 3000;
const HONEST = 9;
/** The projection's seed as the policy forms it: task id and round. */
export const ANOMALY_SEED = ["7", "13"] as const;

/**
 * Nine honest updates around a shared direction, then a scaled one (x8), a sign-flipped one and
 * pure noise of honest size; addresses 0..11. The detector flags the three and none of the nine
 * (honest 7 comes closest, 5.9 against the threshold of 6). With `shuffleSeed`, the same updates
 * in another order.
 */
export function anomalyInputs(shuffleSeed?: number): AnomalyInput[] {
  const shared = new Random(5, "anomaly direction");
  const direction = Float32Array.from({ length: D }, () => shared.normal());
  const honest = (i: number) => {
    const rng = new Random(i, "anomaly honest");
    return Float32Array.from(direction, (x) => 0.01 * (x + 0.5 * rng.normal()));
  };
  const noise = new Random(3, "anomaly noise");
  const vectors = [
    ...Array.from({ length: HONEST }, (_, i) => honest(i)),
    honest(HONEST).map((x) => 8 * x),
    honest(HONEST + 1).map((x) => -x),
    Float32Array.from({ length: D }, () => 0.018 * noise.normal()),
  ];
  const inputs = vectors.map((vector, i) => ({ address: participant(i), vector }));
  return shuffleSeed === undefined ? inputs : new Random(shuffleSeed, "anomaly order").shuffle(inputs);
}

/** Every score's exact bits, the signals and flags, and a digest of the seeded projection itself. */
export function anomalyValues(inputs: readonly AnomalyInput[] = anomalyInputs()) {
  const reference = coordinateMedian(
    inputs.map((u) => u.vector),
    D,
  );
  const scores = anomalyScores(inputs, reference, DEFAULT_ANOMALY, ANOMALY_SEED);
  const canonical = [...inputs].sort((a, b) => compareAddresses(a.address, b.address));
  const projection = createHash("sha256");
  for (const p of project(
    canonical.map((u) => u.vector),
    DEFAULT_ANOMALY.dims,
    ANOMALY_SEED,
  )) {
    projection.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  }
  return {
    referenceDigest: createHash("sha256")
      .update(new Uint8Array(reference.buffer, reference.byteOffset, reference.byteLength))
      .digest("hex"),
    projectionDigest: projection.digest("hex"),
    scores: scores.map((s) => ({
      address: s.address,
      score: bits(s.score),
      normZ: bits(s.normZ),
      cosineZ: bits(s.cosineZ),
      projectionZ: bits(s.projectionZ),
      signals: s.signals,
      flagged: s.flagged,
    })),
  };
}

export function adaptiveValues() {
  return { reputation: reputationValues(), anomaly: anomalyValues() };
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  console.log(JSON.stringify(adaptiveValues()));
}
