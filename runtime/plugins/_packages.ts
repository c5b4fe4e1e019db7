/**
 * Plugin packages as content: what a deploy carries so that a worker on another host runs a
 * plugin it never had on disk (docs/cluster.md, "What a run carries"). A package is the
 * files of its directory (the same files the build cache hashes: build products, `.git` and
 * hidden folders left out), named by the SHA-256 of their paths and contents. The control
 * plane keeps the packages of its deploys in a store laid out like a worker's cache, and a
 * worker fetches one on first use, checks its hash, and keeps it under that hash.
 *
 * Everything received from a peer is checked here before it touches the disk: file paths
 * are relative and never leave the package, the content hashes to the name it was asked
 * for, and a package appears under its hash only complete (written aside, then renamed).
 * A cached package is checked again each time a run uses it, so a file changed on disk is
 * found and the package fetched anew instead of running something nobody deployed.
 */
import { createHash } from "node:crypto";
import { cacheDir, hashFile, sourceFiles } from "./_build.ts";

/** One file of a package: its path inside the package, its bytes, whether it runs. */
export interface PackageFile {
  path: string;
  content: Uint8Array;
  executable: boolean;
}

/** A package as it travels: its hash, its name under a module root, its files. */
export interface PluginPackage {
  hash: string;
  /** The package directory's path under the module root (`py-flags`), from the import path. */
  name: string;
  files: PackageFile[];
}

/** Which package a module of a deployed IR comes from (`Ir.modules[].package`). */
export interface PackageRef {
  hash: string;
  name: string;
}

/** The largest package a deploy carries (it travels in one control-channel message). */
export const MAX_PACKAGE_BYTES = 32 * 1024 * 1024;

/** Where a worker caches fetched packages: `$XDG_CACHE_HOME/heddle/plugin-packages`. */
export function packageCacheRoot(): string {
  return cacheDir("plugin-packages");
}

/** A package's hash: SHA-256 over every file's path, length and bytes, in path order. */
export function packageHash(files: readonly PackageFile[]): string {
  const hash = createHash("sha256").update("heddle-plugin-package-1\0");
  const sorted = [...files].sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  for (const file of sorted) hashFile(hash, file.path, file.content);
  return hash.digest("hex");
}

/** Reads the package in `dir` (named `name` under its module root), with its hash. */
export async function readPackage(dir: string, name: string): Promise<PluginPackage> {
  const files: PackageFile[] = [];
  let bytes = 0;
  for await (const path of sourceFiles(dir)) {
    const full = `${dir}/${path}`;
    const content = await Deno.readFile(full);
    bytes += content.length;
    if (bytes > MAX_PACKAGE_BYTES) {
      throw new PackageError(
        `plugin package \`${name}\` in ${dir} is larger than ${MAX_PACKAGE_BYTES} bytes, ` +
          "the most a deploy carries per package",
      );
    }
    const executable = ((await Deno.stat(full)).mode ?? 0) & 0o100;
    files.push({ path, content, executable: executable !== 0 });
  }
  return { hash: packageHash(files), name, files };
}

/** A package that is missing, damaged or not acceptable; the message says which and why. */
export class PackageError extends Error {
  override readonly name = "PackageError";
}

const SEGMENT = /^(?!\.\.?$)[^/\0\\]+$/;

/** Whether `path` is relative, without `.` or `..` segments, and names something inside. */
function safePath(path: string): boolean {
  return path.length > 0 && path.length < 4096 && path.split("/").every((s) => SEGMENT.test(s));
}

/**
 * Checks a package received from a peer: `hash` is what was asked for. Throws a
 * `PackageError` saying what is wrong.
 */
export function checkPackage(pkg: PluginPackage, hash: string): void {
  const what = `plugin package \`${pkg.name}\` (${hash.slice(0, 12)})`;
  if (!safePath(pkg.name)) throw new PackageError(`${what}: its name is not a relative path`);
  const bad = pkg.files.find((f) => !safePath(f.path));
  if (bad) throw new PackageError(`${what}: file \`${bad.path}\` is not a relative path inside it`);
  const paths = new Set(pkg.files.map((f) => f.path));
  if (paths.size !== pkg.files.length) throw new PackageError(`${what}: a file comes twice`);
  const got = packageHash(pkg.files);
  if (got !== hash) {
    throw new PackageError(`${what}: its content hashes to ${got.slice(0, 12)}, not to its name`);
  }
}

/**
 * Stores a checked package under `root/<hash>/<name>/`, written aside and renamed into place
 * so that nobody sees half of it; a damaged copy under that hash is replaced. Returns the
 * module root to search (`root/<hash>`).
 */
export async function storePackage(root: string, pkg: PluginPackage): Promise<string> {
  checkPackage(pkg, pkg.hash);
  await Deno.mkdir(root, { recursive: true, mode: 0o700 });
  const staging = await Deno.makeTempDir({ dir: root, prefix: `.${pkg.hash.slice(0, 12)}-` });
  try {
    for (const file of pkg.files) {
      const path = `${staging}/${pkg.name}/${file.path}`;
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      await Deno.writeFile(path, file.content, { mode: file.executable ? 0o700 : 0o600 });
    }
    const target = `${root}/${pkg.hash}`;
    await Deno.remove(target, { recursive: true }).catch(() => {});
    await Deno.rename(staging, target);
    return target;
  } catch (e) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * The stored copy of `ref` under `root`, read and checked against its hash: the package, or
 * `missing` when nothing is stored under it, or `damaged` when what is there hashes to
 * something else (a file changed, added or removed).
 */
export async function storedPackage(
  root: string,
  ref: PackageRef,
): Promise<PluginPackage | "missing" | "damaged"> {
  if (!safePath(ref.name)) throw new PackageError(`\`${ref.name}\` is not a package name`);
  const dir = `${root}/${ref.hash}/${ref.name}`;
  try {
    if (!(await Deno.stat(dir)).isDirectory) return "damaged";
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    const entry = await Deno.stat(`${root}/${ref.hash}`).catch(() => null);
    return entry ? "damaged" : "missing";
  }
  const pkg = await readPackage(dir, ref.name);
  return pkg.hash === ref.hash ? pkg : "damaged";
}
