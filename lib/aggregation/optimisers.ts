// Server optimisers on top of any rule (Reddi et al., "Adaptive federated optimization",
// ICLR 2021; FedAvgM: Hsu et al., 2019). Each takes the rule's aggregate delta and the server
// state carried from the previous round, and returns the delta to apply to the global model
// plus the new state. Pure: the state passed in is never changed. State is float32 (so it
// pins as tensors and `verify` can re-run round R from the pinned file); each step computes
// in float64, rounds the new moments to float32, and derives the delta from the rounded ones.
import { type Tensor } from "../tensors.js";
import { ServerStateError } from "./errors.js";
import { numberInRange } from "./params.js";

export interface ServerState {
  /** Rounds applied so far. */
  readonly t: number;
  /** First moment (momentum). */
  readonly m: Float32Array;
  /** Second moment; FedAdam and FedYogi only. */
  readonly v?: Float32Array;
}

export interface ServerStep {
  /** What to add to the global model. */
  readonly delta: Float32Array;
  readonly state: ServerState;
}

export interface FedAvgMOptions {
  /** Server learning rate (default 1). */
  readonly lr?: number;
  /** Momentum (default 0.9). */
  readonly momentum?: number;
}

export interface AdaptiveOptions {
  /** Server learning rate (default 0.1 for FedAdam, 0.01 for FedYogi, as in Flower). */
  readonly lr?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  /** Adaptivity: added to sqrt(v) (default 1e-9 for FedAdam, 1e-3 for FedYogi, as in Flower). */
  readonly tau?: number;
  /** Scale lr by sqrt(1 - beta2^t) / (1 - beta1^t), as Adam does (default false, as in Reddi et al.). */
  readonly biasCorrection?: boolean;
}

/** FedAvgM: m <- momentum * m + delta; apply lr * m. */
export function fedAvgM(delta: Float32Array, state: ServerState | undefined, options: FedAvgMOptions = {}): ServerStep {
  const lr = numberInRange("fedavgm", "lr", options.lr ?? 1, 0, Number.MAX_VALUE, true);
  const momentum = numberInRange("fedavgm", "momentum", options.momentum ?? 0.9, 0, 1, false, true);
  const previous = checkState("fedavgm", state, delta.length, false);
  const m = new Float32Array(delta.length);
  const out = new Float32Array(delta.length);
  for (let k = 0; k < delta.length; k++) {
    m[k] = momentum * previous.m[k] + delta[k];
    out[k] = lr * m[k];
  }
  return { delta: out, state: { t: previous.t + 1, m } };
}

/** FedAdam: Adam's moments over the aggregate delta; apply lr * m / (sqrt(v) + tau). */
export function fedAdam(delta: Float32Array, state: ServerState | undefined, options: AdaptiveOptions = {}): ServerStep {
  return adaptive("fedadam", delta, state, options, { lr: 0.1, tau: 1e-9 }, (v, g2, b2) => b2 * v + (1 - b2) * g2);
}

/** FedYogi: like FedAdam, but v moves by (1 - beta2) * g^2 towards g^2, never past it. */
export function fedYogi(delta: Float32Array, state: ServerState | undefined, options: AdaptiveOptions = {}): ServerStep {
  return adaptive("fedyogi", delta, state, options, { lr: 0.01, tau: 1e-3 }, (v, g2, b2) => v - (1 - b2) * g2 * Math.sign(v - g2));
}

function adaptive(
  name: string,
  delta: Float32Array,
  state: ServerState | undefined,
  options: AdaptiveOptions,
  defaults: { readonly lr: number; readonly tau: number },
  secondMoment: (v: number, g2: number, beta2: number) => number,
): ServerStep {
  const lr = numberInRange(name, "lr", options.lr ?? defaults.lr, 0, Number.MAX_VALUE, true);
  const beta1 = numberInRange(name, "beta1", options.beta1 ?? 0.9, 0, 1, false, true);
  const beta2 = numberInRange(name, "beta2", options.beta2 ?? 0.99, 0, 1, false, true);
  const tau = numberInRange(name, "tau", options.tau ?? defaults.tau, 0, Number.MAX_VALUE, true);
  const previous = checkState(name, state, delta.length, true);
  const t = previous.t + 1;
  const rate = options.biasCorrection ? (lr * Math.sqrt(1 - power(beta2, t))) / (1 - power(beta1, t)) : lr;
  const pm = previous.m;
  const pv = previous.v as Float32Array;
  const m = new Float32Array(delta.length);
  const v = new Float32Array(delta.length);
  const out = new Float32Array(delta.length);
  for (let k = 0; k < delta.length; k++) {
    const g = delta[k];
    m[k] = beta1 * pm[k] + (1 - beta1) * g;
    v[k] = secondMoment(pv[k], g * g, beta2);
    out[k] = (rate * m[k]) / (Math.sqrt(v[k]) + tau);
  }
  return { delta: out, state: { t, m, v } };
}

/** base^t by repeated multiplication: exact-rounded steps, identical on every platform (Math.pow need not be). */
function power(base: number, t: number): number {
  let p = 1;
  for (let i = 0; i < t; i++) p *= base;
  return p;
}

/** The zero state a server optimiser starts from. */
export function initialServerState(d: number, withSecondMoment: boolean): ServerState {
  return { t: 0, m: new Float32Array(d), ...(withSecondMoment ? { v: new Float32Array(d) } : {}) };
}

function checkState(name: string, state: ServerState | undefined, d: number, needsV: boolean): ServerState {
  if (state === undefined) return initialServerState(d, needsV);
  if (!Number.isSafeInteger(state.t) || state.t < 0) {
    throw new ServerStateError(`${name}: expected the state's step count t to be an integer >= 0, found ${state.t}`);
  }
  for (const key of needsV ? (["m", "v"] as const) : (["m"] as const)) {
    const moment = state[key];
    if (!(moment instanceof Float32Array) || moment.length !== d) {
      throw new ServerStateError(
        `${name}: expected state.${key} to be a Float32Array of ${d} values (the update length), found ${moment instanceof Float32Array ? `${moment.length} values` : String(moment)}`,
        { details: { key, expected: d } },
      );
    }
  }
  return state;
}

/** The state as tensors (canonical order: m, t, v), ready to encode and pin. */
export function serverStateToTensors(state: ServerState): Tensor[] {
  const tensors: Tensor[] = [
    { name: "m", shape: [state.m.length], data: state.m },
    { name: "t", shape: [1], data: Float32Array.of(state.t) },
  ];
  if (state.v) tensors.push({ name: "v", shape: [state.v.length], data: state.v });
  return tensors;
}

/** Reads a state back from tensors, refusing anything that could not have come from serverStateToTensors. */
export function serverStateFromTensors(tensors: readonly Tensor[]): ServerState {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const unknown = tensors.map((t) => t.name).filter((name) => !["m", "t", "v"].includes(name));
  if (unknown.length > 0 || byName.size !== tensors.length) {
    throw new ServerStateError(`expected server state tensors m, t and optionally v, found ${tensors.map((t) => t.name).join(", ")}`);
  }
  const m = byName.get("m");
  const t = byName.get("t");
  const v = byName.get("v");
  if (!m || !t || t.data.length !== 1) {
    throw new ServerStateError(`expected tensors m and t (one value), found ${tensors.map((x) => `${x.name}[${x.data.length}]`).join(", ")}`);
  }
  if (v && v.data.length !== m.data.length) {
    throw new ServerStateError(`expected v to have as many values as m (${m.data.length}), found ${v.data.length}`);
  }
  for (const tensor of [m, v]) {
    if (tensor && !tensor.data.every(Number.isFinite)) throw new ServerStateError(`expected finite values in ${tensor.name}, found a non-finite one`);
  }
  const state = { t: t.data[0], m: m.data, ...(v ? { v: v.data } : {}) };
  return checkState("server state", state, m.data.length, v !== undefined);
}
