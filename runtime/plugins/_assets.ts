/**
 * Files the worker hands to plugin processes by path: the protocol file and the Python SDK.
 * In a `deno compile`d `heddle` binary they live in the binary's embedded file system,
 * which other processes cannot see, so they are copied once into a cache directory keyed
 * by their content; from a source checkout the copy is the same files, which keeps one
 * code path. Nothing here may write anywhere but that cache.
 */
const root = new URL("../../", import.meta.url);
const PYTHON_SDK_FILES = "sdk/python/heddle_sdk";
const PROTO_FILE = "proto/plugin.proto";

export interface PluginAssets {
  /** A directory to put on a Python plugin's `PYTHONPATH` (holds `heddle_sdk/`). */
  pythonPath: string;
  /** The protocol file, for SDKs that generate their stubs at run time. */
  protoPath: string;
}

function cacheRoot(): string {
  const env = (name: string) => Deno.env.get(name);
  const base = env("XDG_CACHE_HOME") ?? (env("HOME") ? `${env("HOME")}/.cache` : "/tmp");
  return `${base}/heddle/plugin-assets`;
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

function readAssets(): { name: string; bytes: Uint8Array }[] {
  const files = [{ name: PROTO_FILE, bytes: Deno.readFileSync(new URL(PROTO_FILE, root)) }];
  for (const entry of Deno.readDirSync(new URL(PYTHON_SDK_FILES, root))) {
    if (entry.isFile && entry.name.endsWith(".py")) {
      const name = `${PYTHON_SDK_FILES}/${entry.name}`;
      files.push({ name, bytes: Deno.readFileSync(new URL(name, root)) });
    }
  }
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
  const assets = { pythonPath: `${dir}/sdk/python`, protoPath: `${dir}/${PROTO_FILE}` };
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
