/**
 * Plugins of a deployed run on a worker that may never have had their files: the run's IR
 * names each plugin package by content hash (`modules[].package`, set by the control
 * plane's deploy), and on the first plugin call of the run this finds every package, in
 * this order: the worker's own module path holding the very same files, with the very same
 * files outside it that it names (used in place: a `heddle local` runs its own module
 * path), the worker's cache, or else the control plane, over the authenticated control
 * channel. A package carries what it needs from outside its directory (an SDK it builds
 * against, the modules its imports resolve to), laid out at the same relative places, so a
 * copy runs where nothing else of the deployer's tree exists. A fetched package is checked
 * against its hash, cached
 * under it, and announced with a `package-fetched` run event; a cached package is hashed
 * again on each run that uses it, and one that changed on disk is fetched anew. A package
 * that cannot be had fails the run's plugin calls as a plugin that cannot start
 * (`start-failed`), which ends the run with the reason.
 */
import type { Ir } from "../../compiler/mod.ts";
import { MANIFEST_FILE } from "../../compiler/modules/mod.ts";
import {
  type ChainCall,
  checkPackage,
  type InvokeOptions,
  type InvokeResult,
  moduleRootOf,
  type PackageRef,
  PluginError,
  type PluginHost,
  type PluginPackage,
  readPackage,
  storedPackage,
  storePackage,
} from "../plugins/mod.ts";
import type { ObjectHandle } from "../registry/mod.ts";

/** Where a worker gets packages it does not have. */
export interface PackageSource {
  /** The worker's package cache (`packageCacheRoot()` by default). */
  cache: string;
  /** Asks the control plane for a package (`ControlApi.fetchPackage`). */
  fetch(ref: PackageRef): Promise<PluginPackage>;
}

/** The distinct packages a run's IR names. */
export function packagesOf(ir: Ir): PackageRef[] {
  const refs = new Map<string, PackageRef>();
  for (const module of ir.modules) {
    if (module.package) refs.set(module.package.hash, module.package);
  }
  return [...refs.values()];
}

/** Fetches in progress in this process, by hash: concurrent runs share one. */
const fetching = new Map<string, Promise<string>>();

export interface PackagedPluginsOptions {
  source: PackageSource;
  /** The worker's own module path (`HEDDLE_PATH`). */
  heddlePath?: string;
  /** The plugin host that searches exactly these module roots and package directories. */
  host(roots: string[], dirs: string[]): PluginHost;
  /** Reports a run event (`package-fetched`). */
  emit(kind: string, detail: Record<string, unknown>): void;
}

/** The run's plugin invoker: provisions the packages on the first call, then delegates. */
export class PackagedPlugins {
  #ready: Promise<PluginHost | PluginError> | null = null;

  constructor(readonly refs: PackageRef[], readonly options: PackagedPluginsOptions) {}

  async invokeChain(
    chain: readonly ChainCall[],
    input: ObjectHandle,
    options?: InvokeOptions,
  ): Promise<InvokeResult> {
    this.#ready ??= this.#provide(chain[0]?.step ?? "");
    const host = await this.#ready;
    if (host instanceof PluginError) return { ok: false, error: host };
    return host.invokeChain(chain, input, options);
  }

  async #provide(step: string): Promise<PluginHost | PluginError> {
    const roots: string[] = [];
    for (const ref of this.refs) {
      try {
        roots.push(await this.#root(ref));
      } catch (e) {
        return new PluginError(
          "start-failed",
          `plugin package \`${ref.name}\` (${ref.hash.slice(0, 12)}): ${(e as Error).message}`,
          { step, cause: e },
        );
      }
    }
    return this.options.host(roots, roots.map((root, i) => `${root}/${this.refs[i].name}`));
  }

  /** The module root under which `ref`'s package sits with exactly its deployed files. */
  async #root(ref: PackageRef): Promise<string> {
    for (const root of (this.options.heddlePath ?? "").split(":").filter((s) => s)) {
      const dir = `${root.replace(/\/$/, "")}/${ref.name}`;
      const manifest = await Deno.stat(`${dir}/${MANIFEST_FILE}`).catch(() => null);
      if (!manifest?.isFile) continue;
      const here = await readPackage(dir, ref.name).catch(() => null);
      if (here?.hash === ref.hash) return root;
    }
    const { cache } = this.options.source;
    const stored = await storedPackage(cache, ref);
    if (typeof stored !== "string") return moduleRootOf(`${cache}/${ref.hash}`, ref);
    let pending = fetching.get(ref.hash);
    if (!pending) {
      pending = this.#fetch(ref, stored).finally(() => fetching.delete(ref.hash));
      fetching.set(ref.hash, pending);
    }
    return await pending;
  }

  async #fetch(ref: PackageRef, cached: "missing" | "damaged"): Promise<string> {
    let pkg: PluginPackage;
    try {
      pkg = await this.options.source.fetch(ref);
    } catch (e) {
      throw new Error(`cannot fetch it from the control plane: ${(e as Error).message}`);
    }
    if (pkg.name !== ref.name || pkg.dir !== (ref.dir || ref.name)) {
      throw new Error(`the control plane sent package \`${pkg.dir}\` instead`);
    }
    checkPackage(pkg, ref.hash);
    const root = await storePackage(this.options.source.cache, pkg);
    this.options.emit("package-fetched", {
      package: ref.name,
      hash: ref.hash,
      files: pkg.files.length,
      bytes: pkg.files.reduce((n, f) => n + f.content.length, 0),
      // A cached copy that no longer matched its hash was replaced.
      replacedDamaged: cached === "damaged",
    });
    return root;
  }
}
