import { expect } from "chai";
import { decodeModelSpec, encodeModelSpec, mlpSpec, modelSpecDigest, ModelSpecError } from "../../client/model/spec.js";
import { checkTaskOptions, taskOptionsProblems, TaskOptionsError } from "../../lib/protocol/options.js";

describe("task options", () => {
  it("are absent by default and leave the spec digest unchanged", () => {
    const spec = mlpSpec({ seed: 1 });
    expect(spec).to.not.have.property("options");
    expect(taskOptionsProblems(undefined)).to.deep.equal([]);
    expect(checkTaskOptions(undefined)).to.deep.equal({});
  });

  it("are bound by the spec digest and survive a canonical round trip", () => {
    const plain = mlpSpec({ seed: 1 });
    const compressed = { ...plain, options: { compression: { scheme: "topk" as const, fraction: 0.1 } } };
    expect(modelSpecDigest(compressed)).to.not.equal(modelSpecDigest(plain));
    expect(decodeModelSpec(encodeModelSpec(compressed)).options).to.deep.equal(compressed.options);
  });

  it("name every problem of a hostile options object at once", () => {
    const problems = taskOptionsProblems({ compression: { scheme: "zip", fraction: 2, level: 9 }, sharding: true });
    expect(problems.join("\n")).to.match(/options\.sharding is not a known option/);
    expect(problems.join("\n")).to.match(/options\.compression\.level is not a known option/);
    expect(problems.join("\n")).to.match(/options\.compression\.scheme must be/);
    expect(() => checkTaskOptions([])).to.throw(TaskOptionsError, /options must be an object/);
    expect(() => checkTaskOptions({ compression: { scheme: "topk", fraction: 0 } })).to.throw(TaskOptionsError, /fraction must be a number in \(0, 1\]/);
    expect(() => checkTaskOptions({ compression: { scheme: "f16", fraction: 0.5 } })).to.throw(TaskOptionsError, /fraction applies to topk only/);
  });

  it("make a spec with bad options fail to decode", () => {
    const bad = { ...mlpSpec({ seed: 1 }), options: { compression: { scheme: "zip" } } };
    expect(() => encodeModelSpec(bad as never)).to.throw(ModelSpecError, /expected valid task options: options\.compression\.scheme/);
  });
});
