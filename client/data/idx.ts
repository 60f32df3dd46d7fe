// Reader for the IDX files MNIST and Fashion-MNIST are distributed in (plain or gzip), so
// users can train on the full data sets (Debian's dataset-fashion-mnist installs them under
// /usr/share/datasets/fashion-mnist/). Strict: magic number, dimensions and lengths are
// checked and every error names the file.
//
// Format (big-endian): 0x00 0x00, a type byte, a dimension count d, then d uint32 sizes,
// then the values. Image and label files use unsigned bytes (type 0x08), the only type read.
import { readFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import { AnchorFLError } from "../../lib/errors.js";
import { checkDataset, type Dataset } from "./dataset.js";

export class IdxFormatError extends AnchorFLError {}

export interface IdxArray {
  readonly dims: readonly number[];
  readonly data: Uint8Array;
}

const UBYTE = 0x08;

function fail(source: string, message: string, details: Record<string, unknown> = {}): never {
  throw new IdxFormatError(`${source}: ${message}`, { details: { source, ...details } });
}

/** Parses IDX bytes (already gunzipped). `source` names the file in errors. */
export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  if (bytes.length < 4) fail(source, `expected at least a 4-byte IDX header, found ${bytes.length} bytes`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    fail(source, `expected IDX magic 0x0000, found 0x${bytes[0].toString(16).padStart(2, "0")}${bytes[1].toString(16).padStart(2, "0")}`);
  }
  if (bytes[2] !== UBYTE) fail(source, `expected unsigned-byte data (type 0x08), found type 0x${bytes[2].toString(16).padStart(2, "0")}`);
  const ndims = bytes[3];
  if (ndims === 0) fail(source, "expected at least one dimension, found 0");
  const headerLength = 4 + 4 * ndims;
  if (bytes.length < headerLength) fail(source, `expected a ${headerLength}-byte header for ${ndims} dimensions, found ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((n, d) => n * d, 1);
  const found = bytes.length - headerLength;
  if (found !== expected) {
    fail(source, `dimensions [${dims.join(", ")}] need ${expected} data bytes, found ${found}`, { dims, expected, found });
  }
  return { dims, data: bytes.subarray(headerLength) };
}

/** Reads an IDX file, gunzipping it when it starts with the gzip magic (whatever its name). */
export async function readIdx(file: string): Promise<IdxArray> {
  let bytes: Uint8Array = await readFile(file);
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (cause) {
      throw new IdxFormatError(`${file}: expected valid gzip data, found a corrupt stream (${(cause as Error).message})`, {
        details: { source: file },
        cause,
      });
    }
  }
  return parseIdx(bytes, file);
}

/** Builds a Dataset from an IDX image array [n, h, w] and label array [n]; pixels scaled to [0, 1]. */
export function idxToDataset(images: IdxArray, labels: IdxArray, sources: { images: string; labels: string }, classes = 10): Dataset {
  if (images.dims.length !== 3) fail(sources.images, `expected image dimensions [n, height, width], found [${images.dims.join(", ")}]`);
  if (labels.dims.length !== 1) fail(sources.labels, `expected label dimensions [n], found [${labels.dims.join(", ")}]`);
  const [n, height, width] = images.dims;
  if (labels.dims[0] !== n) {
    fail(sources.labels, `expected ${n} labels to match ${sources.images}, found ${labels.dims[0]}`, { expected: n, found: labels.dims[0] });
  }
  const pixels = new Float32Array(images.data.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = images.data[i] / 255;
  return checkDataset({ images: pixels, labels: Uint8Array.from(labels.data), n, height, width, classes }, sources.labels);
}

/** Loads an image file and its label file (e.g. train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz). */
export async function loadIdxDataset(imagesFile: string, labelsFile: string, classes = 10): Promise<Dataset> {
  const [images, labels] = await Promise.all([readIdx(imagesFile), readIdx(labelsFile)]);
  return idxToDataset(images, labels, { images: imagesFile, labels: labelsFile }, classes);
}
