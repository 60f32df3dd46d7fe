// One round, deterministic: permuted arrival orders and another process give the same bytes;
// the model is the base plus the rule's aggregate of the accepted updates; the report parses,
// records a rounded evaluation, and is refused beyond one block; aggregate-files reproduces the
// round's model from the accepted files; bad rule parameters and unfit files fail by name.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { getAddress } from "ethers";
import { aggregate, RuleParameterError, BreakdownConditionError } from "../../lib/aggregation/index.js";
import { OfflineAggregationError, aggregateFiles } from "../../lib/aggregator/offline.js";
import { DEFAULT_RULE, DEFAULT_RULE_PARAMS, ReportTooLargeError, aggregateRound } from "../../lib/aggregator/round.js";
import { decodeUpdate, encodeUpdate } from "../../lib/codec/update-file.js";
import { sha256Digest } from "../../lib/digest.js";
import { parseReport } from "../../lib/protocol/report.js";
import { flatten } from "../../lib/tensors.js";
import { COORDINATOR, PARTICIPANTS, baseBytes, roundDigests, roundInputs } from "./round-fixture.js";

const ORDERS = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8],
  [8, 7, 6, 5, 4, 3, 2, 1, 0],
  [3, 8, 1, 6, 0, 5, 7, 2, 4],
];

describe("aggregator round: deterministic bytes, model, report, offline reproduction", function () {
  this.timeout(60_000);

  it("judges the fixture as built (so the byte comparisons below can fail)", async () => {
    const out = await aggregateRound(roundInputs());
    const verdicts = out.report.participants.map((p) => [PARTICIPANTS.indexOf(p.address), p.verdict]).sort((a, b) => Number(a[0]) - Number(b[0]));
    expect(verdicts).to.deep.equal([
      [0, "accepted"],
      [1, "accepted"],
      [2, "accepted"],
      [3, "accepted"],
      [4, "accepted"],
      [5, "unavailable"],
      [6, "outlier"],
      [7, "invalid"],
      [8, "no-reveal"],
    ]);
    expect(out.result.slashes.map((s) => [PARTICIPANTS.indexOf(s.participant), s.reason])).to.deep.equal(
      [
        [5, "Invalid"],
        [6, "Outlier"],
        [7, "Invalid"],
        [8, "NoReveal"],
      ].sort((a, b) => (PARTICIPANTS[a[0] as number].toLowerCase() < PARTICIPANTS[b[0] as number].toLowerCase() ? -1 : 1)),
    );
    expect(out.report.participants.map((p) => p.address)).to.deep.equal([...PARTICIPANTS].sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1)));
  });

  it("gives the same model, report and result bytes whatever order reveals and files arrive in", async () => {
    const [first, ...rest] = await Promise.all(ORDERS.map((o) => roundDigests(o)));
    for (const other of rest) expect(other).to.deep.equal(first);
  });

  it("another process computes the same bytes", async () => {
    const script = path.join(import.meta.dirname, "round-fixture.ts");
    const { stdout } = await promisify(execFile)("npx", ["tsx", script, ORDERS[2].join(",")], { cwd: path.join(import.meta.dirname, "..", "..") });
    expect(JSON.parse(stdout)).to.deep.equal(await roundDigests(ORDERS[0]));
  });

  it("writes base + the rule's aggregate of the accepted updates as a model file by the coordinator, and rewards by samples", async () => {
    const inputs = roundInputs();
    const out = await aggregateRound(inputs);
    const accepted = [0, 1, 2, 3, 4].map((i) => {
      const r = inputs.reveals.find((x) => x.participant === PARTICIPANTS[i])!;
      const file = inputs.files.get(r.updateDigest) as { bytes: Uint8Array };
      return { id: PARTICIPANTS[i].toLowerCase(), numSamples: 100 + i, vector: flatten(decodeUpdate(file.bytes).tensors) };
    });
    const expected = aggregate(DEFAULT_RULE, accepted, DEFAULT_RULE_PARAMS).aggregate;
    const base = flatten([...inputs.baseModel.tensors]);
    const model = decodeUpdate(out.modelBytes);
    const values = flatten(model.tensors);
    for (let k = 0; k < values.length; k += 97) expect(values[k]).to.equal(Math.fround(base[k] + expected[k]));
    expect(model.metadata).to.deep.include({ kind: "model", taskId: 3n, round: 2n, participant: COORDINATOR, baseModelDigest: inputs.baseModel.digest, numSamples: 510 });
    expect(model.metadata.extra).to.deep.equal({});
    expect(out.report.model).to.deep.include({ digest: sha256Digest(out.modelBytes), numSamples: "510" });
    const amounts = out.report.rewards.allocations.map((a) => BigInt(a.amount));
    expect(amounts).to.have.length(5);
    expect(amounts.reduce((a, b) => a + b, 0n) <= 10n ** 18n).to.equal(true);
    const share = (i: number) => BigInt(out.report.rewards.allocations.find((a) => a.account === PARTICIPANTS[i])!.amount);
    expect(share(4) > share(0)).to.equal(true, "more samples, more reward");
    expect(parseReport(out.reportBytes)).to.deep.equal(out.report);
    expect(out.report.rule).to.deep.equal({ name: "trimmed-mean", params: { beta: 0.2 } });
  });

  it("records the injected evaluation rounded to 4 decimals", async () => {
    let seen = 0;
    const out = await aggregateRound({
      ...roundInputs(),
      evaluate: async (model) => {
        seen = model.length;
        return { dataset: "mnist-test", examples: 1000, accuracy: 0.912345678, loss: 0.3333333 };
      },
    });
    expect(seen).to.equal(4);
    expect(out.report.evaluation).to.deep.equal({ dataset: "mnist-test", examples: 1000, accuracy: 0.9123, loss: 0.3333 });
  });

  it("refuses a report beyond one block, and bad rule parameters, by name", async () => {
    const crowd = Array.from({ length: 9000 }, (_, i) => getAddress(`0x${(i + 1).toString(16).padStart(40, "0")}`));
    const inputs = roundInputs();
    const error = await aggregateRound({ ...inputs, committers: [...inputs.committers, ...crowd] }).then(
      () => expect.fail("expected ReportTooLargeError"),
      (e: Error) => e,
    );
    expect(error).to.be.instanceOf(ReportTooLargeError);
    expect(error.message).to.match(/report is \d+ bytes; reports must fit one 1048576-byte block/);
    await aggregateRound({ ...inputs, rule: { name: "krum", params: {} } }).then(
      () => expect.fail("expected RuleParameterError"),
      (e: Error) => expect(e).to.be.instanceOf(RuleParameterError).and.have.property("message").that.matches(/expected parameter f/),
    );
    await aggregateRound({ ...inputs, rule: { name: "krum", params: { f: 2 } } }).then(
      () => expect.fail("expected BreakdownConditionError"),
      (e: Error) => expect(e).to.be.instanceOf(BreakdownConditionError).and.have.property("message").that.matches(/n >= 2f \+ 3/),
    );
  });

  it("aggregate-files reproduces the round's model bytes from the accepted files and refuses files that do not fit", async () => {
    const inputs = roundInputs();
    const out = await aggregateRound(inputs);
    const fileOf = (i: number) => {
      const r = inputs.reveals.find((x) => x.participant === PARTICIPANTS[i])!;
      return { name: `client-${i}.safetensors`, bytes: (inputs.files.get(r.updateDigest) as { bytes: Uint8Array }).bytes };
    };
    const files = [4, 2, 0, 3, 1].map(fileOf);
    const offline = aggregateFiles(files, { rule: { name: DEFAULT_RULE, params: DEFAULT_RULE_PARAMS }, base: { name: "base.safetensors", bytes: baseBytes }, producer: COORDINATOR });
    expect(offline.kind).to.equal("model");
    expect(sha256Digest(offline.bytes)).to.equal(out.result.newModelDigest);

    const delta = aggregateFiles(files, { rule: { name: "median", params: {} } });
    expect(decodeUpdate(delta.bytes).metadata.kind).to.equal("delta");

    expect(() => aggregateFiles([fileOf(0), fileOf(0)], { rule: { name: "fedavg", params: {} } })).to.throw(OfflineAggregationError, /both from/);
    expect(() => aggregateFiles([fileOf(7)], { rule: { name: "fedavg", params: {} } })).to.throw(OfflineAggregationError, /client-7\.safetensors: .*NaN/);
    expect(() => aggregateFiles([{ name: "base.safetensors", bytes: baseBytes }], { rule: { name: "fedavg", params: {} } })).to.throw(OfflineAggregationError, /is a model, expected a delta/);
    const otherBase = encodeUpdate(decodeUpdate(baseBytes).tensors, { ...decodeUpdate(baseBytes).metadata, round: 7n });
    expect(() => aggregateFiles([fileOf(0)], { rule: { name: "fedavg", params: {} }, base: { name: "other.safetensors", bytes: otherBase } })).to.throw(
      OfflineAggregationError,
      /client-0\.safetensors was trained from model 0x[0-9a-f]{64}, expected/,
    );
  });
});
