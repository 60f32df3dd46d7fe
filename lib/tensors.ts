// The in-memory form of model weights and updates, shared by the codec, the client and the
// aggregation rules. A tensor set is always in canonical order (sorted by name, code-unit
// order) so that the same weights flatten and encode to the same bytes everywhere.
import { AnchorFLError } from "./errors.js";

export interface TensorShape {
  readonly name: string;
  readonly shape: readonly number[];
}

export interface Tensor extends TensorShape {
  readonly data: Float32Array;
}

export class TensorShapeError extends AnchorFLError {}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Returns the tensors sorted by name (a new array; the tensors themselves are not copied). */
export function canonicalOrder<T extends TensorShape>(tensors: readonly T[]): T[] {
  return [...tensors].sort((a, b) => compareNames(a.name, b.name));
}

/** Concatenates the tensors, in canonical order, into one new vector. */
export function flatten(tensors: readonly Tensor[]): Float32Array {
  const ordered = canonicalOrder(tensors);
  const out = new Float32Array(ordered.reduce((n, t) => n + t.data.length, 0));
  let offset = 0;
  for (const t of ordered) {
    out.set(t.data, offset);
    offset += t.data.length;
  }
  return out;
}

/** Splits a flat vector back into tensors of the given shapes (canonical order). Views, not copies. */
export function unflatten(flat: Float32Array, shapes: readonly TensorShape[]): Tensor[] {
  const ordered = canonicalOrder(shapes);
  const total = ordered.reduce((n, s) => n + elementCount(s.shape), 0);
  if (total !== flat.length) {
    throw new TensorShapeError(`vector has ${flat.length} values, the shapes need ${total}`, {
      details: { expected: total, found: flat.length },
    });
  }
  let offset = 0;
  return ordered.map((s) => {
    const n = elementCount(s.shape);
    const t = { name: s.name, shape: [...s.shape], data: flat.subarray(offset, offset + n) };
    offset += n;
    return t;
  });
}
