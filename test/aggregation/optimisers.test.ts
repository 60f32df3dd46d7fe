// Server optimisers against one- and two-step values computed by hand, purity, and the state's
// round trip through tensors.
import { expect } from "chai";
import {
  fedAdam,
  fedAvgM,
  fedYogi,
  initialServerState,
  serverStateFromTensors,
  serverStateToTensors,
  ServerStateError,
  RuleParameterError,
  type ServerStep,
} from "../../lib/aggregation/index.js";
import { expectClose, expectNotClose } from "../helpers/close.js";

const g1 = Float32Array.of(1, -2);
const g2 = Float32Array.of(0.5, 0);

function expectVectorClose(actual: Float32Array, expected: number[], tolerance = 1e-6): void {
  expect(actual.length).to.equal(expected.length);
  actual.forEach((x, k) => expectClose(x, expected[k], tolerance, `coordinate ${k}`));
}

describe("server optimisers", () => {
  it("fedavgm: m = momentum * m + delta, step lr * m", () => {
    const one = fedAvgM(g1, undefined, { lr: 0.5, momentum: 0.9 });
    expectVectorClose(one.delta, [0.5, -1]);
    const two = fedAvgM(g2, one.state, { lr: 0.5, momentum: 0.9 });
    // m2 = 0.9 * [1, -2] + [0.5, 0] = [1.4, -1.8]
    expectVectorClose(two.state.m, [1.4, -1.8]);
    expectVectorClose(two.delta, [0.7, -0.9]);
    expect(two.state.t).to.equal(2);
  });

  it("fedadam: Reddi et al.'s update, by hand over two steps", () => {
    const options = { lr: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9 };
    const one = fedAdam(g1, undefined, options);
    // m1 = 0.1 * g = [0.1, -0.2]; v1 = 0.01 * g^2 = [0.01, 0.04]; step = 0.1 * m1 / sqrt(v1) = [0.1, -0.1]
    expectVectorClose(one.state.m, [0.1, -0.2]);
    expectVectorClose(one.state.v as Float32Array, [0.01, 0.04]);
    expectVectorClose(one.delta, [0.1, -0.1]);
    const two = fedAdam(g2, one.state, options);
    // m2 = [0.09 + 0.05, -0.18] ; v2 = [0.0099 + 0.0025, 0.0396]; step = 0.1 * m2 / sqrt(v2)
    expectVectorClose(two.state.m, [0.14, -0.18]);
    expectVectorClose(two.state.v as Float32Array, [0.0124, 0.0396]);
    expectVectorClose(two.delta, [(0.1 * 0.14) / Math.sqrt(0.0124), (0.1 * -0.18) / Math.sqrt(0.0396)]);
  });

  it("fedyogi: v moves towards g^2 by (1 - beta2) g^2 with the sign of g^2 - v", () => {
    const options = { lr: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9 };
    const one = fedYogi(g1, undefined, options);
    expectVectorClose(one.delta, [0.1, -0.1]); // from v = 0 Yogi's first step equals Adam's
    const two = fedYogi(g2, one.state, options);
    // coordinate 0: v1 = 0.01 < g^2 = 0.25 -> v2 = 0.01 + 0.01 * 0.25 = 0.0125; coordinate 1: g = 0 -> v2 = v1 = 0.04
    expectVectorClose(two.state.v as Float32Array, [0.0125, 0.04]);
    expectVectorClose(two.delta, [(0.1 * 0.14) / Math.sqrt(0.0125), (0.1 * -0.18) / 0.2]);
    expectNotClose(two.delta[1], fedAdam(g2, one.state, options).delta[1], 1e-4);
  });

  it("bias correction scales the step by sqrt(1 - beta2^t) / (1 - beta1^t)", () => {
    const options = { lr: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9 };
    const one = fedAdam(g1, undefined, { ...options, biasCorrection: true });
    expectVectorClose(one.delta, [0.1, -0.1]); // t = 1: sqrt(0.01) / 0.1 = 1
    const plain = fedAdam(g2, one.state, options);
    const corrected = fedAdam(g2, one.state, { ...options, biasCorrection: true });
    const scale = Math.sqrt(1 - 0.99 * 0.99) / (1 - 0.9 * 0.9);
    expectVectorClose(corrected.delta, Array.from(plain.delta, (x) => x * scale), 1e-6);
  });

  it("never mutates the state or the delta passed in", () => {
    const state = fedAdam(g1, undefined).state;
    const snapshot = { t: state.t, m: state.m.slice(), v: (state.v as Float32Array).slice() };
    const delta = g2.slice();
    const steps: ServerStep[] = [fedAdam(delta, state), fedYogi(delta, state), fedAvgM(delta, { t: state.t, m: state.m })];
    expect(state).to.deep.equal(snapshot);
    expect(delta).to.deep.equal(g2);
    for (const step of steps) expect(step.state.m).not.to.equal(state.m);
  });

  it("state round-trips through tensors, and hostile state is refused", () => {
    const state = fedYogi(g2, fedYogi(g1, undefined).state).state;
    const tensors = serverStateToTensors(state);
    expect(tensors.map((t) => t.name)).to.deep.equal(["m", "t", "v"]);
    expect(serverStateFromTensors(tensors)).to.deep.equal(state);
    expect(serverStateFromTensors(serverStateToTensors(initialServerState(3, false)))).to.deep.equal({ t: 0, m: new Float32Array(3) });

    const [m, t, v] = tensors;
    expect(() => serverStateFromTensors([m, v])).to.throw(ServerStateError, "expected tensors m and t");
    expect(() => serverStateFromTensors([m, t, { ...v, data: Float32Array.of(1) }])).to.throw(ServerStateError, "as many values as m");
    expect(() => serverStateFromTensors([m, t, { ...v, name: "w" }])).to.throw(ServerStateError, "found m, t, w");
    expect(() => serverStateFromTensors([m, { ...t, data: Float32Array.of(-1) }])).to.throw(ServerStateError, "integer >= 0");
    expect(() => serverStateFromTensors([{ ...m, data: Float32Array.of(NaN, 0) }, t])).to.throw(ServerStateError, "finite");
    expect(() => fedAdam(Float32Array.of(1, 2, 3), state)).to.throw(ServerStateError, "3 values");
    expect(() => fedAdam(g1, { t: 1, m: state.m })).to.throw(ServerStateError, "state.v");
    expect(() => fedAvgM(g1, undefined, { momentum: 1 })).to.throw(RuleParameterError, "momentum in [0, 1)");
  });
});
