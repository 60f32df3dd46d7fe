// Data-level Byzantine behaviour: the client trains honestly, but on poisoned labels.
import type { Dataset } from "../data/dataset.js";

/** Label flip: class l becomes classes - 1 - l (9 - l for digits; with an odd class count the middle class stays). */
export function flipLabels(labels: Uint8Array, classes: number): Uint8Array {
  return labels.map((l) => classes - 1 - l);
}

/** The same images with flipped labels. */
export function labelFlipDataset(ds: Dataset): Dataset {
  return { ...ds, labels: flipLabels(ds.labels, ds.classes) };
}
