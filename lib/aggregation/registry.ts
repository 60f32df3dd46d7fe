// The rules and server optimisers by name, with their parameters, so a command line can say
// `--rule multi-krum --f 2 --m 5` and a report can name exactly what ran. Parsing accepts
// numbers or their decimal strings and refuses unknown or malformed parameters by name.
import { fedAvg, normClipping } from "./fedavg.js";
import { median, trimmedMean } from "./coordinatewise.js";
import { bulyan, krum, multiKrum } from "./krum.js";
import { geometricMedian } from "./geomedian.js";
import { flTrust } from "./fltrust.js";
import { fedAdam, fedAvgM, fedYogi, type ServerState, type ServerStep } from "./optimisers.js";
import { AggregationInputError, RuleParameterError } from "./errors.js";
import type { AggregationResult, ClipOption, ParamValue, Update } from "./types.js";

export type ParamType = "integer" | "number" | "clip" | "boolean";

export interface ParamSpec {
  readonly name: string;
  readonly type: ParamType;
  readonly required?: boolean;
  readonly description: string;
}

/** What a rule needs besides the updates: FLTrust's server update on the root data set. */
export interface RuleContext {
  readonly serverUpdate?: Float32Array;
}

export type Params = Readonly<Record<string, ParamValue>>;
export type RawParams = Readonly<Record<string, string | number | boolean | undefined>>;

export interface RuleSpec {
  readonly name: string;
  readonly summary: string;
  /** What the per-participant score means (always: higher = more suspicious). */
  readonly score: string;
  readonly breakdown: string;
  readonly params: readonly ParamSpec[];
  readonly run: (updates: readonly Update[], params: Params, context: RuleContext) => AggregationResult;
}

const clip: ParamSpec = { name: "clip", type: "clip", description: 'clip every update first to this L2 bound, or to "median" (the median norm)' };
const fRequired: ParamSpec = { name: "f", type: "integer", required: true, description: "number of Byzantine updates to tolerate" };
const fOptional: ParamSpec = { name: "f", type: "integer", description: "number of Byzantine updates to tolerate (checked against the breakdown condition)" };

const num = (p: Params, key: string) => p[key] as number | undefined;
const clipOf = (p: Params) => p.clip as ClipOption | undefined;

export const rules: Readonly<Record<string, RuleSpec>> = {
  fedavg: {
    name: "fedavg",
    summary: "sample-weighted mean (FedAvg)",
    score: "L2 distance to the aggregate",
    breakdown: "none: one arbitrary update moves the mean arbitrarily far",
    params: [clip],
    run: (u, p) => fedAvg(u, { clip: clipOf(p) }),
  },
  median: {
    name: "median",
    summary: "coordinate-wise median",
    score: "L2 distance to the aggregate",
    breakdown: "f < n/2",
    params: [fOptional, clip],
    run: (u, p) => median(u, { f: num(p, "f"), clip: clipOf(p) }),
  },
  "trimmed-mean": {
    name: "trimmed-mean",
    summary: "coordinate-wise mean after dropping the trim smallest and largest values",
    score: "L2 distance to the aggregate",
    breakdown: "2 * trim < n (tolerates f <= trim)",
    params: [
      { name: "trim", type: "integer", description: "values dropped at each end of every coordinate" },
      { name: "beta", type: "number", description: "fraction dropped at each end, trim = floor(beta * n) (default 0.2)" },
      clip,
    ],
    run: (u, p) => trimmedMean(u, { trim: num(p, "trim"), beta: num(p, "beta"), clip: clipOf(p) }),
  },
  krum: {
    name: "krum",
    summary: "the single update with the lowest Krum score",
    score: "Krum score: sum of squared distances to the n - f - 2 nearest updates",
    breakdown: "n >= 2f + 3",
    params: [fRequired, clip],
    run: (u, p) => krum(u, { f: num(p, "f") as number, clip: clipOf(p) }),
  },
  "multi-krum": {
    name: "multi-krum",
    summary: "plain mean of the m updates with the lowest Krum scores",
    score: "Krum score: sum of squared distances to the n - f - 2 nearest updates",
    breakdown: "n >= 2f + 3, 1 <= m <= n - f",
    params: [fRequired, { name: "m", type: "integer", description: "updates to average (default n - f)" }, clip],
    run: (u, p) => multiKrum(u, { f: num(p, "f") as number, m: num(p, "m"), clip: clipOf(p) }),
  },
  bulyan: {
    name: "bulyan",
    summary: "n - 2f updates chosen by repeated Krum, then per coordinate the mean of the n - 4f values closest to the median",
    score: "Krum score in the full set",
    breakdown: "n >= 4f + 3",
    params: [fRequired, clip],
    run: (u, p) => bulyan(u, { f: num(p, "f") as number, clip: clipOf(p) }),
  },
  "geometric-median": {
    name: "geometric-median",
    summary: "geometric median by smoothed Weiszfeld iterations (RFA)",
    score: "L2 distance to the aggregate",
    breakdown: "f < n/2",
    params: [
      { name: "maxIterations", type: "integer", description: "upper bound on Weiszfeld steps (default 100)" },
      { name: "tolerance", type: "number", description: "stop when the objective improves by less than this fraction (default 1e-6)" },
      { name: "nu", type: "number", description: "smoothing distance (default 1e-6)" },
      fOptional,
      clip,
    ],
    run: (u, p) =>
      geometricMedian(u, { maxIterations: num(p, "maxIterations"), tolerance: num(p, "tolerance"), nu: num(p, "nu"), f: num(p, "f"), clip: clipOf(p) }),
  },
  "norm-clipping": {
    name: "norm-clipping",
    summary: "sample-weighted mean of the updates clipped to an L2 bound",
    score: "norm / bound (above 1: the update was clipped)",
    breakdown: "none by count: bounds each update's influence to weight * bound",
    params: [{ name: "bound", type: "clip", description: 'L2 bound, or "median" (the default) for the median norm' }],
    run: (u, p) => normClipping(u, { bound: p.bound as ClipOption | undefined }),
  },
  fltrust: {
    name: "fltrust",
    summary: "trust-weighted mean of updates rescaled to the server update's norm; trust = ReLU(cosine to the server update)",
    score: "1 - trust, in [0, 1]",
    breakdown: "none by count: relies on the aggregator's clean root data set",
    params: [clip],
    run: (u, p, context) => {
      if (!context.serverUpdate) {
        throw new AggregationInputError("fltrust: expected a server update (the aggregator's step on its root data set), found none");
      }
      return flTrust(u, { serverUpdate: context.serverUpdate, clip: clipOf(p) });
    },
  },
};

export interface OptimiserSpec {
  readonly name: string;
  readonly summary: string;
  readonly params: readonly ParamSpec[];
  /** Whether the state carries a second moment v. */
  readonly secondMoment: boolean;
  readonly step: (delta: Float32Array, state: ServerState | undefined, params: Params) => ServerStep;
}

const adaptiveParams: readonly ParamSpec[] = [
  { name: "lr", type: "number", description: "server learning rate" },
  { name: "beta1", type: "number", description: "first-moment decay (default 0.9)" },
  { name: "beta2", type: "number", description: "second-moment decay (default 0.99)" },
  { name: "tau", type: "number", description: "adaptivity, added to sqrt(v)" },
  { name: "biasCorrection", type: "boolean", description: "Adam's bias correction (default false)" },
];

const adaptiveOptions = (p: Params) => ({
  lr: num(p, "lr"),
  beta1: num(p, "beta1"),
  beta2: num(p, "beta2"),
  tau: num(p, "tau"),
  biasCorrection: p.biasCorrection as boolean | undefined,
});

export const serverOptimisers: Readonly<Record<string, OptimiserSpec>> = {
  fedavgm: {
    name: "fedavgm",
    summary: "server momentum",
    secondMoment: false,
    params: [
      { name: "lr", type: "number", description: "server learning rate (default 1)" },
      { name: "momentum", type: "number", description: "momentum (default 0.9)" },
    ],
    step: (delta, state, p) => fedAvgM(delta, state, { lr: num(p, "lr"), momentum: num(p, "momentum") }),
  },
  fedadam: {
    name: "fedadam",
    summary: "server Adam (defaults lr 0.1, tau 1e-9)",
    secondMoment: true,
    params: adaptiveParams,
    step: (delta, state, p) => fedAdam(delta, state, adaptiveOptions(p)),
  },
  fedyogi: {
    name: "fedyogi",
    summary: "server Yogi (defaults lr 0.01, tau 1e-3)",
    secondMoment: true,
    params: adaptiveParams,
    step: (delta, state, p) => fedYogi(delta, state, adaptiveOptions(p)),
  },
};

export function getRule(name: string): RuleSpec {
  return lookup("rule", rules, name);
}

export function getServerOptimiser(name: string): OptimiserSpec {
  return lookup("server optimiser", serverOptimisers, name);
}

/** Runs a rule by name with raw (e.g. command-line) parameters. */
export function aggregate(name: string, updates: readonly Update[], raw: RawParams = {}, context: RuleContext = {}): AggregationResult {
  const rule = getRule(name);
  return rule.run(updates, parseParams(rule, raw), context);
}

/** Checks raw parameters against a rule's (or optimiser's) list and converts them to their types. */
export function parseParams(spec: { readonly name: string; readonly params: readonly ParamSpec[] }, raw: RawParams): Params {
  const known = new Map(spec.params.map((p) => [p.name, p]));
  const out: Record<string, ParamValue> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    const param = known.get(key);
    if (!param) {
      const accepted = spec.params.map((p) => p.name).join(", ") || "none";
      throw new RuleParameterError(`${spec.name}: unknown parameter ${key} (accepted: ${accepted})`, { details: { rule: spec.name, param: key } });
    }
    out[key] = parseValue(spec.name, param, value);
  }
  for (const param of spec.params) {
    if (param.required && out[param.name] === undefined) {
      throw new RuleParameterError(`${spec.name}: expected parameter ${param.name} (${param.description}), found none`, {
        details: { rule: spec.name, param: param.name },
      });
    }
  }
  return out;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseValue(rule: string, param: ParamSpec, value: string | number | boolean): ParamValue {
  const fail = (): never => {
    throw new RuleParameterError(`${rule}: expected ${param.name} to be ${describeType(param.type)}, found ${JSON.stringify(value)}`, {
      details: { rule, param: param.name, value },
    });
  };
  if (param.type === "boolean") {
    if (typeof value === "boolean") return value;
    return value === "true" ? true : value === "false" ? false : fail();
  }
  if (param.type === "clip" && value === "median") return value;
  const n = typeof value === "number" ? value : typeof value === "string" && DECIMAL.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isFinite(n) || (param.type === "integer" && !Number.isSafeInteger(n))) return fail();
  return n;
}

function describeType(type: ParamType): string {
  return { integer: "an integer", number: "a number", clip: 'a number or "median"', boolean: "true or false" }[type];
}

function lookup<T>(kind: string, table: Readonly<Record<string, T>>, name: string): T {
  if (!Object.hasOwn(table, name)) {
    throw new RuleParameterError(`unknown ${kind} ${JSON.stringify(name)} (known: ${Object.keys(table).join(", ")})`, { details: { name } });
  }
  return table[name];
}
