/**
 * Module contracts: the built-in `fhub/*` modules and plugin manifests found on the module
 * path. This is the only place that knows where modules come from; later phases ask it for
 * a `ModuleContract` by import path. It must never run module code.
 */
import { BUILTIN_MODULES } from "./_builtin.ts";
import {
  findPluginModule,
  MANIFEST_FILE,
  type ModuleLookup,
  parseManifest,
  type ReadText,
  readTextSync,
} from "./_manifest.ts";

export * from "./_arrow.ts";
export type * from "./_contract.ts";
export { BUILTIN_MODULES, MANIFEST_FILE, parseManifest, readTextSync };
export type { ModuleLookup, ReadText };

export interface ModuleSearch {
  /** The directory of the program being compiled. */
  programDir: string;
  /** Extra roots searched after the program's own (from options or the CLI). */
  modulePath?: string[];
  /** `HEDDLE_PATH` as read by the caller (colon-separated); the compiler reads no env. */
  heddlePath?: string;
  read?: ReadText;
}

/**
 * The roots searched for plugin modules, in order: the program's directory, its `plugins/`
 * folder, each `HEDDLE_PATH` entry, then `modulePath`.
 */
export function moduleRoots(search: ModuleSearch): string[] {
  const dir = search.programDir.replace(/\/$/, "") || ".";
  return [
    dir,
    `${dir}/plugins`,
    ...(search.heddlePath ?? "").split(":").filter((s) => s),
    ...(search.modulePath ?? []),
  ];
}

/** Looks a module up by import path: built-ins first, then plugin manifests. */
export function loadModule(path: string, search: ModuleSearch): ModuleLookup {
  const builtin = BUILTIN_MODULES.get(path);
  if (builtin) return { ok: true, module: builtin };
  if (path.startsWith("fhub/")) {
    return { ok: false, message: `\`${path}\` is not a built-in module`, searched: [] };
  }
  return findPluginModule(path, moduleRoots(search), search.read ?? readTextSync);
}
