// The simulator's encoding setting, which the compression benchmark measures with: every update
// goes through the real codec, sizes are the encoded files', and error feedback changes what the
// clients send (so the trained model), while float32 through the codec changes nothing.
import { expect } from "chai";
import { loadMnist } from "../../client/data/mnist.js";
import { initBackend } from "../../client/model/backend.js";
import { parameterCount } from "../../client/model/spec.js";
import { CompressedLink } from "../../lib/codec/compression-link.js";
import { topkCount } from "../../lib/codec/compression.js";
import { simulate, type SimulationSettings } from "../../lib/simulation/simulate.js";
import { smallSimulation } from "../helpers/simulation.js";

describe("simulator with update encoding", function () {
  this.timeout(60_000);
  let base: SimulationSettings;

  before(async () => {
    await initBackend("wasm", { log: () => {} });
    base = smallSimulation(await loadMnist(), { train: 300, test: 200 }, { clients: 3, seed: 1 });
  });

  it("records real file sizes, and float32 through the codec learns exactly what it learns without", async () => {
    const n = parameterCount(base.spec);
    const plain = await simulate({ ...base, seed: 1 });
    const float32 = await simulate({ ...base, seed: 1, encoding: {} });
    const topk = await simulate({ ...base, seed: 1, encoding: { compression: { scheme: "topk", fraction: 0.05 } } });
    const noFeedback = await simulate({ ...base, seed: 1, encoding: { compression: { scheme: "topk", fraction: 0.05, errorFeedback: false } } });
    expect(plain.rounds[0].updateBytes).to.equal(undefined);
    expect(float32.final).to.deep.equal(plain.final);
    for (const r of float32.rounds) for (const bytes of r.updateBytes!) expect(bytes).to.be.within(4 * n, 4 * n + 2_000);
    for (const r of topk.rounds) for (const bytes of r.updateBytes!) expect(bytes).to.be.within(8 * topkCount(n, 0.05), 8 * topkCount(n, 0.05) + 2_000);
    expect(topk.rounds[0].updateBytes).to.deep.equal(noFeedback.rounds[0].updateBytes);
    // Round 1 is the same for both (no residual yet); round 2 differs only by the carried residual.
    expect(topk.rounds[0].accuracy).to.equal(noFeedback.rounds[0].accuracy);
    expect(topk.final).to.not.deep.equal(noFeedback.final);
  });

  it("a link carries each client's residual into its next update", () => {
    const shapes = [{ name: "w", shape: [10] }];
    const link = new CompressedLink({ scheme: "topk", fraction: 0.1 }, shapes, `0x${"11".repeat(32)}`);
    const meta = { participant: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", round: 1n, numSamples: 10 };
    const delta = [{ name: "w", shape: [10], data: Float32Array.of(5, 1, 1, 1, 1, 1, 1, 1, 1, 4) }];
    expect([...link.send(delta, meta).update[0].data]).to.deep.equal([5, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // The carried 4 (index 9) plus this round's 4 now outweighs the new 5 at index 0.
    expect([...link.send(delta, { ...meta, round: 2n }).update[0].data]).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0, 0, 8]);
  });
});
