// Typed errors of the content store. Each names the content (CID) and where it was looked
// for (folder or endpoint), so a user can tell a missing file from a dead node from a
// tampered block without reading a stack trace.
import { AnchorFLError } from "../errors.js";

/** Base class, so callers can catch every store failure at once. */
export class StoreError extends AnchorFLError {}

/** The reference is not something this store can address (bad CID, wrong codec, bad hex). */
export class InvalidContentRefError extends StoreError {}

/** The store answered, and does not hold the content (or part of its DAG). */
export class ContentNotFoundError extends StoreError {}

/** The content did not arrive within the time allowed. */
export class ContentTimeoutError extends StoreError {}

/** The bytes received do not hash to what the reference promised. */
export class IntegrityError extends StoreError {}

/** The content is larger than the caller allowed to hold in memory. */
export class ContentTooLargeError extends StoreError {}

/** The endpoint (or data folder) cannot be reached at all. */
export class StoreUnavailableError extends StoreError {}

/** Another process held the store's pin lock for longer than we were willing to wait. */
export class StoreLockTimeoutError extends StoreError {}

/** The store configuration (kind, URL, folder) is unusable. */
export class StoreConfigError extends StoreError {}
