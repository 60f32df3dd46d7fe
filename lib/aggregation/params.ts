// Checks for rule parameters, shared by the rule functions (typed callers) and the registry
// (strings from a command line), so both refuse the same values with the same message.
import { BreakdownConditionError, RuleParameterError } from "./errors.js";

export function integerAtLeast(rule: string, name: string, value: unknown, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new RuleParameterError(`${rule}: expected ${name} to be an integer >= ${min}, found ${String(value)}`, { details: { rule, [name]: value } });
  }
  return value;
}

export function numberInRange(rule: string, name: string, value: unknown, min: number, max: number, openMin = false, openMax = false): number {
  const ok =
    typeof value === "number" && Number.isFinite(value) && (openMin ? value > min : value >= min) && (openMax ? value < max : value <= max);
  if (!ok) {
    const range = `${openMin ? "(" : "["}${min}, ${max}${openMax ? ")" : "]"}`;
    throw new RuleParameterError(`${rule}: expected ${name} in ${range}, found ${String(value)}`, { details: { rule, [name]: value } });
  }
  return value as number;
}

/** Refuses to run a rule outside the range where its robustness guarantee holds; `found` names n, f (or trim) as given. */
export function requireBreakdown(holds: boolean, rule: string, condition: string, found: Readonly<Record<string, number>>): void {
  if (!holds) {
    const values = Object.entries(found)
      .map(([k, v]) => `${k} = ${v}`)
      .join(", ");
    throw new BreakdownConditionError(`${rule} needs ${condition}, found ${values}`, {
      details: { rule, condition, ...found },
      hint: "tolerate fewer Byzantine participants or wait for more updates",
    });
  }
}
