/**
 * Who owns a segment name, in a way every process on the host can check, whatever its PID
 * namespace. The number in `/heddle-<owner>-...` used to be a pid checked with `kill(pid, 0)`,
 * but pids are per namespace: a janitor in one namespace saw the pid of a live worker in
 * another as dead and deleted its segments (issue 16). Now every owner holds an exclusive
 * `flock` on `/dev/shm/.heddle-owners/<prefix>-<owner>.lock` for as long as it lives (in a
 * directory of its own, so that nothing listing /dev/shm for segments mistakes it for one); flock locks belong to
 * the open file in the kernel, so they are visible across namespaces and vanish when the
 * holder dies, even by `kill -9`. An owner is alive exactly while its lock is held. This file
 * must never remove an owner file it does not hold the lock of.
 */

import { RegistryError } from "./_errors.ts";

/** Where POSIX shared-memory objects appear as files on Linux. */
export const SHM_DIR = "/dev/shm";

/** Where owner lock files live: on the same tmpfs, shared by every namespace that shares it. */
export const OWNER_DIR = `${SHM_DIR}/.heddle-owners`;

/**
 * Owner numbers past every possible pid (`pid_max` is at most 2^22): when this process's pid
 * is held by a live process of another PID namespace, the owner number moves up by this.
 */
const PID_LIMIT = 2 ** 22;

/** The lock file that says whether owner `owner` of `prefix` is alive. */
export function ownerFile(prefix: string, owner: number): string {
  return `${OWNER_DIR}/${prefix}-${owner}.lock`;
}

/** Creates the owner directory, writable by every user like /tmp (sticky bit). */
function ensureOwnerDir(): void {
  try {
    Deno.statSync(OWNER_DIR);
    return;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  try {
    Deno.mkdirSync(OWNER_DIR);
    Deno.chmodSync(OWNER_DIR, 0o1777);
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) {
      throw new RegistryError("system", `cannot create \`${OWNER_DIR}\`: ${error}`, {
        cause: error,
      });
    }
  }
}

/** What this process holds, so that several registries in one process share one claim. */
const held = new Map<string, { file: Deno.FsFile; users: number }>();

/**
 * Opens `path` and takes its exclusive lock without waiting. Returns the locked file, or
 * undefined when someone else holds the lock (or, without `create`, when there is no file).
 */
function lockFile(path: string, create: boolean): Deno.FsFile | undefined {
  while (true) {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true, write: true, create, mode: 0o600 });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw new RegistryError("system", `cannot open owner file \`${path}\`: ${error}`, {
        cause: error,
      });
    }
    if (!file.tryLockSync(true)) {
      file.close();
      return undefined;
    }
    // A janitor may have removed the file between our open and our lock: a lock on a file
    // that is no longer at `path` proves nothing to anyone, so start again.
    let same = false;
    try {
      same = Deno.statSync(path).ino === file.statSync().ino;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    if (same) return file;
    file.close();
    if (!create) return undefined;
  }
}

/** An owner number this process holds for a prefix; `release` ends the claim (idempotent). */
export interface OwnerClaim {
  readonly owner: number;
  release(): void;
}

/**
 * Claims an owner number for `prefix`: `preferred` (normally this process's pid) unless a
 * live process (of another PID namespace, since pids are unique within one) holds it, then
 * the first free `preferred + k * 2^22`. The lock file is removed when the last claim of
 * this process ends.
 */
export function claimOwner(prefix: string, preferred: number): OwnerClaim {
  ensureOwnerDir();
  for (let owner = preferred; Number.isSafeInteger(owner); owner += PID_LIMIT) {
    const path = ownerFile(prefix, owner);
    let entry = held.get(path);
    if (entry === undefined) {
      const file = lockFile(path, true);
      if (file === undefined) continue;
      entry = { file, users: 0 };
      held.set(path, entry);
    }
    entry.users++;
    const claimed = entry;
    let live = true;
    return {
      owner,
      release() {
        if (!live) return;
        live = false;
        if (--claimed.users > 0) return;
        held.delete(path);
        // Remove while still holding the lock, so no janitor can take it in between.
        try {
          Deno.removeSync(path);
        } catch (error) {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        } finally {
          claimed.file.close();
        }
      },
    };
  }
  throw new RegistryError("system", `no free owner number for prefix \`${prefix}\``);
}

/** What a janitor found out about an owner number. */
export type OwnerState =
  /** Someone holds its lock: never touch its names. */
  | "alive"
  /** Its lock file exists and nobody holds it: the janitor holds it now (see `dead`). */
  | "dead"
  /** No lock file: an owner from before owner files, or one that wrote no lock. */
  | "unknown";

/**
 * Checks owner `owner` of `prefix`. For "dead", the janitor holds the owner's lock until it
 * calls `bury()`, which removes the lock file: call it after removing the owner's names, so
 * that no new process can claim the number halfway through.
 */
export function inspectOwner(
  prefix: string,
  owner: number,
): { state: OwnerState; bury(): void } {
  const path = ownerFile(prefix, owner);
  const nothing = { bury() {} };
  if (held.has(path)) return { state: "alive", ...nothing };
  let exists = true;
  try {
    Deno.statSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    exists = false;
  }
  if (!exists) return { state: "unknown", ...nothing };
  const file = lockFile(path, false);
  // Held by someone; or buried just now by another janitor, which removes the names itself;
  // or claimed anew by a process that got the same number: in every case, hands off.
  if (file === undefined) return { state: "alive", ...nothing };
  return {
    state: "dead",
    bury() {
      try {
        Deno.removeSync(path);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      } finally {
        file.close();
      }
    },
  };
}
