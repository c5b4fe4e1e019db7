/**
 * The compiler's public entry: `check` composes the phases (parse, resolve, infer, lower,
 * optimise) and the individual phase entries are re-exported for the CLI, the runtime and
 * the LSP. Composition stops after a phase with errors where later phases would only add
 * noise. Nothing here imports the runtime; user errors come back as diagnostics.
 */
import type { Diagnostic, Result } from "./diagnostics/_types.ts";
import { parse, type Program, SYNTAX_CODES } from "./syntax/mod.ts";
import { resolve, type Resolved } from "./resolve/mod.ts";
import {
  infer,
  parseSnapshot,
  pastDeadline,
  type SchemaSnapshot,
  SQL_CODES,
  type Typed,
} from "./types/mod.ts";
import { type Ir, lower } from "./ir/mod.ts";
import { optimise } from "./optimise/mod.ts";

export type { Diagnostic, Label, Result, Severity, Span } from "./diagnostics/_types.ts";
export { format, parse } from "./syntax/mod.ts";
export { resolve, type Resolved, type ResolveOptions } from "./resolve/mod.ts";
export {
  type Catalog,
  type CatalogAnswer,
  ERROR_FIELDS,
  infer,
  introspect,
  parseSnapshot,
  queryHash,
  type RowSchema,
  type SchemaSnapshot,
  type Typed,
} from "./types/mod.ts";
export { type Ir, irToDot, irToJson, irToMermaid, irToText, lower } from "./ir/mod.ts";
export { batchQuery, optimise } from "./optimise/mod.ts";
export { BUILTIN_MODULES, loadModule, type ModuleContract, parseManifest } from "./modules/mod.ts";
export { RESOLVE_CODES } from "./resolve/mod.ts";
export {
  addLowered,
  lowerDeclared,
  type Lowered,
  prqlc,
  PrqlCrash,
  SQL_CODES,
  takeLowered,
  TYPE_CODES,
} from "./types/mod.ts";
export { IR_CODES } from "./ir/mod.ts";

export interface CheckOptions {
  /** Extra module roots searched after the program's directory and `HEDDLE_PATH`. */
  modulePath?: string[];
  /** `HEDDLE_PATH` as the caller read it; the compiler reads no environment itself. */
  heddlePath?: string;
  /**
   * The schema snapshot: parsed, as text, or `"auto"` (default) to read
   * `<program>.schema.json` next to `file`; null for none.
   */
  snapshot?: SchemaSnapshot | string | null | "auto";
  /** Reads module manifests and the snapshot; defaults to the file system. */
  read?: (path: string) => string | null;
  /** Per-request limits for long-lived callers (a daemon, a server); none by default. */
  limits?: CheckLimits;
  /**
   * False: stop after lowering, `optimised` stays null. For callers that never read the
   * optimised IR (the language service): the optimiser reports nothing, and copying a large
   * program's IR costs a tenth of its check.
   */
  optimise?: boolean;
}

export interface CheckLimits {
  /** A longer source (in UTF-8 bytes) is refused unparsed with HE0016. */
  maxSourceBytes?: number;
  /**
   * Checking stops with HE0209 once this many milliseconds have passed, at the next PRQL
   * block or phase boundary (one prql-js call cannot be interrupted; it is bounded by the size).
   */
  timeoutMs?: number;
}

export interface Checked {
  ast: Program;
  resolved: Resolved | null;
  typed: Typed | null;
  ir: Ir | null;
  optimised: Ir | null;
}

const readFs = (path: string): string | null => {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
};

/** The snapshot file that belongs to a program: `x.he` -> `x.schema.json`. */
export function snapshotPath(file: string): string {
  return file.replace(/\.he$/, "") + ".schema.json";
}

export function check(
  source: string,
  file = "<input>",
  options: CheckOptions = {},
): Result<Checked> {
  const diagnostics: Diagnostic[] = [];
  const out: Checked = { ast: null!, resolved: null, typed: null, ir: null, optimised: null };
  const hasErrors = () => diagnostics.some((d) => d.severity === "error");
  // A loop, not `push(...list)`: 150,000 unused declarations are more warnings than a call
  // takes arguments.
  const add = (list: Diagnostic[]) => {
    for (const d of list) diagnostics.push(d);
  };
  const limits = options.limits ?? {};
  const deadline = limits.timeoutMs === undefined
    ? undefined
    : { at: Date.now() + limits.timeoutMs, ms: limits.timeoutMs };
  /** Whether to stop after a phase: it reported errors, or the deadline has passed. */
  const stop = () => {
    const late = hasErrors() ? null : pastDeadline(deadline);
    if (late) diagnostics.push(late);
    return hasErrors();
  };
  const size = bytesOver(source, limits.maxSourceBytes);
  if (size !== null) {
    diagnostics.push({
      code: SYNTAX_CODES.sourceTooLarge.code,
      severity: "error",
      message: `the program is ${size} bytes, more than the limit of ${limits.maxSourceBytes}`,
      span: { start: 0, end: 0 },
      labels: [],
      hints: ["split it into several files"],
    });
    out.ast = { kind: "Program", items: [], comments: [], span: { start: 0, end: 0 } };
    return withFile({ value: out, diagnostics }, file);
  }
  const parsed = parse(source, file);
  out.ast = parsed.value;
  add(parsed.diagnostics);
  if (stop()) return withFile({ value: out, diagnostics }, file);

  const read = options.read ?? readFs;
  const slash = file.lastIndexOf("/");
  const programDir = slash >= 0 ? file.slice(0, slash) || "/" : ".";
  const resolved = resolve(parsed.value, {
    file,
    programDir,
    modulePath: options.modulePath,
    heddlePath: options.heddlePath,
    read,
  });
  out.resolved = resolved.value;
  add(resolved.diagnostics);
  if (stop()) return withFile({ value: out, diagnostics }, file);

  let snapshot: SchemaSnapshot | null = null;
  const given = options.snapshot === undefined ? "auto" : options.snapshot;
  const text = given === "auto"
    ? read(snapshotPath(file))
    : typeof given === "string"
    ? given
    : null;
  if (text !== null) {
    const parsedSnapshot = parseSnapshot(text);
    if (typeof parsedSnapshot === "string") {
      diagnostics.push({
        code: SQL_CODES.snapshotInvalid.code,
        severity: "error",
        message: `schema snapshot ${snapshotPath(file)}: ${parsedSnapshot}`,
        span: { start: 0, end: 0 },
        labels: [],
        hints: ["regenerate it with `heddle check --introspect`"],
      });
    } else snapshot = parsedSnapshot;
  } else if (given !== null && typeof given === "object") snapshot = given;

  const typed = infer(resolved.value, { snapshot, deadline });
  out.typed = typed.value;
  add(typed.diagnostics);
  if (stop()) return withFile({ value: out, diagnostics }, file);

  const ir = lower(typed.value);
  out.ir = ir.value;
  add(ir.diagnostics);
  if (options.optimise === false) return withFile({ value: out, diagnostics }, file);
  const optimised = optimise(ir.value, { typed: typed.value });
  out.optimised = optimised.value;
  add(optimised.diagnostics);
  return withFile({ value: out, diagnostics }, file);
}

/** The source's size in UTF-8 bytes when it is over `max`, else null. */
function bytesOver(text: string, max: number | undefined): number | null {
  // A UTF-16 unit is at most 3 UTF-8 bytes, so most sources are under without encoding them.
  if (max === undefined || text.length * 3 <= max) return null;
  const size = new TextEncoder().encode(text).length;
  return size > max ? size : null;
}

function withFile<T>(r: Result<T>, file: string): Result<T> {
  for (const d of r.diagnostics) d.file ??= file;
  return r;
}
