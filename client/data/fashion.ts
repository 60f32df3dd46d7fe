// Fashion-MNIST (Xiao et al. 2017): 70,000 28×28 greyscale clothing images in 10 classes, the
// drop-in harder replacement for MNIST. Not shipped with the project: Debian's
// dataset-fashion-mnist installs the four IDX .gz files under /usr/share/datasets/fashion-mnist/,
// read here with the strict IDX reader. The published split is kept: 60,000 training images
// for clients, 10,000 test images held out.
import { access } from "node:fs/promises";
import path from "node:path";
import { DatasetError } from "./dataset.js";
import { loadIdxDataset } from "./idx.js";
import type { TrainTestSplit } from "./mnist.js";

export const FASHION_MNIST_FOLDER = "/usr/share/datasets/fashion-mnist";

const FASHION_MNIST_FILES = {
  trainImages: "train-images-idx3-ubyte.gz",
  trainLabels: "train-labels-idx1-ubyte.gz",
  testImages: "t10k-images-idx3-ubyte.gz",
  testLabels: "t10k-labels-idx1-ubyte.gz",
} as const;

export class FashionMnistMissingError extends DatasetError {}

/** The files of FASHION_MNIST_FILES absent from `folder` (full paths); empty when all are there. */
export async function missingFashionMnistFiles(folder = FASHION_MNIST_FOLDER): Promise<string[]> {
  const files = Object.values(FASHION_MNIST_FILES).map((f) => path.join(folder, f));
  const present = await Promise.all(files.map((f) => access(f).then(() => true, () => false)));
  return files.filter((_, i) => !present[i]);
}

/** Loads the published split from `folder`; FashionMnistMissingError names every missing file. */
export async function loadFashionMnist(folder = FASHION_MNIST_FOLDER): Promise<TrainTestSplit> {
  const missing = await missingFashionMnistFiles(folder);
  if (missing.length > 0) {
    throw new FashionMnistMissingError(`Fashion-MNIST not found: missing ${missing.join(", ")}`, {
      details: { folder, missing },
      hint: `install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or put the four IDX .gz files from github.com/zalandoresearch/fashion-mnist in ${folder}`,
    });
  }
  const file = (name: keyof typeof FASHION_MNIST_FILES) => path.join(folder, FASHION_MNIST_FILES[name]);
  const [train, test] = await Promise.all([loadIdxDataset(file("trainImages"), file("trainLabels")), loadIdxDataset(file("testImages"), file("testLabels"))]);
  return { train, test };
}
