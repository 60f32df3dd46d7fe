// The in-memory simulator on a tiny real setting (5 clients, 300 real MNIST digits, MLP):
// the same seed gives the same accuracies, FedAvg under a x10 scaling attacker does worse
// than the coordinate-wise rules, and the default policy slashes a sign-flip attacker and no
// honest client. Round-1 training shared through the cache gives exactly the results of
// training afresh; FLTrust runs on a root set held back from the clients.
import { expect } from "chai";
import type { Behaviour } from "../../client/attacks/behaviours.js";
import { loadMnist } from "../../client/data/mnist.js";
import { initBackend } from "../../client/model/backend.js";
import { SimulationSettingsError, simulate, slashingCounts, TrainingCache, type SimulationSettings } from "../../lib/simulation/simulate.js";
import { smallSimulation } from "../helpers/simulation.js";

describe("in-memory simulation", function () {
  this.timeout(60_000);
  let base: SimulationSettings;

  before(async () => {
    await initBackend(undefined, { log: () => {} });
    base = smallSimulation(await loadMnist(), { train: 300, test: 300 }, { clients: 5, seed: 7 });
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

  it("a shared round-1 cache changes no number, and is hit only in round 1 by the clients that train honestly", async () => {
    const attack: Behaviour = { kind: "sign-flip" };
    const settings = { ...base, rule: "median", attack, maliciousFraction: 0.2 };
    const fresh = await simulate(settings);
    const cache = new TrainingCache();
    await simulate({ ...base, cache });
    expect(cache.hits).to.equal(0);
    const shared = await simulate({ ...settings, cache });
    // All 5 clients' round-1 deltas come from the honest run: the sign flipper crafts from the same honest delta.
    expect(cache.hits).to.equal(5);
    expect(shared.rounds.map((r) => r.accuracy)).to.deep.equal(fresh.rounds.map((r) => r.accuracy));
    // A different seed is a different key: no hit.
    await simulate({ ...settings, seed: 8, cache });
    expect(cache.hits).to.equal(5);
  });

  it('evaluate "last" evaluates only the final model, with the same final accuracy', async () => {
    const every = await simulate(base);
    const last = await simulate({ ...base, evaluate: "last" });
    expect(last.rounds[0].accuracy).to.equal(undefined);
    expect(last.final.accuracy).to.equal(every.rounds[1].accuracy);
    expect(last.final).to.deep.equal(every.final);
  });

  it("FLTrust trains on a root set held back from the clients and, unlike FedAvg, keeps learning under 40% sign flip", async () => {
    const attacked = { ...base, rootSize: 50, attack: { kind: "sign-flip" } as Behaviour, maliciousFraction: 0.4 };
    const fltrust = (await simulate({ ...attacked, rule: "fltrust" })).final.accuracy;
    const fedavg = (await simulate({ ...attacked, rule: "fedavg" })).final.accuracy;
    expect(fltrust).to.be.greaterThan(fedavg + 0.1);
    await simulate({ ...base, rule: "fltrust" }).then(
      () => expect.fail("ran fltrust without a root set"),
      (error: unknown) => expect(error).to.be.instanceOf(SimulationSettingsError).with.property("message").that.includes("root"),
    );
    await simulate({ ...base, rootSize: 298 }).then(
      () => expect.fail("accepted a root set that leaves 2 images for 5 clients"),
      (error: unknown) => expect(error).to.be.instanceOf(SimulationSettingsError).with.property("message").that.includes("root set of 298"),
    );
  });

  it("refuses a malicious fraction outside [0, 1) by name", async () => {
    await simulate({ ...base, maliciousFraction: 1 }).then(
      () => expect.fail("accepted maliciousFraction 1"),
      (error: unknown) => expect(error).to.be.instanceOf(SimulationSettingsError).with.property("message").that.includes("maliciousFraction"),
    );
  });
});
