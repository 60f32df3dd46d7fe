// The one error the safetensors codec raises. `reason` is a stable code so callers (the
// aggregator's verdicts, the audit report) can classify a bad file without parsing messages.
import { AnchorFLError } from "../errors.js";

export type SafetensorsReason =
  // file framing
  | "too-short"
  | "header-too-large"
  | "header-out-of-bounds"
  | "header-not-utf8"
  // header JSON
  | "header-syntax"
  | "header-too-deep"
  | "duplicate-key"
  | "non-integer"
  | "header-not-object"
  // tensor entries
  | "bad-entry"
  | "unsupported-dtype"
  | "bad-shape"
  | "too-many-elements"
  | "bad-offsets"
  | "offsets-length"
  | "offsets-gap"
  | "offsets-overlap"
  | "data-size"
  | "bad-metadata"
  // contents
  | "non-finite"
  | "spec-mismatch"
  // encoder input
  | "bad-tensor"
  | "duplicate-name"
  // compressed updates (compression.ts)
  | "compression-layout"
  | "compression-mismatch"
  | "f16-overflow"
  | "bad-scale"
  | "out-of-range"
  | "bad-indices";

export class SafetensorsError extends AnchorFLError {
  readonly reason: SafetensorsReason;

  constructor(
    reason: SafetensorsReason,
    message: string,
    options: { hint?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options);
    this.reason = reason;
  }
}
