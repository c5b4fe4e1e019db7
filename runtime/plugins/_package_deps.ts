/**
 * What a plugin package's build or run reads from outside its own directory, found the way
 * its toolchain finds it, so that a deploy carries it too (docs/cluster.md, "What a run
 * carries"): Go `replace … => path` directives, Cargo `path = "…"` dependencies (those of
 * path dependencies too) and the Cargo workspace the crate sits in, and a TypeScript
 * package's module graph as `deno info` resolves it (workspace members, import-map entries,
 * relative imports) with the files its modules name by `new URL("…", import.meta.url)`.
 *
 * Nothing here writes anywhere: files the carried copy needs in another form (a TypeScript
 * package's import map made explicit, a Cargo workspace root listing only this crate) are
 * returned as content, and only ever land in the copy a deploy stores and a worker fetches.
 * Heddle's own SDK copies (`heddle plugin new` names them under the worker's cache,
 * `…/heddle/plugin-assets/…`) are not carried: every worker writes its own.
 */
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Something outside the package that it needs, with the file of the package that names it. */
export interface OutsideEntry {
  /** Absolute path: a directory carried whole (its source files) or one file. */
  path: string;
  kind: "dir" | "file";
  /** The file that names it, for messages (`go.mod`, `Cargo.toml`, `main.ts`). */
  from: string;
}

/** What a package needs from outside its directory, and files written for its carried copy. */
export interface Outside {
  entries: OutsideEntry[];
  /** Files of the carried copy that differ from the deployer's (absolute path, content). */
  generated: { path: string; content: Uint8Array; from: string }[];
  /**
   * The `deno.json` written at the top of the carried tree (the deepest directory holding
   * the package and all that comes along, given as `top`), or null when none is needed.
   */
  denoConfig: ((top: string) => Uint8Array) | null;
}

/** Where `heddle plugin new` points scaffolded packages: every worker writes its own copy. */
const ASSETS = "/heddle/plugin-assets/";

/** Whether `path` is `dir` or lies inside it. */
export function inside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

const readText = (path: string) => Deno.readTextFile(path).catch(() => "");

/**
 * The local directories a Go module or a Rust crate in `dir` builds from: Go `replace`
 * targets that are paths, Cargo `path` dependencies, its own and its workspace's
 * (transitively); absolute paths, sorted.
 * Heddle's SDK copies in the plugin-assets cache are included (the build cache keys on them).
 */
export async function buildDependencies(dir: string): Promise<{ path: string; from: string }[]> {
  const found = new Map<string, string>();
  const goMod = await readText(`${dir}/go.mod`);
  // Only the main module's replacements apply in Go, so a replaced module's own are not read.
  for (const m of goMod.matchAll(/=>\s*(\.{0,2}\/[^\s]+)\s*$/gm)) {
    found.set(resolve(dir, m[1]), `${dir}/go.mod`);
  }
  const crates = [dir];
  // Dependencies a member takes from its workspace (`lib = { workspace = true }`).
  const workspace = await workspaceRoot(dir);
  for (const m of (workspace?.toml ?? "").matchAll(/\bpath\s*=\s*"([^"]+)"/g)) {
    const path = resolve(workspace!.dir, m[1]);
    if (path === dir || found.has(path)) continue;
    found.set(path, `${workspace!.dir}/Cargo.toml`);
    crates.push(path);
  }
  for (let crate = crates.shift(); crate !== undefined; crate = crates.shift()) {
    const toml = await readText(`${crate}/Cargo.toml`);
    for (const m of toml.matchAll(/\bpath\s*=\s*"([^"]+)"/g)) {
      const path = resolve(crate, m[1]);
      if (path === dir || found.has(path)) continue;
      found.set(path, `${crate}/Cargo.toml`);
      crates.push(path);
    }
  }
  return [...found].map(([path, from]) => ({ path, from })).sort((a, b) =>
    a.path < b.path ? -1 : a.path > b.path ? 1 : 0
  );
}

/**
 * What the package in `dir` needs from outside it; `entry` is its manifest's start command
 * (its TypeScript modules are read from there), `bound` the directory above which no
 * Cargo workspace is looked for. Throws an `Error` naming the file and the path when a
 * named dependency is missing.
 */
export async function outsideOf(
  dir: string,
  entry: readonly string[],
  bound: string,
): Promise<Outside> {
  const outside: Outside = { entries: [], generated: [], denoConfig: null };
  for (const dep of await buildDependencies(dir)) {
    if (inside(dep.path, dir) || dep.path.includes(ASSETS)) continue;
    const stat = await Deno.stat(dep.path).catch(() => null);
    if (!stat?.isDirectory) {
      throw new Error(`${dep.from} names \`${dep.path}\`, which is not a directory`);
    }
    outside.entries.push({ path: dep.path, kind: "dir", from: dep.from });
  }
  await cargoWorkspace(dir, bound, outside);
  await typescriptGraph(dir, entry, outside);
  return outside;
}

/**
 * The Cargo workspace a crate in `dir` belongs to (Cargo looks for one above every crate):
 * its root manifest is carried with `members` naming this crate alone (so that the other
 * members need not come), with its lock file and the path dependencies it declares.
 */
async function cargoWorkspace(dir: string, bound: string, outside: Outside): Promise<void> {
  const workspace = await workspaceRoot(dir);
  if (!workspace || !inside(workspace.dir, bound)) return;
  const { dir: up, toml } = workspace;
  const from = `${up}/Cargo.toml`;
  // Only the workspace's own tables: a root that is also a package would need its sources.
  const kept: string[] = [];
  let keep = false;
  for (const line of toml.split("\n")) {
    const header = /^\s*\[+\s*([^\]\s]+)/.exec(line)?.[1];
    if (header !== undefined) {
      keep = /^(workspace|profile|patch|replace)\b/.test(header);
      if (header === "workspace") {
        const resolver = /^\s*resolver\s*=.*$/m.exec(toml)?.[0];
        kept.push(line, `members = [${JSON.stringify(relative(up, dir))}]`);
        if (resolver) kept.push(resolver.trim());
        keep = false;
        continue;
      }
    }
    if (keep) kept.push(line);
  }
  outside.generated.push({
    path: from,
    content: new TextEncoder().encode(kept.join("\n")),
    from,
  });
  // Its `path` dependencies come along as the crate's own (`buildDependencies`).
  if (await Deno.stat(`${up}/Cargo.lock`).catch(() => null)) {
    outside.entries.push({ path: `${up}/Cargo.lock`, kind: "file", from });
  }
}

/** The Cargo workspace root above the crate in `dir` (Cargo looks for one), with its text. */
async function workspaceRoot(dir: string): Promise<{ dir: string; toml: string } | null> {
  if (!await Deno.stat(`${dir}/Cargo.toml`).catch(() => null)) return null;
  for (let up = dirname(dir); up !== dirname(up); up = dirname(up)) {
    const toml = await readText(`${up}/Cargo.toml`);
    if (/^\s*\[workspace\]/m.test(toml)) return { dir: up, toml };
  }
  return null;
}

/** A specifier resolved by an import map or a workspace, not by its own form. */
const BARE = /^(?![./]|[a-z][a-z0-9+.-]*:)/i;
/** A file a module reads next to itself: `new URL("…", import.meta.url)`. */
const ASSET_URL = /new URL\(\s*["'`]([^"'`$]+)["'`]\s*,\s*import\.meta\.url\s*\)/g;

interface DenoInfo {
  modules: {
    specifier: string;
    dependencies?: {
      specifier: string;
      code?: { specifier?: string };
      type?: { specifier?: string };
    }[];
  }[];
}

/**
 * A TypeScript package's modules outside its directory and the assets its modules name,
 * from `deno info` of each module its start command names. A package without a `deno.json`
 * of its own whose imports resolve through a configuration above it (an import map, a
 * workspace) gets one at the top of its carried tree saying exactly how each such import
 * resolved (relative paths inside the tree), with the compiler options and `nodeModulesDir`
 * of that configuration, and no lock file.
 */
async function typescriptGraph(
  dir: string,
  entry: readonly string[],
  outside: Outside,
): Promise<void> {
  const roots: string[] = [];
  for (const word of entry.slice(1)) {
    if (!/\.(ts|tsx|mts|js|mjs|jsx)$/.test(word)) continue;
    if ((await Deno.stat(join(dir, word)).catch(() => null))?.isFile) roots.push(word);
  }
  if (roots.length === 0) return;
  const imports = new Map<string, string>();
  const carried = new Set<string>();
  for (const root of roots) {
    const info = await denoInfo(dir, root);
    for (const module of info.modules) {
      if (!module.specifier.startsWith("file:")) continue;
      const path = fileURLToPath(module.specifier);
      // Heddle's own SDK copy, named by absolute path as `heddle plugin new` writes it.
      if (path.includes(ASSETS)) continue;
      if (!inside(path, dir) && !carried.has(path)) {
        carried.add(path);
        outside.entries.push({ path, kind: "file", from: join(dir, root) });
      }
      for (const dep of module.dependencies ?? []) {
        const target = dep.code?.specifier ?? dep.type?.specifier;
        if (!BARE.test(dep.specifier) || !target || imports.has(dep.specifier)) continue;
        imports.set(dep.specifier, target);
      }
      const text = await readText(path);
      for (const m of text.matchAll(ASSET_URL)) {
        const asset = resolve(dirname(path), m[1]);
        if (inside(asset, dir) || carried.has(asset)) continue;
        if (!(await Deno.stat(asset).catch(() => null))?.isFile) continue;
        carried.add(asset);
        outside.entries.push({ path: asset, kind: "file", from: path });
      }
    }
  }
  // A package with its own configuration resolves through it, which comes along as it is
  // (relative places are kept). Without one, the configuration above it (a workspace root)
  // stays behind, and what it resolved is written down for the copy.
  if (await config(dir)) return;
  const above = await configAbove(dir);
  if (imports.size === 0 && !above) return;
  // How the deployer's configuration set up the compiler and npm packages goes along.
  const kept = Object.fromEntries(
    ["compilerOptions", "nodeModulesDir"].flatMap((key) => {
      const value = above?.json[key];
      return value === undefined ? [] : [[key, value]];
    }),
  );
  // At the tree's top, so that it applies to every carried module and the npm packages it
  // installs (`nodeModulesDir`) are found from all of them, `require` included.
  outside.denoConfig = (top) => {
    const map = [...imports].sort().map(([specifier, target]) => {
      const file = target.startsWith("file:") ? fileURLToPath(target) : null;
      // Heddle's own SDK copy stays where `heddle plugin new` named it.
      const to = file === null
        ? target
        : file.includes(ASSETS)
        ? file
        : dotted(relative(top, file));
      return [specifier, to];
    });
    const json = {
      ...kept,
      imports: Object.fromEntries(map),
      // A lock file written on the worker would change the carried copy under its hash.
      lock: false,
    };
    return new TextEncoder().encode(JSON.stringify(json, null, 2) + "\n");
  };
}

function dotted(path: string): string {
  return path.startsWith(".") ? path : `./${path}`;
}

async function denoInfo(dir: string, root: string): Promise<DenoInfo> {
  let output;
  try {
    output = await new Deno.Command("deno", {
      args: ["info", "--json", root],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new Error(`cannot read the modules of ${root}: \`deno\` could not run (${e})`);
  }
  if (!output.success) {
    const why = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-3).join(" ");
    throw new Error(`cannot read the modules of ${root}: ${why}`);
  }
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

type DenoConfig = { path: string; json: Record<string, unknown> };

/** The Deno configuration file in `dir`, parsed (comments of `.jsonc` left out). */
async function config(dir: string): Promise<DenoConfig | null> {
  for (const name of ["deno.json", "deno.jsonc"]) {
    const text = await Deno.readTextFile(`${dir}/${name}`).catch(() => null);
    if (text === null) continue;
    const json = JSON.parse(name.endsWith("c") ? stripComments(text) : text);
    return { path: `${dir}/${name}`, json };
  }
  return null;
}

async function configAbove(dir: string): Promise<DenoConfig | null> {
  for (let up = dirname(dir); up !== dirname(up); up = dirname(up)) {
    const found = await config(up);
    if (found) return found;
  }
  return null;
}

function stripComments(text: string): string {
  return text.replace(/("(?:[^"\\]|\\.)*")|\/\/[^\n]*|\/\*[\s\S]*?\*\//g, (_, s) => s ?? "");
}
