/**
 * Compiled plugins (Go, Rust) provisioned just in time: the first use of a package whose
 * manifest has a `build` command builds it into a cache keyed by the content of its sources,
 * its lock files and the SDKs this worker ships; later starts run the cached binary without
 * building. A build that fails is reported with the compiler's own output and is never
 * retried for the same sources, since the same input fails the same way. Nothing here may
 * write outside the cache directory, and a half-built binary is never visible under its key.
 */
import { createHash, type Hash } from "node:crypto";
import { buildDependencies } from "./_package_deps.ts";

/** Directories that hold build products or tooling state, never plugin sources. */
const SKIPPED_DIRS = new Set([".git", "target", "node_modules", "bin", "__pycache__"]);
/** Build output kept in a failure message: enough to see the compiler's first errors. */
const OUTPUT_TAIL = 8192;
const BINARY = "{binary}";

export interface BuildSpec {
  /** The package directory, where the build runs. */
  dir: string;
  /** The package name, for messages. */
  name: string;
  /** The build command; `{binary}` stands for the path the binary must be written to. */
  build: string[];
  /** The start command; `{binary}` is replaced by the cached binary's path. */
  entry: string[];
}

export type BuildResult =
  | { ok: true; entry: string[]; built: boolean; binary: string }
  | { ok: false; message: string };

/** `$XDG_CACHE_HOME/heddle/NAME` (else `~/.cache/heddle/NAME`): a worker's caches. */
export function cacheDir(name: string): string {
  const env = (name: string) => Deno.env.get(name);
  const base = env("XDG_CACHE_HOME") ?? (env("HOME") ? `${env("HOME")}/.cache` : "/tmp");
  return `${base}/heddle/${name}`;
}

export function buildCacheRoot(): string {
  return cacheDir("plugin-builds");
}

/** A package's files, relative to `root`, in a stable order, build products left out. */
export async function* sourceFiles(root: string, dir = ""): AsyncGenerator<string> {
  const entries = [];
  for await (const entry of Deno.readDir(dir ? `${root}/${dir}` : root)) entries.push(entry);
  entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  for (const entry of entries) {
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory && !SKIPPED_DIRS.has(entry.name) && !entry.name.startsWith(".")) {
      yield* sourceFiles(root, path);
    } else if (entry.isFile) {
      yield path;
    }
  }
}

/** Adds one file to a content hash: its path, its length, its bytes. */
export function hashFile(hash: Hash, path: string, bytes: Uint8Array): void {
  hash.update(`${path}\0${bytes.length}\0`).update(bytes);
}

/** SHA-256 over the build command and every source file's path and content. */
export async function sourceKey(spec: BuildSpec): Promise<string> {
  const hash = createHash("sha256").update(JSON.stringify(spec.build) + "\0");
  // Directories outside the package that its build reads as sources (a Go `replace`, a Cargo
  // `path` dependency): a change in them must rebuild the plugin like a change in it.
  const outside = (await buildDependencies(spec.dir)).map((d) => d.path);
  for (const root of [spec.dir, ...outside]) {
    for await (const path of sourceFiles(root)) {
      hashFile(hash, path, await Deno.readFile(`${root}/${path}`));
    }
  }
  return hash.digest("hex").slice(0, 32);
}

const inFlight = new Map<string, Promise<BuildResult>>();

/**
 * The entry command of a compiled plugin, building it first if its sources have no cached
 * binary yet. Concurrent calls for the same sources share one build.
 */
export async function provision(
  spec: BuildSpec,
  cacheRoot = buildCacheRoot(),
): Promise<BuildResult> {
  let key: string;
  try {
    key = await sourceKey(spec);
  } catch (e) {
    return {
      ok: false,
      message: `cannot read the sources of \`${spec.name}\`: ${(e as Error).message}`,
    };
  }
  const dir = `${cacheRoot}/${key}`;
  const pending = inFlight.get(dir) ?? build(spec, dir, cacheRoot);
  inFlight.set(dir, pending);
  try {
    return await pending;
  } finally {
    inFlight.delete(dir);
  }
}

async function build(spec: BuildSpec, dir: string, cacheRoot: string): Promise<BuildResult> {
  const binary = `${dir}/plugin`;
  const entry = spec.entry.map((word) => word.replaceAll(BINARY, binary));
  if (await isFile(binary)) return { ok: true, entry, built: false, binary };
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  // Built under a temporary name and renamed, so a concurrent worker never starts half a file.
  const staging = `${dir}/plugin.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const [program, ...args] = spec.build.map((word) => word.replaceAll(BINARY, staging));
  let output;
  try {
    output = await new Deno.Command(program, {
      args,
      cwd: spec.dir,
      // Rust plugins share one target directory per worker, so a second plugin reuses the
      // compiled dependencies (Arrow, tonic) of the first instead of building them again.
      env: { CARGO_TARGET_DIR: Deno.env.get("CARGO_TARGET_DIR") ?? `${cacheRoot}/cargo-target` },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    return {
      ok: false,
      message: `cannot build plugin \`${spec.name}\`: \`${program}\` could not run (${
        (e as Error).message
      }); is its toolchain installed?`,
    };
  }
  if (!output.success || !(await isFile(staging))) {
    await Deno.remove(staging).catch(() => {});
    const text = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
    const tail = text.length > OUTPUT_TAIL ? `…${text.slice(-OUTPUT_TAIL)}` : text;
    const why = output.success ? `did not write ${BINARY}` : `exited with code ${output.code}`;
    return {
      ok: false,
      message: `cannot build plugin \`${spec.name}\`: \`${spec.build.join(" ")}\` ${why}` +
        (tail.trim() ? `:\n${tail.trimEnd()}` : ""),
    };
  }
  await Deno.rename(staging, binary);
  return { ok: true, entry, built: true, binary };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}
