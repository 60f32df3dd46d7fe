// Training telemetry: strict parsing of hostile metadata values into named problems (never a
// crash, never a NaN in the report), the plausibility checks of the task option, and a whole
// round: a sample claim outside the task's bounds is invalid and slashed with its reason, other
// implausible telemetry is flagged without slashing, and the report carries every participant's
// telemetry through parseReport.
import { expect } from "chai";
import { getAddress } from "ethers";
import { modelShapes, mlpSpec, modelSpecDigest, type ModelSpec } from "../../client/model/spec.js";
import { DEFAULT_POLICY } from "../../lib/aggregator/policy.js";
import { anomalyText, telemetryText } from "../../lib/audit/format.js";
import { DEFAULT_RULE, DEFAULT_RULE_PARAMS, aggregateRound, type Fetched, type RevealFact } from "../../lib/aggregator/round.js";
import { TelemetryError, parseTelemetry, readTelemetry, telemetryFindings } from "../../lib/aggregator/telemetry.js";
import { encodeUpdate } from "../../lib/codec/update-file.js";
import { sha256Digest } from "../../lib/digest.js";
import { TaskOptionsError, checkTaskOptions, optionFromPairs } from "../../lib/protocol/options.js";
import { ReportFormatError, parseReport } from "../../lib/protocol/report.js";
import { Random } from "../../lib/random.js";
import { ZERO_ROOT } from "../../lib/store/index.js";
import { unflatten } from "../../lib/tensors.js";

const GOOD = { loss_before: "2.30259", loss_after: "0.912345", epochs: "1", wall_ms: "412", backend: "wasm", dp_epsilon: "3.5", dp_delta: "1e-05" };

describe("training telemetry: parsing, plausibility, the report", function () {
  this.timeout(60_000);

  it("parses the participant's telemetry keys into numbers and ignores other keys", () => {
    const { telemetry, problems } = readTelemetry({ ...GOOD, note: "anything", compression: "f16" });
    expect(problems).to.deep.equal([]);
    expect(telemetry).to.deep.equal({ lossBefore: 2.30259, lossAfter: 0.912345, epochs: 1, wallMs: 412, backend: "wasm", dpEpsilon: 3.5, dpDelta: 1e-5 });
    expect(parseTelemetry({})).to.deep.equal({});
  });

  it("names every hostile value (NaN, negative, infinite, huge, hex, fractional epochs, long names) and never throws from readTelemetry", () => {
    const hostile = {
      loss_before: "NaN",
      loss_after: "-0.5",
      epochs: "1.5",
      wall_ms: "99999999999999999999",
      backend: "x".repeat(500),
      dp_epsilon: "1e400",
      dp_delta: "0x10",
    };
    const { telemetry, problems } = readTelemetry(hostile);
    expect(telemetry).to.deep.equal({});
    expect(problems).to.have.length(7);
    for (const key of Object.keys(hostile)) expect(problems.some((p) => p.startsWith(`telemetry ${key} `)), key).to.equal(true);
    // The echoed value is cut short: a hostile file cannot bloat the report through its problems.
    expect(problems.find((p) => p.startsWith("telemetry backend"))!.length).to.be.lessThan(120);
    for (const bad of ["Infinity", "", " 1", "1,5", "+1"]) expect(readTelemetry({ loss_before: bad }).problems, JSON.stringify(bad)).to.have.length(1);
    expect(readTelemetry({ epochs: "0" }).problems).to.have.length(1);
    expect(() => parseTelemetry(hostile)).to.throw(TelemetryError, /loss_before.*loss_after.*epochs/);
  });

  it("checks claims against the task option: samples out of bounds are invalid, the rest are flags", () => {
    const option = { minSamples: 10, maxSamples: 1000, maxEpochs: 5 };
    expect(telemetryFindings(500, GOOD, option)).to.deep.equal({ flags: [] });
    expect(telemetryFindings(5000, GOOD, option).invalid).to.match(/claims 5000 training samples, outside the task's bounds of 10 to 1000/);
    expect(telemetryFindings(3, GOOD, option).invalid).to.match(/claims 3 /);
    expect(telemetryFindings(500, { ...GOOD, epochs: "50" }, option).flags).to.deep.equal(["50 epochs, above the task's 5"]);
    expect(telemetryFindings(500, { ...GOOD, loss_after: "5" }, option).flags[0]).to.match(/loss rose from 2.30259 to 5, more than 2 x/);
    // A rise within the ratio (noise, DP, a proximal term) is not flagged.
    expect(telemetryFindings(500, { ...GOOD, loss_after: "2.5" }, option).flags).to.deep.equal([]);
    expect(telemetryFindings(500, {}, option).flags).to.deep.equal(["no training telemetry (loss, epochs)"]);
    expect(telemetryFindings(500, { ...GOOD, loss_before: "NaN" }, option).flags[0]).to.match(/telemetry loss_before must be/);
  });

  it("refuses malformed telemetry and anomaly options by name", () => {
    expect(checkTaskOptions({ telemetry: { minSamples: 1, maxSamples: 10 }, anomaly: { threshold: 3, dims: 8, slashThreshold: 6 } })).to.have.keys("telemetry", "anomaly");
    expect(() => checkTaskOptions({ telemetry: { minSamples: 20, maxSamples: 10, maxEpochs: 0, maxLossRatio: 0.5, typo: 1 } })).to.throw(
      TaskOptionsError,
      /telemetry\.typo is not a known option.*maxEpochs must be a positive integer.*minSamples \(20\) exceeds maxSamples \(10\).*maxLossRatio must be a finite number >= 1/,
    );
    expect(() => checkTaskOptions({ anomaly: { threshold: -1, dims: 40 } })).to.throw(TaskOptionsError, /anomaly\.threshold must be a positive finite number.*dims must be an integer from 1 to 32/);
    expect(() => checkTaskOptions({ anomaly: { threshold: 4, slashThreshold: 3 } })).to.throw(TaskOptionsError, /slashThreshold \(3\) is below threshold \(4\)/);
    // The command-line form of a section (task create / demo --telemetry, --anomaly).
    expect(optionFromPairs("--anomaly", true)).to.deep.equal({});
    expect(optionFromPairs("--telemetry", "minSamples=10, maxSamples=5000")).to.deep.equal({ minSamples: 10, maxSamples: 5000 });
    for (const bad of ["threshold", "threshold=", "threshold=abc", "a=1=2", "=3"]) expect(() => optionFromPairs("--anomaly", bad), bad).to.throw(TaskOptionsError, /--anomaly expects key=number pairs/);
  });

  it("a round: the out-of-bounds claim is invalid and slashed, the loss riser flagged but paid, and the report carries the telemetry", async () => {
    const spec: ModelSpec = { ...mlpSpec({ seed: 0, hidden: 8 }), options: { telemetry: { minSamples: 10, maxSamples: 1000 } } };
    const specDigest = modelSpecDigest(spec);
    const shapes = modelShapes(spec);
    const d = shapes.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
    const shared = new Random(1, "direction");
    const direction = Float32Array.from({ length: d }, () => shared.normal());
    const participants = Array.from({ length: 6 }, (_, i) => getAddress(`0x${(i + 0x100).toString(16).padStart(40, "0")}`));
    // Client 4 claims 5,000 samples; client 5 says its loss tripled; the others are plausible.
    const samples = [100, 120, 140, 160, 5000, 180];
    const extras = participants.map((_, i) => (i === 5 ? { ...GOOD, loss_after: "7" } : { ...GOOD, wall_ms: String(400 + i) }));
    const reveals: RevealFact[] = [];
    const files = new Map<string, Fetched>();
    participants.forEach((participant, i) => {
      const rng = new Random(i, "client");
      const vector = Float32Array.from(direction, (x) => 0.01 * (x + 0.5 * rng.normal()));
      const bytes = encodeUpdate(unflatten(vector, shapes), { taskId: 9n, round: 1n, participant, baseModelDigest: ZERO_ROOT, numSamples: samples[i], kind: "delta", modelSpecDigest: specDigest, extra: extras[i] });
      const digest = sha256Digest(bytes);
      files.set(digest, { bytes });
      reveals.push({ participant, updateDigest: digest, numSamples: BigInt(samples[i]), contentRoot: ZERO_ROOT, blockNumber: 10 + i });
    });
    const out = await aggregateRound({
      chainId: 31337n,
      coordinator: getAddress("0x00000000000000000000000000000000000c0ffe"),
      taskId: 9n,
      round: 1n,
      spec,
      specDigest,
      baseModel: { digest: ZERO_ROOT, tensors: unflatten(new Float32Array(d), shapes) },
      budget: 1_000_000n,
      committers: participants,
      reveals,
      files,
      earlier: [],
      rule: { name: DEFAULT_RULE, params: DEFAULT_RULE_PARAMS },
      policy: DEFAULT_POLICY,
      softwareVersion: "test",
    });
    const report = parseReport(out.reportBytes);
    const by = new Map(report.participants.map((p) => [p.address, p]));
    const liar = by.get(participants[4])!;
    expect(liar.verdict).to.equal("invalid");
    expect(liar.reason).to.match(/claims 5000 training samples, outside the task's bounds of 10 to 1000/);
    expect(liar.evidence).to.include({ claimedSamples: 5000, minSamples: 10, maxSamples: 1000 });
    expect(report.slashes).to.deep.equal([{ participant: participants[4], reason: "Invalid" }]);
    const riser = by.get(participants[5])!;
    expect(riser.verdict).to.equal("accepted");
    expect(riser.evidence!.telemetryFlags).to.match(/loss rose from 2.30259 to 7/);
    expect(report.rewards.allocations.map((a) => a.account)).to.include(participants[5]);
    for (const i of [0, 1, 2, 3, 5]) {
      expect(by.get(participants[i])!.telemetry, `client ${i}`).to.deep.equal({ ...readTelemetry(extras[i]).telemetry });
    }
    expect(by.get(participants[2])!.telemetry).to.include({ wallMs: 402, backend: "wasm", lossBefore: 2.30259 });
    // How audit prints it: one cell per participant; no detector on this task, so no anomaly cell.
    expect(telemetryText(riser)).to.equal("2.303→7.000, 412 ms, wasm, flagged: local loss rose from 2.30259 to 7, more than 2 x");
    expect(telemetryText(liar)).to.equal("2.303→0.9123, 404 ms, wasm"); // what the invalid claim came with is on record too
    expect(anomalyText(riser)).to.equal("");

    // A hostile report cannot smuggle wrong types through the telemetry field.
    const tampered = JSON.parse(new TextDecoder().decode(out.reportBytes));
    tampered.participants[0].telemetry = { lossBefore: "2.3", wallMs: -1, color: "red" };
    expect(() => parseReport(new TextEncoder().encode(JSON.stringify(tampered)))).to.throw(ReportFormatError, /participants\[0\]\.telemetry/);
  });
});
