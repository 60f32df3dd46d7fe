// Fashion-MNIST from its IDX files: a missing folder is refused with every missing path named
// and a hint; when Debian's dataset-fashion-mnist is installed, the published split loads and
// the simulator learns on a small part of it (skipped, saying why, when it is not installed).
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { classCounts } from "../../client/data/dataset.js";
import { FASHION_MNIST_FOLDER, FashionMnistMissingError, loadFashionMnist, missingFashionMnistFiles } from "../../client/data/fashion.js";
import { initBackend } from "../../client/model/backend.js";
import { simulate } from "../../lib/simulation/simulate.js";
import { smallSimulation } from "../helpers/simulation.js";

describe("Fashion-MNIST in the simulator", function () {
  this.timeout(60_000);

  it("names every missing file and how to install them", async () => {
    const folder = await mkdtemp(path.join(os.tmpdir(), "anchorfl-fashion-"));
    try {
      await loadFashionMnist(folder).then(
        () => expect.fail("loaded Fashion-MNIST from an empty folder"),
        (error: unknown) => {
          expect(error).to.be.instanceOf(FashionMnistMissingError);
          const message = (error as Error).message;
          expect(message).to.include(path.join(folder, "train-images-idx3-ubyte.gz"));
          expect(message).to.include(path.join(folder, "t10k-labels-idx1-ubyte.gz"));
          expect(message).to.include("dataset-fashion-mnist");
        },
      );
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it("loads the installed 60,000 / 10,000 split and FedAvg learns on 300 of its images", async function () {
    const missing = await missingFashionMnistFiles();
    if (missing.length > 0) {
      console.log(`    skipped: Fashion-MNIST is not installed (${missing.join(", ")} missing; apt-get install dataset-fashion-mnist)`);
      this.skip();
    }
    const fashion = await loadFashionMnist(FASHION_MNIST_FOLDER);
    const { train, test } = fashion;
    expect([train.n, test.n, train.height, train.width]).to.deep.equal([60_000, 10_000, 28, 28]);
    expect(classCounts(test.labels, 10)).to.deep.equal(new Array(10).fill(1000));
    await initBackend(undefined, { log: () => {} });
    const result = await simulate(smallSimulation(fashion, { train: 300, test: 300 }, { clients: 5, seed: 3 }));
    // Ten classes: chance is 10%.
    expect(result.final.accuracy).to.be.greaterThan(0.4);
  });
});
