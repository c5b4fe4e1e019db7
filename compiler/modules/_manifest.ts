/**
 * Plugin modules: finding a `heddle.manifest.json` on the module path and reading it into a
 * `ModuleContract`. The compiler trusts the manifest and nothing else; it must never start
 * or read plugin code. A malformed manifest is reported as a message, never thrown.
 */
import { type ArrowField, parseType } from "./_arrow.ts";
import type {
  ConfigField,
  ConfigType,
  ModuleContract,
  ModuleRuntime,
  OpContract,
  OpRole,
  ResourceKind,
  RowContract,
  SlotContract,
} from "./_contract.ts";

export const MANIFEST_FILE = "heddle.manifest.json";

/** Reads a text file or returns null when it does not exist; injectable for the LSP. */
export type ReadText = (path: string) => string | null;

export const readTextSync: ReadText = (path) => {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
};

/** The outcome of looking a plugin module up. */
export type ModuleLookup =
  | { ok: true; module: ModuleContract }
  | { ok: false; message: string; searched: string[] };

/**
 * Finds import path `a/b/c` under each root in order: `<root>/a/b/c/`, `<root>/a/b/`,
 * `<root>/a/` (longest prefix first), taking the first manifest whose `modules` has the
 * full import path.
 */
export function findPluginModule(path: string, roots: string[], read: ReadText): ModuleLookup {
  const segments = path.split("/");
  const searched: string[] = [];
  for (const root of roots) {
    for (let n = segments.length; n >= 1; n--) {
      const dir = `${root.replace(/\/$/, "")}/${segments.slice(0, n).join("/")}`;
      const file = `${dir}/${MANIFEST_FILE}`;
      searched.push(file);
      const text = read(file);
      if (text === null) continue;
      const parsed = parseManifest(text, dir);
      if (typeof parsed === "string") {
        return { ok: false, message: `${file}: ${parsed}`, searched };
      }
      const module = parsed.get(path);
      if (module) return { ok: true, module };
    }
  }
  return { ok: false, message: `no \`${MANIFEST_FILE}\` declares module \`${path}\``, searched };
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses a manifest into its modules by import path, or returns what is wrong with it. */
export function parseManifest(text: string, dir: string): Map<string, ModuleContract> | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return `not valid JSON: ${(e as Error).message}`;
  }
  if (!isObject(json)) return "the manifest must be a JSON object";
  if (json.heddle_manifest !== 1) return "`heddle_manifest` must be 1";
  const runtime = json.runtime;
  if (!["typescript", "python", "go", "rust"].includes(runtime as string)) {
    return "`runtime` must be one of typescript, python, go, rust";
  }
  const entry = json.entry;
  if (!Array.isArray(entry) || !entry.every((e) => typeof e === "string") || !entry.length) {
    return "`entry` must be a non-empty array of strings (the command that starts the plugin)";
  }
  const build = json.build;
  if (
    build !== undefined && (!Array.isArray(build) || !build.length ||
      !build.every((e) => typeof e === "string"))
  ) {
    return "`build` must be a non-empty array of strings (the command that builds the plugin)";
  }
  if (build === undefined && entry.some((e) => e.includes("{binary}"))) {
    return "`entry` names `{binary}`, so the manifest needs a `build` command that writes it";
  }
  if (!isObject(json.modules)) return "`modules` must be an object keyed by import path";
  const out = new Map<string, ModuleContract>();
  for (const [path, m] of Object.entries(json.modules)) {
    if (!isObject(m)) return `module \`${path}\` must be an object`;
    const resources = new Map<string, ResourceKind>();
    for (const [name, r] of Object.entries(isObject(m.resources) ? m.resources : {})) {
      if (!isObject(r)) return `resource \`${name}\` must be an object`;
      const config = configFields(r.config, `resource \`${name}\``);
      if (typeof config === "string") return config;
      resources.set(name, { name, doc: String(r.doc ?? ""), config });
    }
    const ops = new Map<string, OpContract>();
    for (const [name, s] of Object.entries(isObject(m.steps) ? m.steps : {})) {
      const parsed = opContract(name, s);
      if (typeof parsed === "string") return `step \`${name}\`: ${parsed}`;
      ops.set(name, parsed);
    }
    out.set(path, {
      path,
      runtime: runtime as ModuleRuntime,
      entry: entry as string[],
      ...(build ? { build: build as string[] } : {}),
      dir,
      resources,
      ops,
    });
  }
  return out;
}

function opContract(name: string, s: unknown): OpContract | string {
  if (!isObject(s)) return "must be an object";
  const role = (s.role ?? "transform") as OpRole;
  if (!["source", "transform", "sink", "lookup"].includes(role)) {
    return "`role` must be source, transform, sink or lookup";
  }
  const config = configFields(s.config, "config");
  if (typeof config === "string") return config;
  const slots: SlotContract[] = [];
  for (const sl of Array.isArray(s.slots) ? s.slots : []) {
    if (!isObject(sl) || typeof sl.name !== "string" || typeof sl.resource !== "string") {
      return "each slot needs `name` and `resource` (`module/path.kind`)";
    }
    slots.push({
      name: sl.name,
      resource: sl.resource,
      required: sl.required !== false,
      doc: String(sl.doc ?? ""),
    });
  }
  const input = role === "source" ? null : rowContract(s.input, "input");
  const output = role === "sink" ? null : rowContract(s.output, "output");
  if (typeof input === "string") return input;
  if (typeof output === "string") return output;
  return {
    name,
    doc: String(s.doc ?? ""),
    role,
    bounded: s.bounded === true,
    config,
    slots,
    input,
    output,
  };
}

function configFields(v: unknown, where: string): ConfigField[] | string {
  const out: ConfigField[] = [];
  for (const c of Array.isArray(v) ? v : []) {
    if (!isObject(c) || typeof c.key !== "string") return `${where}: each field needs a \`key\``;
    const t = c.type;
    const ok = ["string", "int", "number", "bool", "duration", "list", "object"].includes(
      t as string,
    ) || (isObject(t) && Array.isArray(t.enum));
    if (!ok) return `${where}: config \`${c.key}\` has an unknown type`;
    out.push({
      key: c.key,
      type: t as ConfigType,
      required: c.required === true,
      doc: String(c.doc ?? ""),
    });
  }
  return out;
}

function rowContract(v: unknown, where: string): RowContract | string {
  if (v === undefined || v === "open") return { kind: "open" };
  if (!isObject(v)) return `\`${where}\` must be an object or "open"`;
  const fields: ArrowField[] = [];
  for (const f of Array.isArray(v.fields) ? v.fields : []) {
    if (!isObject(f) || typeof f.name !== "string" || typeof f.type !== "string") {
      return `\`${where}\`: each field needs \`name\` and \`type\``;
    }
    const t = parseType(f.type);
    if (typeof t === "string") return `\`${where}\` field \`${f.name}\`: ${t}`;
    fields.push({ name: f.name, type: t, nullable: f.nullable === true });
  }
  if (v.include_input === true) return { kind: "input-plus", fields };
  return { kind: "fields", fields, open: v.open === true };
}
