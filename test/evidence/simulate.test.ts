// The in-memory simulator on a tiny real setting (5 clients, 300 real MNIST digits, MLP):
// the same seed gives the same accuracies, FedAvg under a x10 scaling attacker does worse
// than the coordinate-wise rules, and the default policy slashes a sign-flip attacker and no
// honest client.
import { expect } from "chai";
import type { Behaviour } from "../../client/attacks/behaviours.js";
import { subset } from "../../client/data/dataset.js";
import { loadMnist } from "../../client/data/mnist.js";
import { initBackend } from "../../client/model/backend.js";
import { mlpSpec } from "../../client/model/spec.js";
import { SimulationSettingsError, simulate, slashingCounts, type SimulationSettings } from "../../lib/simulation/simulate.js";

describe("in-memory simulation", function () {
  this.timeout(60_000);
  let base: SimulationSettings;

  before(async () => {
    await initBackend(undefined, { log: () => {} });
    const { train, test } = await loadMnist();
    base = {
      spec: mlpSpec(),
      train: subset(train, Array.from({ length: 300 }, (_, i) => i)),
      test: subset(test, Array.from({ length: 300 }, (_, i) => i)),
      clients: 5,
      rounds: 2,
      partition: { kind: "iid" },
      rule: "fedavg",
      attack: { kind: "honest" },
      maliciousFraction: 0,
      usePolicy: false,
      epochs: 1,
      batchSize: 16,
      learningRate: 0.1,
      seed: 7,
    };
  });

  it("gives the same accuracy per round for the same seed, and learns", async () => {
    const a = await simulate(base);
    const b = await simulate(base);
    expect(a.rounds.map((r) => r.accuracy)).to.deep.equal(b.rounds.map((r) => r.accuracy));
    expect(a.rounds).to.have.length(2);
    expect(a.rounds[1].accuracy).to.be.greaterThan(0.5);
  });

  it("FedAvg under a x10 scaling attacker at 20% ends worse than median and trimmed mean", async () => {
    const attack: Behaviour = { kind: "scale", lambda: 10 };
    const final = async (rule: string) => (await simulate({ ...base, rule, attack, maliciousFraction: 0.2, ruleParams: rule === "trimmed-mean" ? { trim: 1 } : {} })).rounds.at(-1)!.accuracy;
    const fedavg = await final("fedavg");
    expect(fedavg).to.be.lessThan(await final("median"));
    expect(fedavg).to.be.lessThan(await final("trimmed-mean"));
  });

  it("the default policy slashes the sign-flip attacker in every round and no honest client", async () => {
    const result = await simulate({ ...base, rule: "trimmed-mean", attack: { kind: "sign-flip" }, maliciousFraction: 0.2, usePolicy: true });
    const counts = slashingCounts(result);
    expect(result.malicious).to.have.length(1);
    expect(counts.truePositives).to.equal(2);
    expect(counts.falsePositives).to.equal(0);
    expect(counts.honestSlashed).to.deep.equal([]);
  });

  it("refuses a malicious fraction outside [0, 1) by name", async () => {
    await simulate({ ...base, maliciousFraction: 1 }).then(
      () => expect.fail("accepted maliciousFraction 1"),
      (error: unknown) => expect(error).to.be.instanceOf(SimulationSettingsError).with.property("message").that.includes("maliciousFraction"),
    );
  });
});
