// Robust aggregation rules as pure functions over flat Float32Array updates, their registry
// by name, and server optimisers. See each module for a rule's score and breakdown condition.
export * from "./types.js";
export * from "./errors.js";
export { fedAvg, normClipping, type FedAvgOptions, type NormClippingOptions } from "./fedavg.js";
export { median, trimmedMean, coordinateMedian, coordinateTrimmedMean, type MedianOptions, type TrimmedMeanOptions } from "./coordinatewise.js";
export { krum, multiKrum, bulyan, krumScores, closestToMedianMean, type KrumOptions, type MultiKrumOptions, type BulyanOptions } from "./krum.js";
export { geometricMedian, weiszfeld, type GeometricMedianOptions, type WeiszfeldResult } from "./geomedian.js";
export { flTrust, type FLTrustOptions } from "./fltrust.js";
export { clipRows, clipBound, type Clipped } from "./clipping.js";
export { weightedMean, weightedMeanFloat32, pairwiseSquaredDistances } from "./kernels.js";
export { prepare, type Prepared } from "./input.js";
export * from "./optimisers.js";
export * from "./registry.js";
