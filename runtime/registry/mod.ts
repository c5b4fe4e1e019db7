/**
 * The data locality registry: Arrow IPC streams in POSIX shared memory, addressed by object
 * ids, handed between processes as `ObjectHandle`s so that payload bytes are never copied
 * after production. A count of downstream consumers frees an object; a count of leases
 * (readers holding a mapping) keeps its memory mapped until the last reader is done; over a
 * memory budget, least recently used objects spill to files that readers map the same way.
 * This is the one public entry of runtime/registry: the plugin host and SDK hosts use the
 * segment helpers exported here and must never bind libc themselves. The registry must
 * never unmap memory a lease can still reach, and never hand out data it has not validated.
 * See docs/registry.md.
 */

import type { Table } from "apache-arrow";
import type { ObjectHandle } from "./handle.ts";
import { RegistryError } from "./_errors.ts";
import { contentsProblem } from "./_contents.ts";
import { type ArrowData, decodeStream, type EncodedStream, encodeStream } from "./_ipc.ts";
import { sweepOrphans, TEMP_DIR } from "./_janitor.ts";
import { claimOwner, type OwnerClaim } from "./_owner.ts";
import { ensurePrivateDir, UnsafePathError } from "../fs/mod.ts";
import {
  createSegment,
  createSegmentIfAbsent,
  isShmName,
  type MappedSegment,
  openSegment,
  removeSegment,
  renameSegment,
  toRegistryError,
} from "./_segment.ts";

export type { ObjectHandle } from "./handle.ts";
export { RegistryError, type RegistryErrorCode } from "./_errors.ts";
export { canonicalSchemaText, schemaFingerprint } from "./_fingerprint.ts";
export { type ArrowData, type EncodedStream, encodeStream } from "./_ipc.ts";
export { checkMessageMetadata, type FramingProblem, type MessageInfo } from "./_framing.ts";
export {
  type Closable,
  installExitCleanup,
  SHM_DIR,
  type SweepOptions,
  sweepOrphans,
  type SweepReport,
  TEMP_DIR,
} from "./_janitor.ts";
export { createSegment, isShmName, type MappedSegment, removeSegment } from "./_segment.ts";

/** Where an object is in its life; `Registry.state(id)` reports it. */
export type ObjectState =
  /** In a shared-memory segment, counted against the memory budget. */
  | "resident"
  /** Moved to a file in the spill directory; readers map the file instead. */
  | "spilled"
  /**
   * Its last consumer released it: its segment or file is already removed, but readers
   * still hold leases, so the mapping stays until the last lease ends.
   */
  | "draining"
  /** Gone: memory unmapped, name removed. Also what the registry says of ids it never had. */
  | "freed";

/** Read access to one object; the table's buffers are views over the mapping. */
export interface Lease extends Disposable {
  /** The handle the object had when the lease was taken. */
  readonly handle: ObjectHandle;
  /** The object's data, zero-copy; must not be used after `release()`. */
  readonly table: Table;
  /** The object's Arrow IPC stream bytes, a view over the mapping. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Ends the lease (idempotent); the last one lets the mapping go. */
  release(): void;
}

export interface RegistryOptions {
  /** Bytes of shared memory the registry may hold before it spills (default 1 GiB). */
  memoryBudget?: number;
  /**
   * Directory for spill files (default `$TMPDIR/heddle-spill-<uid>`, `$TMPDIR` defaulting to
   * `/tmp`); created 0700, and refused when another user owns it.
   */
  spillDir?: string;
  /**
   * The owner number wanted for segment names (default `Deno.pid`); `Registry.ownerPid` is
   * the one claimed, higher when a process of another PID namespace holds this one.
   */
  ownerPid?: number;
  /** The first part of segment names (default `heddle`: `/heddle-<ownerPid>-<n>`). */
  prefix?: string;
  /**
   * Keep released segments (renamed `/<prefix>-<ownerPid>-pool-<n>`, at most 16, within the
   * memory budget) for later puts to write into pages already touched (default false: a
   * released segment is removed at once).
   */
  pool?: boolean;
}

export interface RegistryStats {
  /** Bytes of shared memory held (resident objects, and draining ones still mapped). */
  bytesInMemory: number;
  /** Bytes of objects in spill files. */
  bytesSpilled: number;
  /** Bytes of released segments kept, already written once, for the next `put`s. */
  bytesPooled: number;
  /** Objects that are not freed. */
  objects: number;
}

/** The shared-memory name for an object: `/<prefix>-<ownerPid>[-<tag>]-<serial>`. */
export function segmentName(
  ownerPid: number,
  serial: number,
  options: { tag?: string; prefix?: string } = {},
): string {
  const tag = options.tag === undefined ? "" : `-${options.tag}`;
  return `/${options.prefix ?? "heddle"}-${ownerPid}${tag}-${serial}`;
}

/**
 * Writes `data` as an Arrow IPC stream into `target` (a mapped region of at least
 * `encodeStream(data).byteLength` bytes) and returns what a handle needs to describe it.
 */
export function writeStreamInto(
  target: Uint8Array,
  data: ArrowData,
): Pick<ObjectHandle, "length" | "rows" | "schemaFingerprint"> {
  const stream = encodeStream(data);
  return {
    length: stream.writeInto(target),
    rows: stream.rows,
    schemaFingerprint: stream.schemaFingerprint,
  };
}

/**
 * Creates segment `name` sized to fit `data`, writes it, unmaps it, and returns its handle
 * (id: the name without its slash). The caller owns the segment until a registry adopts it.
 */
export function writeSegment(name: string, data: ArrowData): ObjectHandle {
  const { handle, segment } = writeNew(encodeStream(data), (size) => createSegment(name, size));
  segment.release();
  return handle;
}

/** Writes `stream` into a segment `create` makes; the segment stays mapped for the caller. */
function writeNew(
  stream: EncodedStream,
  create: (size: number) => MappedSegment | undefined,
): { handle: ObjectHandle; segment: MappedSegment } {
  let segment: MappedSegment | undefined;
  while (segment === undefined) segment = create(stream.byteLength);
  try {
    stream.writeInto(segment.bytes);
  } catch (error) {
    segment.release();
    removeSegment(segment.location);
    throw error;
  }
  return { segment, handle: handleOf(stream, segment.location) };
}

/** A fresh random segment id: 128 bits, so that no two files ever share one. */
function newSegmentId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function handleOf(stream: EncodedStream, location: string, segmentId?: string): ObjectHandle {
  return {
    id: location.slice(1),
    segment: location,
    ...(segmentId ? { segmentId } : {}),
    offset: 0,
    length: stream.byteLength,
    schemaFingerprint: stream.schemaFingerprint,
    rows: stream.rows,
  };
}

function checkHandle(handle: ObjectHandle): void {
  const fine = typeof handle?.segment === "string" && handle.segment.length > 1 &&
    Number.isSafeInteger(handle.offset) && handle.offset >= 0 &&
    Number.isSafeInteger(handle.length) && handle.length > 0 &&
    Number.isSafeInteger(handle.rows) && handle.rows >= 0 &&
    /^[0-9a-f]{64}$/.test(handle.schemaFingerprint) &&
    (!handle.segmentId || /^[0-9a-f]{32}$/.test(handle.segmentId));
  if (!fine) {
    throw new RegistryError("invalid-input", `malformed object handle ${JSON.stringify(handle)}`);
  }
}

/**
 * Maps a handle's bytes read-only without decoding them, after checking that the segment
 * exists and is long enough. For hosts that pass the bytes on (to a socket, to Flight).
 */
export function mapHandle(handle: ObjectHandle): { bytes: Uint8Array; release(): void } {
  checkHandle(handle);
  const segment = openSegment(handle.segment, handle.offset + handle.length);
  return {
    bytes: segment.bytes.subarray(handle.offset, handle.offset + handle.length),
    release: () => segment.release(),
  };
}

/** Builds a lease over a mapping; `onRelease` runs once, after the last use. */
function makeLease(
  handle: ObjectHandle,
  segment: MappedSegment,
  onRelease: () => void,
): Lease {
  const bytes = segment.bytes.subarray(handle.offset, handle.offset + handle.length);
  const table = decodeStream(bytes, {
    location: handle.segment,
    schemaFingerprint: handle.schemaFingerprint,
    rows: handle.rows,
  });
  let live = true;
  const release = () => {
    if (live) onRelease();
    live = false;
  };
  return { handle: { ...handle }, table, bytes, release, [Symbol.dispose]: release };
}

/**
 * Maps and validates an object by its handle alone, for a process that has no registry (a
 * plugin reading its input). The registry that owns the object must keep it alive until
 * the lease is released; an unlinked segment stays readable through an existing mapping.
 */
export function openHandle(handle: ObjectHandle): Lease {
  checkHandle(handle);
  const segment = openSegment(handle.segment, handle.offset + handle.length);
  try {
    return makeLease(handle, segment, () => segment.release());
  } catch (error) {
    segment.release();
    throw error;
  }
}

interface Entry {
  handle: ObjectHandle;
  state: ObjectState;
  consumers: number;
  leases: number;
  /** The shared mapping of all current leases; present exactly while `leases > 0`. */
  mapping?: MappedSegment;
  /** Bytes the object occupies where it lives (the whole segment or spill file). */
  size: number;
  /** The producer's read-write mapping of a resident segment, kept for the pool. */
  writer?: MappedSegment;
}

/** A released segment kept for reuse: renamed out of reach, its pages written once. */
interface Pooled {
  name: string;
  /** The file's id, handed on with the next object written into it. */
  segmentId: string;
  size: number;
  /** How many leading bytes may still hold the last object's data; the rest are zero. */
  used: number;
  mapping: MappedSegment;
}

/** At most this many released segments are kept (each is one mapping). */
const POOL_SLOTS = 16;

let nextSerial = 1;

/** The largest memory budget accepted (1 PiB): larger values are typos, not budgets. */
export const MAX_MEMORY_BUDGET = 2 ** 50;

/** Owns objects in shared memory and spill files on one host. Not safe across workers. */
export class Registry {
  readonly memoryBudget: number;
  readonly spillDir: string;
  /**
   * The owner number in this registry's names: this process's pid, unless a live process of
   * another PID namespace holds that number (then a number above every pid). The registry
   * holds its owner lock (`/dev/shm/.heddle-owners/<prefix>-<ownerPid>.lock`) until `close()`.
   */
  readonly ownerPid: number;
  readonly prefix: string;
  #owner: OwnerClaim;
  #entries = new Map<string, Entry>();
  /**
   * Resident objects, least recently used first (`open` moves an object to the end): the
   * spill order. Kept incrementally, like `#bytesInMemory`, because a blocking stage can
   * hold thousands of objects and every `put` checks the budget.
   */
  #resident = new Map<string, Entry>();
  /** What `stats().bytesInMemory` reports, kept up to date by `#add`, `#spill`, `#forget`. */
  #bytesInMemory = 0;
  /**
   * Released segments, oldest first. A `put` writes into one that fits (at least its size,
   * at most twice) instead of a new segment whose pages the kernel must allocate and zero
   * on first touch: the difference between ~90 ms and ~670 ms for 1 GB (issue 11). Pooled
   * bytes count against the memory budget and go first when it is exceeded.
   */
  #pool: Pooled[] = [];
  /** The segment ids of the segments `writableSegment` handed out, for `adopt`. */
  #writerIds = new WeakMap<MappedSegment, string>();
  #bytesPooled = 0;
  readonly #pooling: boolean;
  #closed = false;

  /** Validates the options and sweeps segments left by dead owners with the same prefix. */
  constructor(options: RegistryOptions = {}) {
    this.memoryBudget = options.memoryBudget ?? 1 << 30;
    this.spillDir = options.spillDir ??
      `${Deno.env.get("TMPDIR") ?? "/tmp"}/heddle-spill-${Deno.uid() ?? "user"}`;
    this.prefix = options.prefix ?? "heddle";
    this.#pooling = options.pool ?? false;
    if (
      !Number.isSafeInteger(this.memoryBudget) || this.memoryBudget < 1 ||
      this.memoryBudget > MAX_MEMORY_BUDGET
    ) {
      throw new RegistryError(
        "invalid-input",
        `the memory budget must be a whole number of bytes from 1 to 2^50 (1 PiB), not ${this.memoryBudget}`,
      );
    }
    if (!/^[A-Za-z0-9_-]+$/.test(this.prefix) || /-\d+$/.test(this.prefix)) {
      throw new RegistryError("invalid-input", `prefix \`${this.prefix}\` is not a valid name`);
    }
    try {
      // A spill directory made in advance by another user would let them delete or read
      // spilled batches, so it is checked before any file is written into it.
      ensurePrivateDir(this.spillDir);
    } catch (e) {
      const reason = e instanceof UnsafePathError ? e.message : (e as Error).message;
      throw new RegistryError("system", `spill directory: ${reason}`, { cause: e });
    }
    this.#owner = claimOwner(this.prefix, options.ownerPid ?? Deno.pid);
    this.ownerPid = this.#owner.owner;
    sweepOrphans({ prefix: this.prefix, spillDir: this.spillDir });
  }

  /**
   * Creates a private directory `/tmp/<prefix>-<ownerPid>-<purpose>-XXXXXX` (short, for Unix
   * sockets). The caller removes it when done; if this process dies first, the next sweep
   * does, like its segments.
   */
  makeTempDir(purpose: string): string {
    if (!/^[a-z]+$/.test(purpose)) {
      throw new RegistryError("invalid-input", `temp dir purpose \`${purpose}\` is not a word`);
    }
    return Deno.makeTempDirSync({
      dir: TEMP_DIR,
      prefix: `${this.prefix}-${this.ownerPid}-${purpose}-`,
    });
  }

  /**
   * Stores `data` for `consumers` downstream readers; returns its current handle (a spill
   * file's if the budget or a full /dev/shm sent it there at once). Throws `no-space` when
   * neither /dev/shm nor the spill directory has room.
   */
  put(data: ArrowData, consumers: number): ObjectHandle {
    this.#checkOpen();
    this.#checkConsumers(consumers);
    const stream = encodeStream(data);
    const reused = this.#fromPool(stream, consumers);
    if (reused) return reused;
    let name = "";
    try {
      const { handle, segment } = writeNew(stream, (size) => {
        name = segmentName(this.ownerPid, nextSerial++, { prefix: this.prefix });
        return createSegmentIfAbsent(name, size);
      });
      // Only a pooled file is ever reused, so only then may readers keep its mapping: a reader
      // caching a file the registry removed would hold its memory past the budget.
      if (this.#pooling) handle.segmentId = newSegmentId();
      return this.#add(handle, consumers, handle.length, segment);
    } catch (error) {
      if (!(error instanceof RegistryError && error.code === "no-space")) throw error;
      return this.#putSpilled(stream, name.slice(1), consumers, error);
    }
  }

  /**
   * Takes ownership of a segment another process wrote (`/heddle-<workerPid>-<tag>-<n>`)
   * after validating it completely: framing and buffer sizes, then every offset, string and
   * dictionary index (`_contents.ts`). A segment that fails validation is removed, since no
   * one can use it, and the error is thrown. `writer`: the mapping `writableSegment` gave,
   * kept so that the segment returns to the pool when released (released here on failure).
   */
  adopt(handle: ObjectHandle, consumers: number, writer?: MappedSegment): ObjectHandle {
    this.#checkOpen();
    this.#checkConsumers(consumers);
    checkHandle(handle);
    if (!isShmName(handle.segment)) {
      throw new RegistryError("invalid-input", `only shared-memory segments can be adopted`);
    }
    const id = handle.segment.slice(1);
    if (this.#entries.has(id)) {
      throw new RegistryError("invalid-input", `segment \`${handle.segment}\` is already adopted`);
    }
    let size: number;
    try {
      const segment = openSegment(handle.segment, handle.offset + handle.length);
      size = segment.size;
      // Checked completely here, once, so that no reader of a registry object needs to.
      const lease = makeLease(handle, segment, () => segment.release());
      try {
        const problem = contentsProblem(lease.table);
        if (problem !== undefined) {
          throw new RegistryError(
            "corrupt",
            `object in \`${handle.segment}\` is corrupt: column ${problem}`,
            { segment: handle.segment },
          );
        }
      } finally {
        lease.release();
      }
    } catch (error) {
      writer?.release();
      if (!(error instanceof RegistryError && error.code === "missing")) {
        removeSegment(handle.segment);
      }
      throw error;
    }
    // A plugin's claim of a segment id is never trusted: readers that cache mappings by id
    // would read another segment's bytes for this object. A segment from `writableSegment`
    // has the id the registry gave it, and goes back to the pool with its writer.
    const { segmentId: _claimed, ...adopted } = handle;
    const segmentId = writer && this.#writerIds.get(writer);
    return this.#add(
      { ...adopted, id, ...(segmentId ? { segmentId } : {}) },
      consumers,
      size,
      writer,
    );
  }

  /** Maps, validates and leases an object; the lease pins it in place until released. */
  open(handleOrId: ObjectHandle | string): Lease {
    const entry = this.#entry(handleOrId);
    if (this.#resident.delete(entry.handle.id)) this.#resident.set(entry.handle.id, entry);
    const segment = entry.mapping ??
      openSegment(entry.handle.segment, entry.handle.offset + entry.handle.length);
    let lease: Lease;
    try {
      lease = makeLease(entry.handle, segment, () => this.#endLease(entry));
    } catch (error) {
      if (entry.mapping === undefined) segment.release();
      throw error;
    }
    entry.mapping = segment;
    entry.leases++;
    return lease;
  }

  /** The object's current handle (its segment changes when it spills). */
  handle(id: string): ObjectHandle {
    return { ...this.#entry(id).handle };
  }

  /** Where the object is in its life; "freed" for ids the registry does not hold. */
  state(id: string): ObjectState {
    return this.#entries.get(id)?.state ?? "freed";
  }

  /**
   * One consumer is done. At zero the segment or spill file is removed at once; the memory
   * is unmapped when the last lease ends (at once if there is none).
   */
  release(id: string): void {
    const entry = this.#entry(id);
    if (--entry.consumers > 0) return;
    if (entry.leases === 0 && this.#toPool(entry)) return;
    removeSegment(entry.handle.segment);
    this.#resident.delete(entry.handle.id);
    if (entry.leases > 0) entry.state = "draining";
    else this.#forget(entry);
  }

  stats(): RegistryStats {
    const stats: RegistryStats = {
      bytesInMemory: 0,
      bytesSpilled: 0,
      bytesPooled: this.#bytesPooled,
      objects: 0,
    };
    for (const entry of this.#entries.values()) {
      if (isShmName(entry.handle.segment)) stats.bytesInMemory += entry.size;
      else stats.bytesSpilled += entry.size;
      if (entry.state !== "draining") stats.objects++;
    }
    return stats;
  }

  /**
   * Removes every segment and spill file the registry owns. Mappings that leases still
   * hold are left to the process's end rather than pulled from under a reader.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const failures: unknown[] = [];
    try {
      this.#drainPool(0);
    } catch (error) {
      failures.push(error);
    }
    for (const entry of this.#entries.values()) {
      try {
        if (entry.state !== "draining") removeSegment(entry.handle.segment);
      } catch (error) {
        failures.push(error);
      }
      if (entry.leases === 0) this.#forget(entry);
      else entry.state = "draining";
    }
    try {
      this.#owner.release();
    } catch (error) {
      failures.push(error);
    }
    if (failures.length > 0) {
      throw new RegistryError("system", `close() could not remove ${failures.length} objects`, {
        cause: failures[0],
      });
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new RegistryError("closed", "the registry is closed");
  }

  #checkConsumers(consumers: number): void {
    if (!Number.isSafeInteger(consumers) || consumers < 1) {
      throw new RegistryError(
        "invalid-input",
        `an object needs at least one consumer, got ${consumers}`,
      );
    }
  }

  #entry(handleOrId: ObjectHandle | string): Entry {
    this.#checkOpen();
    const id = typeof handleOrId === "string" ? handleOrId : handleOrId.id;
    const entry = this.#entries.get(id);
    if (entry === undefined || entry.state === "draining") {
      throw new RegistryError("unknown-object", `the registry holds no object \`${id}\``);
    }
    return entry;
  }

  /**
   * Registers a resident object and enforces the budget, which may spill it at once:
   * returns the handle as it is afterwards, so no caller hands out a name already removed.
   */
  #add(
    handle: ObjectHandle,
    consumers: number,
    size: number,
    writer?: MappedSegment,
  ): ObjectHandle {
    const entry: Entry = {
      handle,
      state: "resident",
      consumers,
      leases: 0,
      size,
      writer,
    };
    this.#entries.set(handle.id, entry);
    this.#resident.set(handle.id, entry);
    this.#bytesInMemory += size;
    this.#enforceBudget();
    return { ...entry.handle };
  }

  /**
   * /dev/shm is full: writes the object straight to its spill file, where readers map it
   * the same way. Throws `no-space` naming both places when the spill directory is full too.
   */
  #putSpilled(
    stream: EncodedStream,
    id: string,
    consumers: number,
    shmError: RegistryError,
  ): ObjectHandle {
    const path = `${this.spillDir}/${id}.arrows`;
    const bytes = new Uint8Array(stream.byteLength);
    stream.writeInto(bytes);
    try {
      Deno.mkdirSync(this.spillDir, { recursive: true, mode: 0o700 });
      Deno.writeFileSync(path, bytes, { createNew: true, mode: 0o600 });
    } catch (error) {
      removeSegment(path);
      const spillError = toRegistryError(error, path);
      if (spillError.code !== "no-space") throw spillError;
      throw new RegistryError(
        "no-space",
        `no space for a ${stream.byteLength}-byte object: ${shmError.message}, and ${spillError.message}`,
        { cause: spillError, segment: path },
      );
    }
    const handle: ObjectHandle = {
      id,
      segment: path,
      offset: 0,
      length: stream.byteLength,
      schemaFingerprint: stream.schemaFingerprint,
      rows: stream.rows,
    };
    this.#entries.set(id, {
      handle,
      state: "spilled",
      consumers,
      leases: 0,
      size: stream.byteLength,
    });
    return { ...handle };
  }

  #endLease(entry: Entry): void {
    if (--entry.leases > 0) return;
    entry.mapping?.release();
    entry.mapping = undefined;
    if (entry.state === "draining") this.#forget(entry);
  }

  #forget(entry: Entry): void {
    entry.mapping?.release();
    entry.mapping = undefined;
    entry.writer?.release();
    entry.writer = undefined;
    if (isShmName(entry.handle.segment)) this.#bytesInMemory -= entry.size;
    entry.state = "freed";
    this.#entries.delete(entry.handle.id);
    this.#resident.delete(entry.handle.id);
  }

  /** Writes `stream` into a pooled segment that fits, under a new name; null if none does. */
  #fromPool(stream: EncodedStream, consumers: number): ObjectHandle | null {
    const name = segmentName(this.ownerPid, nextSerial++, { prefix: this.prefix });
    const slot = this.#takePooled(stream.byteLength, name);
    if (!slot) return null;
    try {
      stream.writeInto(slot.mapping.bytes);
      // A consumer maps the whole segment: what the previous object left past this one's
      // end must not reach it (a plugin of another workflow may read it).
      const need = stream.byteLength;
      if (slot.used > need) slot.mapping.bytes.fill(0, need, slot.used);
    } catch (error) {
      slot.mapping.release();
      removeSegment(name);
      throw error;
    }
    return this.#add(handleOf(stream, name, slot.segmentId), consumers, slot.size, slot.mapping);
  }

  /** The pooled segment that fits `need` bytes best, renamed to `name`; null if none does. */
  #takePooled(need: number, name: string): Pooled | null {
    let best = -1;
    this.#pool.forEach((p, i) => {
      if (p.size >= need && p.size <= 2 * need && (best < 0 || p.size < this.#pool[best].size)) {
        best = i;
      }
    });
    if (best < 0) return null;
    const [slot] = this.#pool.splice(best, 1);
    this.#bytesPooled -= slot.size;
    try {
      renameSegment(slot.name, name);
    } catch (error) {
      slot.mapping.release();
      removeSegment(slot.name);
      throw error;
    }
    return { ...slot, name };
  }

  /**
   * A writable segment of at least `size` bytes for an object that arrives from elsewhere
   * (the data plane writes a received stream into it), named with `tag`: a pooled one when
   * one fits (its bytes past `size` zeroed), else a new one. Hand it to `adopt` once
   * written, so that it returns to the pool when released; on failure, release and remove it.
   */
  writableSegment(size: number, tag: string): MappedSegment {
    this.#checkOpen();
    const name = segmentName(this.ownerPid, nextSerial++, { prefix: this.prefix, tag });
    const slot = this.#pooling ? this.#takePooled(size, name) : null;
    if (!slot) {
      const segment = createSegment(name, size);
      if (this.#pooling) this.#writerIds.set(segment, newSegmentId());
      return segment;
    }
    const { mapping } = slot;
    mapping.bytes.fill(0, size);
    const segment = {
      location: name,
      size: mapping.size,
      bytes: mapping.bytes,
      release: () => mapping.release(),
    };
    this.#writerIds.set(segment, slot.segmentId);
    return segment;
  }

  /**
   * Keeps a released resident segment for reuse when its producer's mapping is still held
   * and the budget has room: renamed first, so that no handle reaches it any more.
   */
  #toPool(entry: Entry): boolean {
    const { writer } = entry;
    if (!this.#pooling || entry.state !== "resident" || !writer) return false;
    const { segmentId } = entry.handle;
    if (!isShmName(entry.handle.segment) || !segmentId) return false;
    if (this.#bytesInMemory + this.#bytesPooled > this.memoryBudget) return false;
    const name = segmentName(this.ownerPid, nextSerial++, { prefix: this.prefix, tag: "pool" });
    try {
      renameSegment(entry.handle.segment, name);
    } catch {
      return false; // removed as usual by the caller
    }
    entry.writer = undefined;
    this.#forget(entry);
    const used = entry.handle.offset + entry.handle.length;
    this.#pool.push({ name, segmentId, size: entry.size, used, mapping: writer });
    this.#bytesPooled += entry.size;
    this.#drainPool(Math.max(0, this.memoryBudget - this.#bytesInMemory));
    return true;
  }

  /** Drops pooled segments, oldest first, until at most `bytes` and `POOL_SLOTS` are kept. */
  #drainPool(bytes: number): void {
    while (this.#pool.length > 0 && (this.#bytesPooled > bytes || this.#pool.length > POOL_SLOTS)) {
      const slot = this.#pool.shift()!;
      this.#bytesPooled -= slot.size;
      slot.mapping.release();
      removeSegment(slot.name);
    }
  }

  #enforceBudget(): void {
    this.#drainPool(Math.max(0, this.memoryBudget - this.#bytesInMemory));
    if (this.#bytesInMemory <= this.memoryBudget) return;
    for (const entry of [...this.#resident.values()]) {
      if (this.#bytesInMemory <= this.memoryBudget) return;
      if (entry.leases === 0 && !this.#spill(entry)) return;
    }
  }

  /** Copies a resident object to a spill file and frees its segment; false if it cannot. */
  #spill(entry: Entry): boolean {
    const { segment, offset, length } = entry.handle;
    const path = `${this.spillDir}/${segment.slice(1)}.arrows`;
    let source: MappedSegment | undefined;
    try {
      source = openSegment(segment, offset + length);
      Deno.mkdirSync(this.spillDir, { recursive: true, mode: 0o700 });
      Deno.writeFileSync(path, source.bytes.subarray(offset, offset + length), {
        createNew: true,
        mode: 0o600,
      });
    } catch {
      // A full disk leaves the object resident and the registry over budget, which is
      // better than losing the object; stats() shows it.
      removeSegment(path);
      return false;
    } finally {
      source?.release();
    }
    removeSegment(segment);
    entry.writer?.release();
    entry.writer = undefined;
    this.#resident.delete(entry.handle.id);
    this.#bytesInMemory -= entry.size;
    const { segmentId: _gone, ...moved } = entry.handle; // the id named the removed segment
    entry.handle = { ...moved, segment: path, offset: 0 };
    entry.size = length;
    entry.state = "spilled";
    return true;
  }
}
