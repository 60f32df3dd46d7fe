// Byzantine behaviours selectable by name, for the simulator and the client's --behaviour
// option. A behaviour can act at up to three points of a round, and the submission layer
// asks about each: poisonData (before training), craftUpdate (after training),
// corruptFile (after encoding), and withholdsReveal (commit, then never reveal).
import { AnchorFLError } from "../../lib/errors.js";
import { Random } from "../../lib/random.js";
import type { Tensor } from "../../lib/tensors.js";
import type { Dataset } from "../data/dataset.js";
import { labelFlipDataset } from "./data.js";
import { corruptUpdateFile, CORRUPTIONS, type Corruption } from "./files.js";
import { alieZ, copiedUpdate, gaussianUpdate, innerProductManipulation, littleIsEnough, scaleUpdate, signFlip, staleUpdate, zeroUpdate } from "./updates.js";

export class BehaviourError extends AnchorFLError {}

export type Behaviour =
  | { readonly kind: "honest" }
  | { readonly kind: "label-flip" }
  | { readonly kind: "sign-flip" }
  | { readonly kind: "scale"; readonly lambda: number }
  | { readonly kind: "gaussian"; readonly sigma: number; readonly mode: "replace" | "add" }
  /** z omitted: the paper's z_max for the round's n and f. */
  | { readonly kind: "alie"; readonly z?: number }
  | { readonly kind: "ipm"; readonly epsilon: number }
  | { readonly kind: "free-ride"; readonly mode: "zero" | "stale" | "copy" }
  | { readonly kind: "withhold" }
  | { readonly kind: "malformed"; readonly corruption: Corruption };

export const BEHAVIOUR_SYNTAX = [
  "honest",
  "label-flip",
  "sign-flip",
  "scale:LAMBDA",
  "gaussian:SIGMA[:add]",
  "alie[:Z]",
  "ipm:EPSILON",
  "free-ride:zero|stale|copy",
  "withhold",
  `malformed:${CORRUPTIONS.join("|")}`,
] as const;

function number(text: string | undefined, what: string, whole: string): number {
  const v = Number(text);
  if (text === undefined || text === "" || !Number.isFinite(v)) {
    throw new BehaviourError(`behaviour "${whole}": expected a number for ${what}, found ${text === undefined ? "nothing" : `"${text}"`}`, { hint: `forms: ${BEHAVIOUR_SYNTAX.join(", ")}` });
  }
  return v;
}

/** Parses the CLI form, e.g. "scale:10", "gaussian:0.5:add", "alie", "free-ride:stale", "malformed:nan". */
export function parseBehaviour(text: string): Behaviour {
  const [kind, a, b, ...rest] = text.split(":");
  const fail = (): never => {
    throw new BehaviourError(`expected a behaviour among ${BEHAVIOUR_SYNTAX.join(", ")}, found "${text}"`);
  };
  const args = [a, b].filter((x) => x !== undefined).length;
  if (rest.length > 0) fail();
  const noArgs = <T extends Behaviour>(behaviour: T): T => (args === 0 ? behaviour : fail());
  switch (kind) {
    case "honest":
    case "label-flip":
    case "sign-flip":
    case "withhold":
      return noArgs({ kind });
    case "scale":
      return args === 1 ? { kind, lambda: number(a, "lambda", text) } : fail();
    case "gaussian": {
      if (args === 0 || (b !== undefined && b !== "add")) fail();
      const sigma = number(a, "sigma", text);
      if (sigma < 0) throw new BehaviourError(`behaviour "${text}": sigma must be non-negative, found ${sigma}`);
      return { kind, sigma, mode: b === "add" ? "add" : "replace" };
    }
    case "alie":
      return args === 0 ? { kind } : args === 1 ? { kind, z: number(a, "z", text) } : fail();
    case "ipm": {
      const epsilon = args === 1 ? number(a, "epsilon", text) : fail();
      if (epsilon <= 0) throw new BehaviourError(`behaviour "${text}": epsilon must be positive, found ${epsilon}`);
      return { kind, epsilon };
    }
    case "free-ride":
      return args === 1 && (a === "zero" || a === "stale" || a === "copy") ? { kind, mode: a } : fail();
    case "malformed":
      return args === 1 && (CORRUPTIONS as readonly string[]).includes(a) ? { kind, corruption: a as Corruption } : fail();
    default:
      return fail();
  }
}

/** The CLI form of a behaviour (parseBehaviour's inverse). */
export function formatBehaviour(b: Behaviour): string {
  switch (b.kind) {
    case "scale":
      return `scale:${b.lambda}`;
    case "gaussian":
      return `gaussian:${b.sigma}${b.mode === "add" ? ":add" : ""}`;
    case "alie":
      return b.z === undefined ? "alie" : `alie:${b.z}`;
    case "ipm":
      return `ipm:${b.epsilon}`;
    case "free-ride":
      return `free-ride:${b.mode}`;
    case "malformed":
      return `malformed:${b.corruption}`;
    default:
      return b.kind;
  }
}

/** The data a client trains on (label flip poisons it; every other behaviour trains honestly). */
export function poisonData(b: Behaviour, data: Dataset): Dataset {
  return b.kind === "label-flip" ? labelFlipDataset(data) : data;
}

export interface CraftContext {
  /** This client's honestly trained delta for the round. */
  readonly ownDelta: readonly Tensor[];
  /** The honest updates the colluders know (ALIE, IPM); the omniscient model of both papers. */
  readonly honestUpdates?: readonly (readonly Tensor[])[];
  /** Participants in the round and how many of them are Byzantine (ALIE's default z). */
  readonly participants?: number;
  readonly byzantine?: number;
  /** This client's own delta from the previous round (stale free riding). */
  readonly previousOwn?: readonly Tensor[];
  /** Another participant's revealed update from the previous round (copying free riding). */
  readonly previousOther?: readonly Tensor[];
  /** Seeds the Gaussian attack's noise. */
  readonly seed: number;
}

/** The update the client submits in place of its honest delta. */
export function craftUpdate(b: Behaviour, ctx: CraftContext): Tensor[] {
  const own = ctx.ownDelta;
  const honest = () => {
    if (!ctx.honestUpdates?.length) throw new BehaviourError(`behaviour "${formatBehaviour(b)}" needs the round's honest updates, found none`);
    return ctx.honestUpdates;
  };
  switch (b.kind) {
    case "sign-flip":
      return signFlip(own);
    case "scale":
      return scaleUpdate(own, b.lambda);
    case "gaussian":
      return gaussianUpdate(own, b.sigma, b.mode, new Random(ctx.seed, "gaussian-attack"));
    case "alie": {
      if (b.z === undefined && (ctx.participants === undefined || ctx.byzantine === undefined)) {
        throw new BehaviourError('behaviour "alie" without z needs the round\'s participant and Byzantine counts, found none');
      }
      return littleIsEnough(honest(), b.z ?? alieZ(ctx.participants!, ctx.byzantine!));
    }
    case "ipm":
      return innerProductManipulation(honest(), b.epsilon);
    case "free-ride":
      return b.mode === "zero" ? zeroUpdate(own) : b.mode === "stale" ? staleUpdate(ctx.previousOwn) : copiedUpdate(ctx.previousOther);
    default:
      // honest, label-flip (poisoned before training), withhold and malformed submit the trained delta.
      return own.map((t) => ({ name: t.name, shape: [...t.shape], data: Float32Array.from(t.data) }));
  }
}

/** The file bytes the client pins (malformed corrupts them; everything else is untouched). */
export function corruptFile(b: Behaviour, bytes: Uint8Array): Uint8Array {
  return b.kind === "malformed" ? corruptUpdateFile(bytes, b.corruption) : bytes;
}

/** Commit-then-withhold: the submission layer commits but never reveals. */
export function withholdsReveal(b: Behaviour): boolean {
  return b.kind === "withhold";
}
