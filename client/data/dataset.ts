// The in-memory labelled image set every data source produces and every trainer consumes:
// images flattened row-major (n × height × width, one channel, values in [0, 1]) and one
// class label per image. Kept as plain typed arrays so partitioning and attacks stay pure.
import { AnchorFLError } from "../../lib/errors.js";

export interface Dataset {
  readonly images: Float32Array;
  readonly labels: Uint8Array;
  readonly n: number;
  readonly height: number;
  readonly width: number;
  readonly classes: number;
}

export class DatasetError extends AnchorFLError {}

/** Throws DatasetError unless the arrays agree with the declared sizes and every label is a class. */
export function checkDataset(ds: Dataset, source = "dataset"): Dataset {
  const pixels = ds.height * ds.width;
  if (ds.images.length !== ds.n * pixels) {
    throw new DatasetError(`${source}: expected ${ds.n} × ${pixels} = ${ds.n * pixels} pixel values, found ${ds.images.length}`, {
      details: { source, expected: ds.n * pixels, found: ds.images.length },
    });
  }
  if (ds.labels.length !== ds.n) {
    throw new DatasetError(`${source}: expected ${ds.n} labels, found ${ds.labels.length}`, {
      details: { source, expected: ds.n, found: ds.labels.length },
    });
  }
  const bad = ds.labels.findIndex((l) => l >= ds.classes);
  if (bad >= 0) {
    throw new DatasetError(`${source}: label ${ds.labels[bad]} at index ${bad} is not one of the ${ds.classes} classes`, {
      details: { source, index: bad, label: ds.labels[bad], classes: ds.classes },
    });
  }
  return ds;
}

/** The images and labels at `indices`, in that order (copies). */
export function subset(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const pixels = ds.height * ds.width;
  const images = new Float32Array(indices.length * pixels);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= ds.n) {
      throw new DatasetError(`index ${i} at position ${k} is outside the dataset of ${ds.n} images`, {
        details: { index: i, position: k, n: ds.n },
      });
    }
    images.set(ds.images.subarray(i * pixels, (i + 1) * pixels), k * pixels);
    labels[k] = ds.labels[i];
  }
  return { images, labels, n: indices.length, height: ds.height, width: ds.width, classes: ds.classes };
}

/** Count of each class among the labels (length = classes). */
export function classCounts(labels: ArrayLike<number>, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  return counts;
}
