/**
 * Segments: the places object bytes live, either a POSIX shared-memory object (a name like
 * `/heddle-123-7`) or a spill file (an absolute path). This file maps and removes them and
 * turns OS failures into `RegistryError`s. It never maps more bytes than the segment holds,
 * because touching a mapping past the end of its file raises SIGBUS, which kills the
 * process instead of throwing.
 */

import {
  closeFd,
  EEXIST,
  ENOENT,
  ENOSPC,
  fdSize,
  map,
  type Mapping,
  openReadOnly,
  OsError,
  reserve,
  shmOpen,
  shmUnlink,
  unmap,
} from "./_libc.ts";
import { RegistryError } from "./_errors.ts";
import { SHM_DIR } from "./_owner.ts";

/** A mapped segment; `bytes` covers the whole mapping and dies with `release()`. */
export interface MappedSegment {
  /** The shared-memory name or the file path. */
  readonly location: string;
  /** The segment's size in bytes, as found when it was mapped. */
  readonly size: number;
  /** A view over the mapped memory; invalid after `release()`. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Unmaps. Idempotent. Does not remove the segment. */
  release(): void;
}

/** True for a shared-memory name (one leading slash, none after), false for a file path. */
export function isShmName(location: string): boolean {
  return /^\/[^/]+$/.test(location);
}

/** True for "no space left on device", from libc (errno) or from Deno's file API. */
export function isNoSpace(error: unknown): boolean {
  if (error instanceof OsError) return error.errno === ENOSPC;
  return error instanceof Error && (error as { code?: string }).code === "ENOSPC";
}

/** Turns any failure on `location` into a RegistryError with a code callers can act on. */
export function toRegistryError(error: unknown, location: string): RegistryError {
  if (error instanceof RegistryError) return error;
  if (error instanceof OsError && error.errno === ENOENT) {
    return new RegistryError("missing", `segment \`${location}\` does not exist`, {
      cause: error,
      segment: location,
    });
  }
  if (isNoSpace(error)) {
    const where = isShmName(location) ? "/dev/shm" : "the spill directory";
    return new RegistryError("no-space", `no space left in ${where} for \`${location}\``, {
      cause: error,
      segment: location,
    });
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new RegistryError("system", `cannot use segment \`${location}\`: ${detail}`, {
    cause: error,
    segment: location,
  });
}

function mapped(location: string, mapping: Mapping): MappedSegment {
  let live = true;
  return {
    location,
    size: mapping.size,
    bytes: new Uint8Array(mapping.buffer),
    release() {
      if (live) unmap(mapping);
      live = false;
    },
  };
}

/** Creates a new shared-memory segment of `size` bytes, mapped read-write. */
export function createSegment(name: string, size: number): MappedSegment {
  const segment = createSegmentIfAbsent(name, size);
  if (segment === undefined) {
    throw new RegistryError("system", `segment \`${name}\` already exists`, { segment: name });
  }
  return segment;
}

/** Like `createSegment`, but returns undefined when the name is taken. */
export function createSegmentIfAbsent(name: string, size: number): MappedSegment | undefined {
  if (!isShmName(name)) {
    throw new RegistryError("invalid-input", `\`${name}\` is not a shared-memory name`);
  }
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new RegistryError(
      "invalid-input",
      `segment size must be a positive integer, not ${size}`,
    );
  }
  let fd = -1;
  try {
    fd = shmOpen(name, "create");
  } catch (error) {
    if (error instanceof OsError && error.errno === EEXIST) return undefined;
    throw toRegistryError(error, name);
  }
  try {
    reserve(fd, size, name);
    return mapped(name, map(fd, size, true, name));
  } catch (error) {
    removeSegment(name);
    throw toRegistryError(error, name);
  } finally {
    closeFd(fd);
  }
}

/**
 * Maps an existing segment or file read-only, after checking it holds at least `needed`
 * bytes (the end of the object inside it).
 */
export function openSegment(location: string, needed: number): MappedSegment {
  let fd = -1;
  try {
    fd = isShmName(location) ? shmOpen(location, "read") : openReadOnly(location);
    const size = fdSize(fd, location);
    if (size < needed || size === 0) {
      throw new RegistryError(
        "truncated",
        `segment \`${location}\` holds ${size} bytes, but the object needs ${needed}`,
        { segment: location },
      );
    }
    return mapped(location, map(fd, size, false, location));
  } catch (error) {
    throw toRegistryError(error, location);
  } finally {
    if (fd >= 0) closeFd(fd);
  }
}

/** Removes a segment or spill file; a segment that is already gone is not an error. */
export function removeSegment(location: string): void {
  try {
    if (isShmName(location)) shmUnlink(location);
    else Deno.removeSync(location);
  } catch (error) {
    if (error instanceof OsError && error.errno === ENOENT) return;
    if (error instanceof Deno.errors.NotFound) return;
    throw toRegistryError(error, location);
  }
}

/** Renames a shared-memory segment (its pages and every mapping of it stay as they are). */
export function renameSegment(from: string, to: string): void {
  if (!isShmName(from) || !isShmName(to)) {
    throw new RegistryError("invalid-input", `only shared-memory segments can be renamed`);
  }
  try {
    Deno.renameSync(`${SHM_DIR}${from}`, `${SHM_DIR}${to}`);
  } catch (error) {
    throw toRegistryError(error, from);
  }
}
