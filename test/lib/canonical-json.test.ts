import { expect } from "chai";
import { canonicalJson, CanonicalJsonError } from "../../lib/canonical-json.js";

describe("canonical JSON", () => {
  it("sorts keys at every depth and drops undefined fields", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: "x" }, u: undefined })).to.equal(
      '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it("gives the same text for the same value built in any key order", () => {
    const one = canonicalJson({ x: 0.1 + 0.2, y: [1e21, -0], n: 12345678901234567890n });
    const two = canonicalJson({ n: 12345678901234567890n, y: [1e21, -0], x: 0.30000000000000004 });
    expect(one).to.equal(two);
    expect(one).to.equal('{"n":"12345678901234567890","x":0.30000000000000004,"y":[1e+21,0]}');
  });

  it("refuses values JSON cannot represent, naming where they are", () => {
    expect(() => canonicalJson({ a: [1, NaN] })).to.throw(CanonicalJsonError, "$.a[1] is NaN");
    expect(() => canonicalJson({ f: () => 1 })).to.throw(CanonicalJsonError, "$.f is a function");
  });
});
