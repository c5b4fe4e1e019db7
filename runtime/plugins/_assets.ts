/**
 * Files the worker hands to plugin processes by path: the protocol file and the SDKs that
 * plugins build against (Python on `PYTHONPATH`; Go and Rust sources that scaffolded plugins
 * name in their `go.mod`/`Cargo.toml`).
 * In a `deno compile`d `heddle` binary they live in the binary's embedded file system,
 * which other processes cannot see, so they are copied once into a cache directory keyed
 * by their content; from a source checkout the copy is the same files, which keeps one
 * code path. Nothing here may write anywhere but that cache.
 */
import { cacheDir } from "./_build.ts";

const root = new URL("../../", import.meta.url);
const PROTO_FILE = "proto/plugin.proto";
/**
 * Every folder the TypeScript SDK's module graph reaches (tests/plugins/assets.test.ts
 * compares this with `deno info`, so a new import cannot leave a copied SDK broken).
 */
export const TYPESCRIPT_SDK_DIRS = [
  "sdk/typescript",
  "runtime/registry",
  "runtime/fs",
  "runtime/plugins/protocol",
  // gRPC and proto-loader, loaded on first use (runtime/protocol/_lazy_grpc.ts).
  "runtime/protocol",
  "compiler/modules",
  "compiler/diagnostics",
];
/** The SDK trees copied, and which of their files are sources (tests and builds are not). */
const SDK_TREES: { dir: string; keep: RegExp }[] = [
  { dir: "sdk/python/heddle_sdk", keep: /\.py$/ },
  { dir: "sdk/go", keep: /(?<!_test)\.go$|^go\.(mod|sum)$/ },
  { dir: "sdk/rust", keep: /\.rs$|^Cargo\.toml$/ },
  // The TypeScript SDK (package `@heddle/sdk`) with the modules it imports, so that a plugin
  // outside this repository maps `@heddle/sdk` to this copy (docs/plugins.md).
  ...TYPESCRIPT_SDK_DIRS.map((dir) => ({ dir, keep: /(?<!_test)\.ts$|^deno\.json$/ })),
];
/** Folders inside SDK trees that hold build output or tests, never sources. */
const SKIPPED = new Set(["target", "tests", "__pycache__"]);

export interface PluginAssets {
  /** A directory to put on a Python plugin's `PYTHONPATH` (holds `heddle_sdk/`). */
  pythonPath: string;
  /** The protocol file, for SDKs that generate their stubs at run time. */
  protoPath: string;
  /** The Go SDK module (`heddle.dev/sdk`), for a scaffolded plugin's `replace`. */
  goSdk: string;
  /** The Rust SDK crate (`heddle-sdk`), for a scaffolded plugin's `path` dependency. */
  rustSdk: string;
  /** The TypeScript SDK's entry, what a plugin's `@heddle/sdk` import maps to. */
  typescriptSdk: string;
}

function cacheRoot(): string {
  return cacheDir("plugin-assets");
}

/** FNV-1a over names and contents: a cache key, not a security measure. */
function digest(files: { name: string; bytes: Uint8Array }[]): string {
  let hash = 0xcbf29ce484222325n;
  const mix = (byte: number) => {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  };
  for (const f of files) {
    for (const byte of new TextEncoder().encode(f.name + "\0")) mix(byte);
    for (const byte of f.bytes) mix(byte);
  }
  return hash.toString(16).padStart(16, "0");
}

function readTree(dir: string, keep: RegExp, out: { name: string; bytes: Uint8Array }[]): void {
  for (const entry of Deno.readDirSync(new URL(dir, root))) {
    const name = `${dir}/${entry.name}`;
    if (entry.isDirectory && !SKIPPED.has(entry.name)) readTree(name, keep, out);
    else if (entry.isFile && keep.test(entry.name)) {
      out.push({ name, bytes: Deno.readFileSync(new URL(name, root)) });
    }
  }
}

function readAssets(): { name: string; bytes: Uint8Array }[] {
  const files = [{ name: PROTO_FILE, bytes: Deno.readFileSync(new URL(PROTO_FILE, root)) }];
  for (const { dir, keep } of SDK_TREES) readTree(dir, keep, files);
  return files.sort((a, b) => a.name.localeCompare(b.name));
}

const cached = new Map<string, PluginAssets>();

/** The on-disk paths of the plugin assets, copying them into the cache on first use. */
export function pluginAssets(cacheDir: string = cacheRoot()): PluginAssets {
  const known = cached.get(cacheDir);
  if (known) return known;
  const files = readAssets();
  const dir = `${cacheDir}/${digest(files)}`;
  if (!exists(`${dir}/.complete`)) {
    // Written under a temporary name and renamed, so a concurrent worker never sees half.
    const staging = `${dir}.${Deno.pid}.tmp`;
    for (const f of files) {
      const path = `${staging}/${f.name}`;
      Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      Deno.writeFileSync(path, f.bytes);
    }
    Deno.writeTextFileSync(`${staging}/.complete`, "");
    try {
      Deno.renameSync(staging, dir);
    } catch {
      // Another worker won the race; its copy is identical.
      Deno.removeSync(staging, { recursive: true });
    }
  }
  const assets = {
    pythonPath: `${dir}/sdk/python`,
    protoPath: `${dir}/${PROTO_FILE}`,
    goSdk: `${dir}/sdk/go`,
    rustSdk: `${dir}/sdk/rust`,
    typescriptSdk: `${dir}/sdk/typescript/mod.ts`,
  };
  cached.set(cacheDir, assets);
  return assets;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
