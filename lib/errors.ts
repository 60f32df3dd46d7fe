// The one base class for every error AnchorFL raises on purpose. A message says what was
// expected and what was found; `hint` says how to fix it; `details` carries the values
// that caused it, for logs and tests.
export class AnchorFLError extends Error {
  readonly hint?: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(message: string, options: { hint?: string; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(options.hint ? `${message}\n  hint: ${options.hint}` : message, { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
    this.details = options.details ?? {};
  }
}
