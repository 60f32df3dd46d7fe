import { expect } from "chai";
import { deriveSeed, Random, RandomArgumentError } from "../../lib/random.js";
import { expectClose } from "../helpers/close.js";

describe("seeded random (lib/random)", () => {
  it("repeats a stream for the same seed and labels, and differs for others", () => {
    const draw = (seed: number, ...labels: (number | string)[]) => Array.from({ length: 5 }, ((r) => () => r.float())(new Random(seed, ...labels)));
    expect(draw(7, "a")).to.deep.equal(draw(7, "a"));
    expect(draw(7, "a")).not.to.deep.equal(draw(7, "b"));
    expect(draw(7)).not.to.deep.equal(draw(8));
    expect(deriveSeed(2 ** 40)).not.to.equal(deriveSeed(0));
  });

  it("draws uniforms, normals and gammas with the right moments", () => {
    const r = new Random(1);
    const n = 20000;
    const mean = (f: () => number) => Array.from({ length: n }, f).reduce((a, b) => a + b, 0) / n;
    expectClose(mean(() => r.float()), 0.5, 0.01);
    expectClose(mean(() => r.normal()), 0, 0.03);
    expectClose(mean(() => r.normal() ** 2), 1, 0.04);
    expectClose(mean(() => r.gamma(0.3)), 0.3, 0.02); // mean of Gamma(k, 1) is k
    expectClose(mean(() => r.gamma(4)), 4, 0.08);
  });

  it("shuffles into a permutation without touching the input", () => {
    const input = [1, 2, 3, 4, 5, 6, 7, 8];
    const out = new Random(3).shuffle(input);
    expect(input).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    expect([...out].sort()).to.deep.equal(input);
    expect(out).not.to.deep.equal(input);
    const d = new Random(4).dirichlet(0.5, 6);
    expectClose(d.reduce((a, b) => a + b, 0), 1, 1e-12);
  });

  it("refuses bad arguments with a typed error", () => {
    expect(() => new Random(1.5)).to.throw(RandomArgumentError, "safe integer");
    expect(() => new Random(1).int(0)).to.throw(RandomArgumentError, "positive integer");
    expect(() => new Random(1).gamma(0)).to.throw(RandomArgumentError, "gamma shape");
  });
});
