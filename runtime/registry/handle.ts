/**
 * The handle of an object in the data locality registry: everything a reader needs to map
 * an Arrow IPC stream that lives in shared memory (or in a spill file) without copying it.
 * Handles are what crosses sockets between the worker, its stages and plugin processes;
 * payload bytes never do. `docs/plugins.md` specifies the same fields for other languages.
 */
export interface ObjectHandle {
  /** The registry's id for the object, unique on the host. */
  id: string;
  /**
   * Where the bytes live: a POSIX shared-memory name (`/heddle-<ownerPid>-<suffix>`, the
   * argument of `shm_open`) or, for a spilled object, an absolute file path. The owner pid
   * in shared-memory names lets a janitor remove segments of processes that died.
   */
  segment: string;
  /** Byte offset of the Arrow IPC stream inside the segment. */
  offset: number;
  /** Byte length of the Arrow IPC stream (schema message, batches, end-of-stream marker). */
  length: number;
  /** Hex SHA-256 of the canonical schema text; readers check it before trusting the data. */
  schemaFingerprint: string;
  /** Number of rows in the object. */
  rows: number;
}
