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
  /**
   * A random id (32 hex digits) of the segment's file, kept while the file lives however often
   * the registry's pool renames it for a new object, and never given to another file. A reader
   * may keep its mapping of the file under this id and reuse it for a later handle with the
   * same id instead of mapping again (the Go and Rust SDKs do). Present only when the registry
   * pools segments; absent for spill files and for segments adopted from a plugin.
   */
  segmentId?: string;
  /** Byte offset of the Arrow IPC stream inside the segment. */
  offset: number;
  /** Byte length of the Arrow IPC stream (schema message, batches, end-of-stream marker). */
  length: number;
  /** Hex SHA-256 of the canonical schema text; readers check it before trusting the data. */
  schemaFingerprint: string;
  /** Number of rows in the object. */
  rows: number;
}
