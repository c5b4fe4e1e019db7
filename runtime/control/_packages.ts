/**
 * The plugin packages of a daemon's deploys. A deploy compiles against manifests on the
 * operator's module path; the packages they sit in are read then, named by their content
 * hash in the deployed IR (`modules[].package`) and kept in the control plane's store
 * (`<state>/packages/<hash>/<name>/`), so that every run of that deploy uses those files,
 * whatever changes on the module path later, and a worker on another host can fetch them
 * (`fetchPackage`) instead of needing the same paths (docs/cluster.md).
 */
import type { Ir } from "../../compiler/mod.ts";
import {
  type PackageRef,
  type PluginPackage,
  readPackage,
  storedPackage,
  storePackage,
} from "../plugins/mod.ts";
import { ControlError } from "../protocol/mod.ts";

/** The package directory's path under its module root, from the import path it serves. */
function nameUnderRoot(modulePath: string, dir: string): string {
  const segments = modulePath.split("/");
  for (let n = segments.length; n >= 1; n--) {
    const prefix = segments.slice(0, n).join("/");
    if (dir.endsWith(`/${prefix}`)) return prefix;
  }
  return dir.slice(dir.lastIndexOf("/") + 1);
}

const HASH = /^[0-9a-f]{64}$/;

export class PackageStore {
  /** `heddlePath`: this control plane's module path, where a package missing here is looked for. */
  constructor(readonly root: string, readonly heddlePath?: string) {}

  /**
   * Stores the packages of the IR's plugin modules and names each in its module; returns
   * the IR as JSON. A package that cannot be read fails the deploy.
   */
  async carry(irJson: string): Promise<string> {
    const ir = JSON.parse(irJson) as Ir;
    const byDir = new Map<string, PackageRef>();
    for (const module of ir.modules) {
      if (module.dir === null) continue;
      let ref = byDir.get(module.dir);
      if (!ref) {
        const name = nameUnderRoot(module.path, module.dir);
        let pkg: PluginPackage;
        try {
          pkg = await readPackage(module.dir, name);
        } catch (e) {
          throw new ControlError(
            `cannot read plugin package \`${name}\` for module \`${module.path}\`: ${
              (e as Error).message
            }`,
            "invalid",
          );
        }
        ref = { hash: pkg.hash, name, dir: pkg.dir };
        if (typeof await storedPackage(this.root, ref) === "string") {
          await storePackage(this.root, pkg);
        }
        byDir.set(module.dir, ref);
      }
      module.package = ref;
    }
    return JSON.stringify(ir);
  }

  /** A stored package, checked against its hash before it leaves. */
  async fetch(ref: PackageRef): Promise<PluginPackage> {
    if (!HASH.test(ref.hash)) {
      throw new ControlError(`\`${ref.hash}\` is not a package hash`, "invalid");
    }
    const what = `plugin package \`${ref.name}\` (${ref.hash.slice(0, 12)})`;
    let stored;
    try {
      stored = await storedPackage(this.root, ref);
    } catch (e) {
      throw new ControlError(`cannot read ${what}: ${(e as Error).message}`, "unavailable");
    }
    if (stored === "missing") {
      // Deployed through another control plane on the same state database: the same files
      // on this one's module path serve as well (their hash says so).
      const found = await this.#fromModulePath(ref);
      if (found) return found;
      throw new ControlError(`this control plane keeps no ${what}`, "not-found");
    }
    if (stored === "damaged") {
      throw new ControlError(
        `this control plane's copy of ${what} no longer matches its hash (changed on disk); ` +
          "deploy the program again",
        "unavailable",
      );
    }
    return stored;
  }

  async #fromModulePath(ref: PackageRef): Promise<PluginPackage | null> {
    for (const root of (this.heddlePath ?? "").split(":").filter((s) => s)) {
      const pkg = await readPackage(`${root.replace(/\/$/, "")}/${ref.name}`, ref.name)
        .catch(() => null);
      if (pkg?.hash === ref.hash) {
        await storePackage(this.root, pkg);
        return pkg;
      }
    }
    return null;
  }
}
