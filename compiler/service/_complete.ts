/**
 * Completion. While someone types, the text around the cursor is usually not a valid
 * program, so the context (after `alias.`, inside `<...>`, inside a config object, in a
 * pipeline, in a PRQL block) is read from the raw text before the cursor; the analysis only
 * supplies what names mean. It must never throw, and offers nothing rather than guessing
 * where it cannot tell the context.
 */
import type * as Ast from "../syntax/mod.ts";
import type { ConfigField, ModuleContract } from "../modules/mod.ts";
import { RETRY_CONFIG } from "../resolve/mod.ts";
import type { Analysis } from "./_analysis.ts";
import {
  configTypeText,
  fieldTypeText,
  opMarkdown,
  resourceKindMarkdown,
  rowSchemaText,
  symbolMarkdown,
} from "./_describe.ts";
import {
  PRQL_FUNCTIONS,
  PRQL_TRANSFORMS,
  prqlAliases,
  prqlInput,
  prqlStageAt,
  prqlStages,
} from "./_prql.ts";

export type CompletionKind =
  | "keyword"
  | "module"
  | "operation"
  | "resourceKind"
  | "resource"
  | "step"
  | "stream"
  | "handler"
  | "slot"
  | "configKey"
  | "column"
  | "function";

export interface CompletionItem {
  label: string;
  kind: CompletionKind;
  /** One line shown next to the label (a type, a role). */
  detail?: string;
  /** Markdown. */
  documentation?: string;
  /** What to insert, when it differs from the label. */
  insertText?: string;
}

const DECLARATION_KEYWORDS = ["import", "resource", "step", "handler", "workflow", "type"];
const WORD_BEFORE = /[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The completions at `offset`. `earlier` is an analysis of an earlier version of the text
 * (as it was opened or last saved): while a PRQL block is rewritten it may not compile, and
 * over an open source its columns are inferred from their uses, so a column the block no
 * longer mentions is only known from that version. Its columns are offered too.
 */
export function completion(a: Analysis, offset: number, earlier?: Analysis): CompletionItem[] {
  const at = Math.min(Math.max(offset, 0), a.source.length);
  const lineStart = a.lines.lineStart(a.lines.locate(at).line);
  const prefix = a.source.slice(lineStart, at);
  const lineEnd = a.source.indexOf("\n", at);
  const line = a.source.slice(lineStart, lineEnd < 0 ? a.source.length : lineEnd);

  // The tree may be an edit behind the text (see `withText`): look places up in its offsets.
  const treeAt = a.edit ? a.edit.toOlder(at) : at;
  const prql = prqlStageAt(a, treeAt);
  if (prql) return prqlCompletions(a, prql, prefix, at, earlier);
  if (insideString(prefix)) return [];

  const member = /([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z0-9_]*)$/.exec(prefix);
  if (member) {
    const m = a.resolved.modules.get(member[1]);
    return m ? memberCompletions(member[1], m, /^\s*resource\b/.test(prefix)) : [];
  }

  const slot = /<([^<>]*)$/.exec(prefix);
  if (slot) return slotCompletions(a, line, slot[1]);

  const config = configAt(a, at);
  if (config) return config;

  if (/\?\s*[A-Za-z0-9_]*$/.test(prefix)) {
    return [...a.resolved.handlers.keys()].map((name) => symbolItem(a, "handler", name));
  }

  const body = bodyAt(a, treeAt);
  if (body) return pipelineCompletions(a, body);
  if (/^[A-Za-z_]*$/.test(prefix)) {
    return DECLARATION_KEYWORDS.map((k) => ({ label: k, kind: "keyword" as const }));
  }
  return [];
}

function insideString(prefix: string): boolean {
  return (prefix.replace(/\\./g, "").match(/"/g)?.length ?? 0) % 2 === 1;
}

function symbolItem(a: Analysis, kind: CompletionKind, name: string, key = ""): CompletionItem {
  const s = a.symbols.get(key || `${kind}:${name}`);
  return { label: name, kind, detail: kind, documentation: s ? symbolMarkdown(a, s) : undefined };
}

function memberCompletions(alias: string, m: ModuleContract, resource: boolean): CompletionItem[] {
  if (resource) {
    return [...m.resources.values()].map((k) => ({
      label: k.name,
      kind: "resourceKind" as const,
      detail: `resource kind of ${m.path}`,
      documentation: resourceKindMarkdown(alias, k),
    }));
  }
  return [...m.ops.values()].map((op) => ({
    label: op.name,
    kind: "operation" as const,
    detail: op.role,
    documentation: opMarkdown(alias, op),
  }));
}

/** `<slot=resource>`: slot names before `=`, resources of the slot's kind after it. */
function slotCompletions(a: Analysis, line: string, inside: string): CompletionItem[] {
  const target = /([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)/.exec(
    line.replace(/<[^<>]*>?/g, " "),
  );
  const op = target ? a.resolved.modules.get(target[1])?.ops.get(target[2]) : undefined;
  const assigning = /(?:^|,)\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*[A-Za-z0-9_]*$/.exec(inside);
  if (assigning) {
    const wanted = op?.slots.find((s) => s.name === assigning[1])?.resource;
    return [...a.resolved.resources.values()]
      .filter((r) => !wanted || r.qualifiedKind === wanted)
      .map((r) => ({ ...symbolItem(a, "resource", r.decl.name.name), detail: r.qualifiedKind }));
  }
  if (!op) return [];
  const filled = new Set([...inside.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*=/g)].map((m) => m[1]));
  return op.slots.filter((s) => !filled.has(s.name)).map((s) => ({
    label: s.name,
    kind: "slot" as const,
    detail: s.resource,
    documentation: s.doc,
    insertText: `${s.name}=`,
  }));
}

/** The config object around a cursor: its contract's keys and where it opens. */
export interface ConfigContext {
  /** `file.read`, `retry`. */
  owner: string;
  schema: ConfigField[];
  /** The offset of its `{`. */
  open: number;
}

/** The config object (of `alias.member { }` or `retry { }`) enclosing `at`, or null. */
export function configContextAt(a: Analysis, at: number): ConfigContext | null {
  const open = unmatchedBrace(a.source, at);
  if (open < 0) return null;
  const before = a.source.slice(Math.max(0, open - 200), open);
  if (/\bretry\s*$/.test(before)) return { owner: "retry", schema: RETRY_CONFIG, open };
  const q = /([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s*(?:<[^<>]*>\s*)?$/.exec(before);
  const m = q ? a.resolved.modules.get(q[1]) : undefined;
  const schema = q && m ? m.ops.get(q[2])?.config ?? m.resources.get(q[2])?.config : undefined;
  return q && schema ? { owner: `${q[1]}.${q[2]}`, schema, open } : null;
}

/**
 * Inside `{ ... }` after `alias.member` or `retry`, at a key position: the contract's keys
 * not written yet. Null when the cursor is not in such an object.
 */
function configAt(a: Analysis, at: number): CompletionItem[] | null {
  const context = configContextAt(a, at);
  if (!context) return null;
  const { open, schema } = context;
  if (!/(?:^\{|[,\n])\s*[A-Za-z0-9_]*$/.test(a.source.slice(open, at))) return null;
  const close = a.source.indexOf("}", at);
  const body = a.source.slice(open + 1, close < 0 ? a.source.length : close);
  const typing = WORD_BEFORE.exec(a.source.slice(open, at))?.[0];
  const written = new Set(
    [...body.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*:/g)].map((x) => x[1]).filter((k) =>
      k !== typing
    ),
  );
  return schema.filter((f) => !written.has(f.key)).map((f) => ({
    label: f.key,
    kind: "configKey" as const,
    detail: `${configTypeText(f.type)}${f.required ? " (required)" : ""}`,
    documentation: f.doc,
    insertText: `${f.key}: `,
  }));
}

/** The offset of the `{` that encloses `at` within its declaration, or -1. */
function unmatchedBrace(source: string, at: number): number {
  let depth = 0;
  for (let i = at - 1; i >= 0; i--) {
    const c = source[i];
    if (c === "}") depth++;
    else if (c === "{") {
      if (depth === 0) return i;
      depth--;
    } else if (
      c === "\n" && /^(import|resource|step|handler|workflow|type)\b/.test(source.slice(i + 1))
    ) {
      // A declaration starts at the left margin: no object opened before it is still open.
      return -1;
    }
  }
  return -1;
}

function itemAt(a: Analysis, at: number): Ast.Item | undefined {
  return a.resolved.program.items.find((i) => i.span.start < at && at <= i.span.end);
}

function bodyAt(a: Analysis, at: number): Ast.WorkflowDecl | Ast.HandlerDecl | null {
  const item = itemAt(a, at);
  if (item?.kind !== "Workflow" && item?.kind !== "Handler") return null;
  const brace = a.source.indexOf("{", item.span.start);
  return brace >= 0 && brace < at ? item : null;
}

/** In a workflow or handler body: declared steps, the body's streams and module aliases. */
function pipelineCompletions(a: Analysis, owner: Ast.WorkflowDecl | Ast.HandlerDecl) {
  const items: CompletionItem[] = [...a.resolved.steps.keys()].map((n) => symbolItem(a, "step", n));
  for (const s of a.symbols.values()) {
    if (s.kind === "stream" && s.item === owner) items.push(symbolItem(a, "stream", s.name, s.key));
  }
  for (const [alias, m] of a.resolved.modules) {
    items.push({ label: alias, kind: "module", detail: m.path });
  }
  return items;
}

/** After `join`, the steps that can be joined; after `from`, `input`; else columns and more. */
function prqlCompletions(
  a: Analysis,
  stage: Ast.PrqlStage,
  prefix: string,
  at: number,
  earlier: Analysis | undefined,
): CompletionItem[] {
  if (/\bjoin\s+(?:side:[a-z]+\s+)?[A-Za-z0-9_]*$/.test(prefix)) {
    return [...a.resolved.steps.entries()]
      .filter(([, s]) => s.call?.op.role === "lookup")
      .map(([n]) => symbolItem(a, "step", n));
  }
  if (/\bfrom\s+[A-Za-z0-9_]*$/.test(prefix)) {
    return [{ label: "input", kind: "stream", detail: "the incoming rows" }];
  }
  const typing = WORD_BEFORE.exec(prefix)?.[0] ?? "";
  const items: CompletionItem[] = [];
  // At the start of a line: a transform.
  if (/^\s*[A-Za-z_]*$/.test(prefix)) {
    for (const t of PRQL_TRANSFORMS) items.push({ label: t, kind: "keyword", detail: "transform" });
  }
  const input = [...prqlInput(a, stage) ?? []];
  const row = a.typed?.stages.get(stage)?.input;
  const blocks = prqlStages(a);
  const before = earlier ? prqlStages(earlier) : [];
  if (earlier && before.length === blocks.length) {
    // The same block (by position among the blocks) in the earlier version.
    for (const f of prqlInput(earlier, before[blocks.indexOf(stage)]) ?? []) {
      if (!input.some((x) => x.name === f.name)) input.push(f);
    }
  }
  for (const f of input) {
    items.push({
      label: f.name,
      kind: "column",
      detail: fieldTypeText(f),
      documentation: row ? `A column of \`input\`: \`${rowSchemaText(row)}\`` : undefined,
    });
  }
  const start = at - typing.length;
  const lineStart = a.source.lastIndexOf("\n", start - 1) + 1;
  for (const alias of prqlAliases(stage)) {
    // Only aliases defined before this line: the one being written here is not defined yet.
    if (alias.end > lineStart || items.some((i) => i.label === alias.name)) continue;
    items.push({ label: alias.name, kind: "column", detail: `= ${alias.expression}` });
  }
  // Inside an expression (the last transform before the cursor takes one): the functions too.
  const transforms = a.source.slice(Math.max(0, at - 400), at).match(
    /\b(from|select|filter|derive|group|aggregate|sort|take|join|window)\b/g,
  );
  if (transforms && !["from", "join", "take"].includes(transforms.at(-1)!)) {
    for (const [name, doc] of PRQL_FUNCTIONS) {
      items.push({ label: name, kind: "function", detail: "function", documentation: doc });
    }
  }
  // The word being typed is not a suggestion of itself: with an open input row it has been
  // inferred as a column from this very use, so it is offered only if written elsewhere too.
  const elsewhere = typing !== "" &&
    [...a.source.matchAll(new RegExp(`\\b${typing}\\b`, "g"))].length > 1;
  return items.filter((i) => i.label !== typing || elsewhere);
}
