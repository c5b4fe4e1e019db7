/**
 * Cleanup of registry segments when their owner is gone. `sweepOrphans` removes segments,
 * spill files and private temp directories whose owner (the number after the prefix in their
 * name) is dead: its owner lock (`_owner.ts`) is not held, which works across PID namespaces
 * and covers `kill -9`, which no in-process handler can. `installExitCleanup` covers the
 * exits a process does see (normal end, uncaught error, SIGINT and SIGTERM). Neither may
 * ever remove an object of a live process, and importing this file installs nothing.
 */

import { processAlive } from "./_libc.ts";
import { inspectOwner, OWNER_DIR, type OwnerState, SHM_DIR } from "./_owner.ts";
import { removeSegment } from "./_segment.ts";

export { SHM_DIR };

/** Where owners' private directories live (`Registry.makeTempDir`); short, for sockets. */
export const TEMP_DIR = "/tmp";

export interface SweepOptions {
  /** The name prefix to sweep (`heddle` by default: `/heddle-<owner>-...`). */
  prefix?: string;
  /** A spill directory to sweep as well. */
  spillDir?: string;
}

export interface SweepReport {
  /**
   * Shared-memory names (with leading slash), spill file paths and temp directory paths
   * that were removed.
   */
  removed: string[];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function listDir(dir: string, directories = false): string[] {
  try {
    return [...Deno.readDirSync(dir)]
      .filter((entry) => directories ? entry.isDirectory : entry.isFile)
      .map((entry) => entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/**
 * Removes `<prefix>-<owner>-*` segments in /dev/shm, files in `spillDir` and directories in
 * /tmp whose owner is dead, and the owner files of dead owners (`_owner.ts`). An owner with an owner file
 * is alive while its lock is held; one without (written before owner files existed) while
 * a process with that pid exists in this PID namespace.
 */
export function sweepOrphans(options: SweepOptions = {}): SweepReport {
  const prefix = options.prefix ?? "heddle";
  const named = new RegExp(`^${escapeRegExp(prefix)}-(\\d+)(?:-|\\.lock$)`);
  const removed: string[] = [];
  const verdicts = new Map<number, { state: OwnerState; bury(): void }>();
  const orphaned = (name: string) => {
    const owner = Number(named.exec(name)?.[1] ?? Number.NaN);
    if (!Number.isSafeInteger(owner) || owner <= 0) return false;
    let verdict = verdicts.get(owner);
    if (verdict === undefined) {
      verdict = inspectOwner(prefix, owner);
      if (verdict.state === "unknown") {
        verdict = { state: processAlive(owner) ? "alive" : "dead", bury() {} };
      }
      verdicts.set(owner, verdict);
    }
    return verdict.state === "dead";
  };
  try {
    // Owner files of owners with no names left are found here, and removed by `bury`.
    listDir(OWNER_DIR).forEach(orphaned);
    const places: [string, (name: string) => string, boolean][] = [
      [SHM_DIR, (name) => `/${name}`, false],
      [TEMP_DIR, (name) => `${TEMP_DIR}/${name}`, true],
    ];
    if (options.spillDir !== undefined) {
      places.push([options.spillDir, (name) => `${options.spillDir}/${name}`, false]);
    }
    for (const [dir, locationOf, directories] of places) {
      for (const name of listDir(dir, directories).filter(orphaned)) {
        if (directories) Deno.removeSync(locationOf(name), { recursive: true });
        else removeSegment(locationOf(name));
        removed.push(locationOf(name));
      }
    }
  } finally {
    for (const verdict of verdicts.values()) verdict.bury();
  }
  return { removed };
}

const signalNumbers: Partial<Record<Deno.Signal, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGTERM: 15,
};

/** Something that can free everything it owns, more than once without harm. */
export interface Closable {
  close(): void;
}

/**
 * Closes `target` when the process ends normally, on an uncaught error or unhandled
 * rejection, and on each of `signals` (after which the process exits with 128 + signal
 * number, as the default action would). Returns a function that uninstalls all of it, so
 * an executor that drains on SIGTERM can pass only `["SIGINT"]` and handle SIGTERM itself.
 */
export function installExitCleanup(
  target: Closable,
  signals: Deno.Signal[] = ["SIGINT", "SIGTERM"],
): () => void {
  const close = () => target.close();
  const handlers = signals.map((signal) => {
    const handler = () => {
      close();
      Deno.exit(128 + (signalNumbers[signal] ?? 0));
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  const events = ["unload", "error", "unhandledrejection"] as const;
  for (const event of events) globalThis.addEventListener(event, close);
  return () => {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
    for (const event of events) globalThis.removeEventListener(event, close);
  };
}
