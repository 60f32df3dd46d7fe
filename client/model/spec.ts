// Model specs: the architecture every party builds, pinned next to the genesis model. A spec
// is a tfjs layers JSON (the `model.toJSON(undefined, false)` form, snake_case keys) plus
// metadata; its digest is the sha-256 of its canonical JSON bytes, so two parties agree on
// an architecture exactly when they agree on a digest. Layers are named explicitly, which
// makes weight names ("dense1/kernel") independent of tfjs's global name counter, and
// initializers carry seeds, which makes the genesis model a function of the spec alone.
//
// This module is pure (no tfjs): shapes are inferred from the topology for the layer
// classes listed below, which doubles as an allow-list for specs received from others.
// Dropout is left out on purpose: tfjs draws its masks unseeded, which would make training
// irreproducible.
import { canonicalJson, canonicalJsonBytes } from "../../lib/canonical-json.js";
import { sha256Digest, type Hex32 } from "../../lib/digest.js";
import { AnchorFLError } from "../../lib/errors.js";
import { deriveSeed } from "../../lib/random.js";
import { taskOptionsProblems, type TaskOptions } from "../../lib/protocol/options.js";
import { canonicalOrder, type TensorShape } from "../../lib/tensors.js";

export const MODEL_SPEC_FORMAT = "anchorfl.model-spec.v1";

/** Upper bound on a spec's parameters: 64 MiB of float32 weights per copy. */
export const MAX_PARAMETERS = 16 * 1024 * 1024;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface LayerJson {
  readonly class_name: string;
  readonly config: { readonly name: string; readonly [key: string]: Json };
}

export interface ModelSpec {
  readonly format: typeof MODEL_SPEC_FORMAT;
  /** A short human name, e.g. "mnist-mlp". */
  readonly name: string;
  /** [height, width, channels] of one input example. */
  readonly inputShape: readonly [number, number, number];
  readonly classes: number;
  /** tfjs layers JSON of a Sequential model. */
  readonly topology: { readonly class_name: "Sequential"; readonly config: { readonly name: string; readonly layers: readonly LayerJson[] } };
  /** The task's off-chain options (compression, ...): part of the spec so that its digest binds them. */
  readonly options?: TaskOptions;
}

export class ModelSpecError extends AnchorFLError {}

// ---- encoding and digest ----------------------------------------------------------

/** The bytes that are pinned and hashed: canonical JSON, UTF-8. */
export function encodeModelSpec(spec: ModelSpec): Uint8Array {
  return canonicalJsonBytes(checkModelSpec(spec));
}

/** Parses and checks spec bytes received from elsewhere (e.g. fetched by digest). */
export function decodeModelSpec(bytes: Uint8Array): ModelSpec {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new ModelSpecError(`expected UTF-8 JSON model spec, found unparsable bytes (${(cause as Error).message})`, { cause });
  }
  const spec = checkModelSpec(parsed as ModelSpec);
  // Only canonical bytes are accepted, so the digest of the bytes fetched is the spec's digest.
  const canonical = encodeModelSpec(spec);
  if (canonical.length !== bytes.length || canonical.some((b, i) => b !== bytes[i])) {
    throw new ModelSpecError(`expected canonical JSON (sorted keys, no whitespace) of ${canonical.length} bytes, found ${bytes.length} bytes in another form`);
  }
  return spec;
}

/** 0x-prefixed hex sha-256 of the canonical spec bytes. */
export function modelSpecDigest(spec: ModelSpec): Hex32 {
  return sha256Digest(encodeModelSpec(spec));
}

// ---- shape inference (and validation) -------------------------------------------------

type Shape = number[];

function pair(value: Json | undefined, what: string, layer: string, fallback?: [number, number]): [number, number] {
  const v = value ?? fallback;
  const p = typeof v === "number" ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((d) => Number.isInteger(d) && (d as number) > 0)) {
    throw new ModelSpecError(`layer ${layer}: expected ${what} as a positive integer or a pair, found ${JSON.stringify(value)}`);
  }
  return p as [number, number];
}

function positiveInt(value: Json | undefined, what: string, layer: string): number {
  if (!Number.isInteger(value) || (value as number) <= 0) {
    throw new ModelSpecError(`layer ${layer}: expected ${what} as a positive integer, found ${JSON.stringify(value)}`);
  }
  return value as number;
}

function requireRank(shape: Shape, rank: number, layer: string, cls: string): void {
  if (shape.length !== rank) {
    throw new ModelSpecError(`layer ${layer}: ${cls} needs a rank-${rank} input, found shape [${shape.join(", ")}]`);
  }
}

function requireValidPadding(config: LayerJson["config"], layer: string): void {
  if ((config.padding ?? "valid") !== "valid") {
    throw new ModelSpecError(`layer ${layer}: expected padding "valid", found ${JSON.stringify(config.padding)}`, {
      hint: "only valid padding is supported (the wasm backend's filter gradient is built for it)",
    });
  }
}

/** Output shape and weight shapes of one layer; throws on anything outside the allow-list. */
function layerShapes(layer: LayerJson, input: Shape): { output: Shape; weights: TensorShape[] } {
  const { name } = layer.config;
  const c = layer.config;
  const bias = (units: number) => (c.use_bias === false ? [] : [{ name: `${name}/bias`, shape: [units] }]);
  switch (layer.class_name) {
    case "Flatten":
      return { output: [input.reduce((a, b) => a * b, 1)], weights: [] };
    case "Dense": {
      requireRank(input, 1, name, "Dense");
      const units = positiveInt(c.units, "units", name);
      return { output: [units], weights: [{ name: `${name}/kernel`, shape: [input[0], units] }, ...bias(units)] };
    }
    case "Conv2D": {
      requireRank(input, 3, name, "Conv2D");
      requireValidPadding(c, name);
      const [kh, kw] = pair(c.kernel_size, "kernel_size", name);
      const strides = pair(c.strides, "strides", name, [1, 1]);
      const dilation = pair(c.dilation_rate, "dilation_rate", name, [1, 1]);
      if (strides.some((s) => s !== 1) || dilation.some((d) => d !== 1)) {
        throw new ModelSpecError(`layer ${name}: expected strides and dilation_rate 1, found ${JSON.stringify(c.strides)} and ${JSON.stringify(c.dilation_rate)}`);
      }
      if ((c.data_format ?? "channels_last") !== "channels_last") {
        throw new ModelSpecError(`layer ${name}: expected data_format "channels_last", found ${JSON.stringify(c.data_format)}`);
      }
      const filters = positiveInt(c.filters, "filters", name);
      const [h, w, ch] = input;
      if (h < kh || w < kw) throw new ModelSpecError(`layer ${name}: kernel ${kh}×${kw} is larger than its ${h}×${w} input`);
      return { output: [h - kh + 1, w - kw + 1, filters], weights: [{ name: `${name}/kernel`, shape: [kh, kw, ch, filters] }, ...bias(filters)] };
    }
    case "MaxPooling2D": {
      requireRank(input, 3, name, "MaxPooling2D");
      requireValidPadding(c, name);
      const [ph, pw] = pair(c.pool_size, "pool_size", name, [2, 2]);
      const [sh, sw] = pair(c.strides ?? null, "strides", name, [ph, pw]);
      const [h, w, ch] = input;
      if (h < ph || w < pw) throw new ModelSpecError(`layer ${name}: pool ${ph}×${pw} is larger than its ${h}×${w} input`);
      return { output: [Math.floor((h - ph) / sh) + 1, Math.floor((w - pw) / sw) + 1, ch], weights: [] };
    }
    default:
      throw new ModelSpecError(`layer ${name}: expected one of Flatten, Dense, Conv2D, MaxPooling2D, found class "${layer.class_name}"`);
  }
}

function walk(spec: ModelSpec): { output: Shape; weights: TensorShape[] } {
  let shape: Shape = [...spec.inputShape];
  const weights: TensorShape[] = [];
  for (const layer of spec.topology.config.layers) {
    const step = layerShapes(layer, shape);
    shape = step.output;
    weights.push(...step.weights);
  }
  return { output: shape, weights };
}

/** The trainable weights the spec's model has, in canonical (name) order. */
export function modelShapes(spec: ModelSpec): TensorShape[] {
  return canonicalOrder(walk(checkModelSpec(spec)).weights);
}

/** Total number of trainable parameters. */
export function parameterCount(spec: ModelSpec): number {
  return modelShapes(spec).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/** Throws ModelSpecError unless `spec` is a well-formed spec whose layers we can build and check. */
export function checkModelSpec(spec: ModelSpec): ModelSpec {
  const s = spec as unknown as Record<string, unknown>;
  if (typeof s !== "object" || s === null) throw new ModelSpecError(`expected a model spec object, found ${s === null ? "null" : typeof s}`);
  if (s.format !== MODEL_SPEC_FORMAT) throw new ModelSpecError(`expected format "${MODEL_SPEC_FORMAT}", found ${JSON.stringify(s.format)}`);
  if (typeof s.name !== "string" || s.name.length === 0) throw new ModelSpecError(`expected a non-empty name, found ${JSON.stringify(s.name)}`);
  if (!Array.isArray(s.inputShape) || s.inputShape.length !== 3 || !s.inputShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ModelSpecError(`expected inputShape [height, width, channels] of positive integers, found ${JSON.stringify(s.inputShape)}`);
  }
  if (!Number.isInteger(s.classes) || (s.classes as number) < 2) throw new ModelSpecError(`expected classes >= 2, found ${JSON.stringify(s.classes)}`);
  const topology = s.topology as ModelSpec["topology"] | undefined;
  if (topology?.class_name !== "Sequential" || !Array.isArray(topology.config?.layers) || topology.config.layers.length === 0) {
    throw new ModelSpecError(`expected a Sequential topology with layers, found ${JSON.stringify(topology?.class_name)}`);
  }
  const optionProblems = taskOptionsProblems(s.options);
  if (optionProblems.length) throw new ModelSpecError(`expected valid task options: ${optionProblems.join("; ")}`);
  const names = new Set<string>();
  for (const [i, layer] of topology.config.layers.entries()) {
    const name = layer?.config?.name;
    if (typeof name !== "string" || name.length === 0 || name.includes("/")) {
      throw new ModelSpecError(`layer ${i}: expected an explicit name without "/", found ${JSON.stringify(name)}`);
    }
    if (names.has(name)) throw new ModelSpecError(`layer ${i}: name "${name}" is used twice`);
    names.add(name);
  }
  const first = topology.config.layers[0].config.batch_input_shape;
  if (canonicalJson(first) !== canonicalJson([null, ...s.inputShape])) {
    throw new ModelSpecError(`first layer: expected batch_input_shape [null, ${s.inputShape.join(", ")}], found ${JSON.stringify(first)}`);
  }
  const { output, weights } = walk(spec);
  const parameters = weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
  if (parameters > MAX_PARAMETERS) {
    throw new ModelSpecError(`expected at most ${MAX_PARAMETERS.toLocaleString("en")} parameters, found ${parameters.toLocaleString("en")}`, {
      hint: "a spec received from others must not be able to exhaust memory",
    });
  }
  if (output.length !== 1 || output[0] !== s.classes) {
    throw new ModelSpecError(`expected the model to output ${s.classes} class scores, found shape [${output.join(", ")}]`);
  }
  const last = topology.config.layers.at(-1)!;
  if (last.class_name !== "Dense" || last.config.activation !== "softmax") {
    throw new ModelSpecError(`expected the last layer to be a softmax Dense layer, found ${last.class_name} with activation ${JSON.stringify(last.config.activation)}`);
  }
  return spec;
}

// ---- the two built-in architectures ---------------------------------------------------

const glorot = (seed: number, layer: string): Json => ({
  class_name: "VarianceScaling",
  config: { scale: 1, mode: "fan_avg", distribution: "uniform", seed: deriveSeed(seed, layer) },
});

const dense = (name: string, units: number, activation: string, seed: number): LayerJson => ({
  class_name: "Dense",
  config: { name, units, activation, use_bias: true, kernel_initializer: glorot(seed, name), bias_initializer: { class_name: "Zeros", config: {} }, trainable: true },
});

const conv = (name: string, filters: number, kernel: number, seed: number): LayerJson => ({
  class_name: "Conv2D",
  config: {
    name, filters, kernel_size: [kernel, kernel], strides: [1, 1], padding: "valid", data_format: "channels_last", dilation_rate: [1, 1],
    activation: "relu", use_bias: true, kernel_initializer: glorot(seed, name), bias_initializer: { class_name: "Zeros", config: {} }, trainable: true,
  },
});

const pool = (name: string): LayerJson => ({
  class_name: "MaxPooling2D",
  config: { name, pool_size: [2, 2], strides: [2, 2], padding: "valid", data_format: "channels_last", trainable: true },
});

function sequential(name: string, layers: LayerJson[]): ModelSpec {
  const input = [28, 28, 1] as const;
  const [first, ...rest] = layers;
  const withInput: LayerJson = { class_name: first.class_name, config: { ...first.config, batch_input_shape: [null, ...input], dtype: "float32" } };
  return checkModelSpec({ format: MODEL_SPEC_FORMAT, name, inputShape: input, classes: 10, topology: { class_name: "Sequential", config: { name, layers: [withInput, ...rest] } } });
}

/** 784-`hidden`-10 perceptron for 28×28×1 digits (101,770 parameters with hidden = 128). */
export function mlpSpec({ seed = 0, hidden = 128 } = {}): ModelSpec {
  return sequential("mnist-mlp", [{ class_name: "Flatten", config: { name: "flatten", trainable: true } }, dense("dense1", hidden, "relu", seed), dense("dense2", 10, "softmax", seed)]);
}

/** Small CNN: conv5×5(8) → pool → conv5×5(16) → pool → dense(10); stride 1, valid padding (5,994 parameters). */
export function cnnSpec({ seed = 0 } = {}): ModelSpec {
  return sequential("mnist-cnn", [conv("conv1", 8, 5, seed), pool("pool1"), conv("conv2", 16, 5, seed), pool("pool2"), { class_name: "Flatten", config: { name: "flatten", trainable: true } }, dense("dense1", 10, "softmax", seed)]);
}
