/**
 * The one error type the data plane lets out. Codes are stable so that callers (the worker,
 * the executor's remote edges) can tell a peer that sent bad bytes from a peer that is gone,
 * and every message names the peer's address or the object involved.
 */

export type DataPlaneErrorCode =
  /** The peer sent a message that is not a valid Flight or Arrow IPC message. */
  | "corrupt"
  /** The stream ended before a complete Arrow stream arrived. */
  | "truncated"
  /** The stream's schema is not the one the consumer expected. */
  | "schema-mismatch"
  /** The ticket, edge or consumer is unknown to the producer. */
  | "not-found"
  /** The request itself is malformed. */
  | "invalid"
  /** The peer cannot be reached or went away. */
  | "unavailable"
  /** The peer does not implement the call. */
  | "unimplemented"
  /** The peer refused the credentials. */
  | "unauthenticated"
  /** Anything else the peer reported. */
  | "failed";

export class DataPlaneError extends Error {
  constructor(readonly code: DataPlaneErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DataPlaneError";
  }
}
