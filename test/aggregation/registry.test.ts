// The registry: rules and optimisers by name, with command-line style parameters.
import { expect } from "chai";
import {
  aggregate,
  getRule,
  getServerOptimiser,
  multiKrum,
  parseParams,
  RuleParameterError,
  AggregationInputError,
  rules,
  serverOptimisers,
  trimmedMean,
} from "../../lib/aggregation/index.js";
import { honestUpdates, sha256 } from "./fixtures.js";
import { expectClose } from "../helpers/close.js";

describe("aggregation registry", () => {
  const updates = honestUpdates(7, 50, 4);

  it("runs a rule from command-line strings exactly as the typed call does", () => {
    const viaRegistry = aggregate("multi-krum", updates, { f: "2", m: "3" });
    const direct = multiKrum(updates, { f: 2, m: 3 });
    expect(sha256(viaRegistry.aggregate)).to.equal(sha256(direct.aggregate));
    expect(viaRegistry.params).to.deep.equal({ f: 2, m: 3 });
    expect(aggregate("trimmed-mean", updates, { beta: "0.3", clip: "median" }).aggregate).to.deep.equal(
      trimmedMean(updates, { beta: 0.3, clip: "median" }).aggregate,
    );
  });

  it("documents every rule: score meaning, breakdown condition, parameters", () => {
    expect(Object.keys(rules)).to.have.members([
      "fedavg",
      "median",
      "trimmed-mean",
      "krum",
      "multi-krum",
      "bulyan",
      "geometric-median",
      "norm-clipping",
      "fltrust",
    ]);
    for (const rule of Object.values(rules)) {
      expect(rule.score.length, rule.name).to.be.greaterThan(5);
      expect(rule.breakdown.length, rule.name).to.be.greaterThan(3);
    }
    expect(getRule("bulyan").breakdown).to.equal("n >= 4f + 3");
    expect(Object.keys(serverOptimisers)).to.have.members(["fedavgm", "fedadam", "fedyogi"]);
  });

  it("refuses unknown names and malformed or missing parameters by name", () => {
    expect(() => getRule("mean")).to.throw(RuleParameterError, 'unknown rule "mean" (known: fedavg, median');
    expect(() => getServerOptimiser("adam")).to.throw(RuleParameterError, "unknown server optimiser");
    expect(() => getRule("__proto__")).to.throw(RuleParameterError);
    expect(() => aggregate("krum", updates, {})).to.throw(RuleParameterError, "expected parameter f");
    expect(() => aggregate("krum", updates, { f: "1.5" })).to.throw(RuleParameterError, 'expected f to be an integer, found "1.5"');
    expect(() => aggregate("krum", updates, { f: "two" })).to.throw(RuleParameterError, "an integer");
    expect(() => aggregate("krum", updates, { f: "1", m: "2" })).to.throw(RuleParameterError, "unknown parameter m (accepted: f, clip)");
    expect(() => aggregate("fedavg", updates, { clip: "max" })).to.throw(RuleParameterError, 'a number or "median"');
    expect(() => parseParams(getServerOptimiser("fedadam"), { biasCorrection: "yes" })).to.throw(RuleParameterError, "true or false");
    expect(() => aggregate("fltrust", updates)).to.throw(AggregationInputError, "server update");
  });

  it("steps a server optimiser from parsed parameters", () => {
    const opt = getServerOptimiser("fedadam");
    const step = opt.step(Float32Array.of(1), undefined, parseParams(opt, { lr: "0.1", biasCorrection: "true" }));
    expectClose(step.delta[0], 0.1, 1e-6);
    expect(step.state.v).to.be.instanceOf(Float32Array);
  });
});
