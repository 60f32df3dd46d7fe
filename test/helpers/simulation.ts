// The simulator settings the tests start from: the MLP, the first digits of a data set, a few
// honest clients, two rounds of plain FedAvg without the policy. Each test overrides what it checks.
import { subset, type Dataset } from "../../client/data/dataset.js";
import { mlpSpec } from "../../client/model/spec.js";
import type { SimulationSettings } from "../../lib/simulation/simulate.js";

const first = (data: Dataset, n: number) => subset(data, Array.from({ length: n }, (_, i) => i));

export function smallSimulation(
  data: { readonly train: Dataset; readonly test: Dataset },
  sizes: { readonly train: number; readonly test: number },
  overrides: Partial<SimulationSettings> & Pick<SimulationSettings, "clients" | "seed">,
): SimulationSettings {
  return {
    spec: mlpSpec(),
    train: first(data.train, sizes.train),
    test: first(data.test, sizes.test),
    rounds: 2,
    partition: { kind: "iid" },
    rule: "fedavg",
    attack: { kind: "honest" },
    maliciousFraction: 0,
    usePolicy: false,
    epochs: 1,
    batchSize: 16,
    learningRate: 0.1,
    ...overrides,
  };
}
