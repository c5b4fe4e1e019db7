/**
 * Cleanup of registry segments when their owner is gone. `sweepOrphans` removes segments
 * and spill files whose owner pid (the number after the prefix in their name) is no longer
 * alive; it covers `kill -9`, which no in-process handler can. `installExitCleanup` covers
 * the exits a process does see (normal end, uncaught error, SIGINT and SIGTERM). Neither
 * may ever remove an object of a live process, and importing this file installs nothing.
 */

import { processAlive } from "./_libc.ts";
import { removeSegment } from "./_segment.ts";

/** Where POSIX shared-memory objects appear as files on Linux. */
export const SHM_DIR = "/dev/shm";

export interface SweepOptions {
  /** The name prefix to sweep (`heddle` by default: `/heddle-<pid>-...`). */
  prefix?: string;
  /** A spill directory to sweep as well. */
  spillDir?: string;
}

export interface SweepReport {
  /** Shared-memory names (with leading slash) and spill file paths that were removed. */
  removed: string[];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function listDir(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].filter((entry) => entry.isFile).map((entry) => entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/**
 * Removes `<prefix>-<pid>-*` segments in /dev/shm (and files in `spillDir`) whose pid is
 * not a live process. A name whose pid has been reused by a live process is kept.
 */
export function sweepOrphans(options: SweepOptions = {}): SweepReport {
  const owner = new RegExp(`^${escapeRegExp(options.prefix ?? "heddle")}-(\\d+)-`);
  const removed: string[] = [];
  const alive = new Map<number, boolean>();
  const orphaned = (name: string) => {
    const pid = Number(owner.exec(name)?.[1] ?? Number.NaN);
    if (!Number.isSafeInteger(pid) || pid <= 0) return false;
    if (!alive.has(pid)) alive.set(pid, processAlive(pid));
    return !alive.get(pid);
  };
  const places: [string, (name: string) => string][] = [[SHM_DIR, (name) => `/${name}`]];
  if (options.spillDir !== undefined) {
    places.push([options.spillDir, (name) => `${options.spillDir}/${name}`]);
  }
  for (const [dir, locationOf] of places) {
    for (const name of listDir(dir).filter(orphaned)) {
      removeSegment(locationOf(name));
      removed.push(locationOf(name));
    }
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
