/**
 * Plugin packages as content: what a deploy carries so that a worker on another host runs a
 * plugin it never had on disk (docs/cluster.md, "What a run carries"). A package is the
 * files of its directory (the same files the build cache hashes: build products, `.git` and
 * hidden folders left out) and what its build or run reads from outside it (`_package_deps.ts`:
 * a Go `replace` or Cargo `path` directory, a TypeScript module graph), laid out as a tree
 * that keeps their relative places, so that `../../../sdk/go` still resolves in a copy; it
 * is named by the SHA-256 of the tree's paths and contents. The control plane keeps the
 * packages of its deploys in a store laid out like a worker's cache, and a worker fetches
 * one on first use, checks its hash, and keeps it under that hash.
 *
 * Everything received from a peer is checked here before it touches the disk: file paths
 * are relative and never leave the package, the content hashes to the name it was asked
 * for, and a package appears under its hash only complete (written aside, then renamed).
 * A cached package is checked again each time a run uses it, so a file changed on disk is
 * found and the package fetched anew instead of running something nobody deployed.
 */
import { createHash } from "node:crypto";
import { dirname, relative, resolve } from "node:path";
import { cacheDir, hashFile, sourceFiles } from "./_build.ts";
import { inside, type OutsideEntry, outsideOf } from "./_package_deps.ts";

/** One file of a package: its path in the package's tree, its bytes, whether it runs. */
export interface PackageFile {
  path: string;
  content: Uint8Array;
  executable: boolean;
}

/** A package as it travels: its hash, its name under a module root, its tree of files. */
export interface PluginPackage {
  hash: string;
  /** The package directory's path under the module root (`py-flags`), from the import path. */
  name: string;
  /**
   * The package directory's path in the tree: `name` when nothing outside it comes along,
   * deeper when something does (`examples/plugins/geo`, next to `sdk/go`).
   */
  dir: string;
  files: PackageFile[];
}

/** Which package a module of a deployed IR comes from (`Ir.modules[].package`). */
export interface PackageRef {
  hash: string;
  name: string;
  /** `PluginPackage.dir`; absent (or empty) means `name`. */
  dir?: string;
}

/** The largest package a deploy carries, with what it carries from outside (one message). */
export const MAX_PACKAGE_BYTES = 32 * 1024 * 1024;

const MANIFEST = "heddle.manifest.json";

/** Where a worker caches fetched packages: `$XDG_CACHE_HOME/heddle/plugin-packages`. */
export function packageCacheRoot(): string {
  return cacheDir("plugin-packages");
}

function treeDir(ref: PackageRef): string {
  return ref.dir || ref.name;
}

/** The module root of a package whose tree is stored in `tree` (its package: `<root>/<name>`). */
export function moduleRootOf(tree: string, ref: PackageRef): string {
  const dir = treeDir(ref);
  return dir === ref.name ? tree : `${tree}/${dir.slice(0, -ref.name.length - 1)}`;
}

/**
 * A package's hash: SHA-256 over the package directory's place in the tree and every file's
 * path, length and bytes, in path order.
 */
export function packageHash(files: readonly PackageFile[], dir: string): string {
  const hash = createHash("sha256").update(`heddle-plugin-package-2\0${dir}\0`);
  const sorted = [...files].sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  for (const file of sorted) hashFile(hash, file.path, file.content);
  return hash.digest("hex");
}

/**
 * The directory nothing a package carries may lie outside of: the repository it is in (the
 * nearest directory at or above it holding `.git`), else its module root.
 */
async function repositoryOf(dir: string, moduleRoot: string): Promise<string> {
  for (let up = dir; up !== dirname(up); up = dirname(up)) {
    if (await Deno.lstat(`${up}/.git`).catch(() => null)) return up;
  }
  return moduleRoot;
}

/**
 * Reads the package in `dir` (named `name` under its module root) with what it needs from
 * outside its directory, and hashes it. Something outside the package's repository, or a
 * package larger than `MAX_PACKAGE_BYTES` with it, is refused with a `PackageError` naming
 * the file that asks for it.
 */
export async function readPackage(dir: string, name: string): Promise<PluginPackage> {
  const what = `plugin package \`${name}\` in ${dir}`;
  dir = await Deno.realPath(dir);
  const moduleRoot = dir.endsWith(`/${name}`) ? dir.slice(0, -name.length - 1) : dirname(dir);
  const bound = await repositoryOf(dir, moduleRoot);
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/${MANIFEST}`).catch(() => "{}"));
  let outside;
  try {
    outside = await outsideOf(dir, Array.isArray(manifest.entry) ? manifest.entry : [], bound);
  } catch (e) {
    throw new PackageError(`${what}: ${(e as Error).message}`);
  }
  // The tree's top: the deepest directory holding the module root and all that comes along.
  let top = moduleRoot;
  const entries: OutsideEntry[] = [];
  for (const entry of outside.entries) {
    const path = await Deno.realPath(entry.path).catch(() => entry.path);
    if (!inside(path, bound)) {
      throw new PackageError(
        `${what}: ${relative(dir, entry.from) || entry.from} names \`${entry.path}\`, outside ` +
          `the package's repository ${bound}; a deploy carries only what lies inside it`,
      );
    }
    while (!inside(path, top)) top = dirname(top);
    entries.push({ ...entry, path });
  }
  // Files written for the copy (a Cargo workspace root) sit where their originals do.
  for (const file of outside.generated) while (!inside(file.path, top)) top = dirname(top);
  const files = new Map<string, PackageFile>();
  let bytes = 0;
  const add = async (path: string, content?: Uint8Array) => {
    content ??= await Deno.readFile(path);
    bytes += content.length;
    if (bytes > MAX_PACKAGE_BYTES) {
      const along = entries.map((e) => relative(dir, e.path)).join(", ");
      throw new PackageError(
        `${what} is larger than ${MAX_PACKAGE_BYTES} bytes, the most a deploy carries per ` +
          "package" + (along ? ` (with what it names outside it: ${along})` : ""),
      );
    }
    const executable = (((await Deno.stat(path).catch(() => null))?.mode ?? 0) & 0o100) !== 0;
    files.set(relative(top, path), { path: relative(top, path), content, executable });
  };
  for await (const path of sourceFiles(dir)) await add(`${dir}/${path}`);
  for (const entry of entries) {
    if (entry.kind === "file") await add(entry.path);
    else for await (const path of sourceFiles(entry.path)) await add(`${entry.path}/${path}`);
  }
  for (const file of outside.generated) await add(resolve(file.path), file.content);
  if (outside.denoConfig) await add(`${top}/deno.json`, outside.denoConfig(top));
  const place = relative(top, dir);
  const list = [...files.values()];
  return { hash: packageHash(list, place), name, dir: place, files: list };
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
  if (!safePath(pkg.dir) || (pkg.dir !== pkg.name && !pkg.dir.endsWith(`/${pkg.name}`))) {
    throw new PackageError(`${what}: its directory \`${pkg.dir}\` is not a place for it`);
  }
  const bad = pkg.files.find((f) => !safePath(f.path));
  if (bad) throw new PackageError(`${what}: file \`${bad.path}\` is not a relative path inside it`);
  const paths = new Set(pkg.files.map((f) => f.path));
  if (paths.size !== pkg.files.length) throw new PackageError(`${what}: a file comes twice`);
  if (!paths.has(`${pkg.dir}/${MANIFEST}`)) {
    throw new PackageError(`${what}: it has no ${MANIFEST} in \`${pkg.dir}\``);
  }
  const got = packageHash(pkg.files, pkg.dir);
  if (got !== hash) {
    throw new PackageError(`${what}: its content hashes to ${got.slice(0, 12)}, not to its name`);
  }
}

/**
 * Stores a checked package's tree under `root/<hash>/`, written aside and renamed into
 * place so that nobody sees half of it; a damaged copy under that hash is replaced. Returns
 * the module root to search (`root/<hash>` when nothing outside the package came along).
 */
export async function storePackage(root: string, pkg: PluginPackage): Promise<string> {
  checkPackage(pkg, pkg.hash);
  await Deno.mkdir(root, { recursive: true, mode: 0o700 });
  const staging = await Deno.makeTempDir({ dir: root, prefix: `.${pkg.hash.slice(0, 12)}-` });
  try {
    for (const file of pkg.files) {
      const path = `${staging}/${file.path}`;
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      await Deno.writeFile(path, file.content, { mode: file.executable ? 0o700 : 0o600 });
    }
    const target = `${root}/${pkg.hash}`;
    await Deno.remove(target, { recursive: true }).catch(() => {});
    await Deno.rename(staging, target);
    return moduleRootOf(target, pkg);
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
  const dir = treeDir(ref);
  if (!safePath(ref.name) || !safePath(dir)) {
    throw new PackageError(`\`${ref.name}\` is not a package name`);
  }
  const tree = `${root}/${ref.hash}`;
  try {
    if (!(await Deno.stat(`${tree}/${dir}`)).isDirectory) return "damaged";
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    return (await Deno.stat(tree).catch(() => null)) ? "damaged" : "missing";
  }
  const files: PackageFile[] = [];
  for await (const path of sourceFiles(tree)) {
    const full = `${tree}/${path}`;
    const executable = (((await Deno.stat(full)).mode ?? 0) & 0o100) !== 0;
    files.push({ path, content: await Deno.readFile(full), executable });
  }
  const pkg = { hash: packageHash(files, dir), name: ref.name, dir, files };
  return pkg.hash === ref.hash ? pkg : "damaged";
}
