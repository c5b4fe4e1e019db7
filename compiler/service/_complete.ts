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
  opMarkdown,
  resourceKindMarkdown,
  rowSchemaText,
  symbolMarkdown,
} from "./_describe.ts";

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
  | "column";

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

export function completion(a: Analysis, offset: number): CompletionItem[] {
  const at = Math.min(Math.max(offset, 0), a.source.length);
  const lineStart = a.lines.lineStart(a.lines.locate(at).line);
  const prefix = a.source.slice(lineStart, at);
  const lineEnd = a.source.indexOf("\n", at);
  const line = a.source.slice(lineStart, lineEnd < 0 ? a.source.length : lineEnd);

  const prql = prqlAt(a, at);
  if (prql) return prqlCompletions(a, prql, prefix);
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

  const body = bodyAt(a, at);
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

/**
 * Inside `{ ... }` after `alias.member` or `retry`, at a key position: the contract's keys
 * not written yet. Null when the cursor is not in such an object.
 */
function configAt(a: Analysis, at: number): CompletionItem[] | null {
  const open = unmatchedBrace(a.source, at);
  if (open < 0) return null;
  if (!/(?:^\{|[,\n])\s*[A-Za-z0-9_]*$/.test(a.source.slice(open, at))) return null;
  const before = a.source.slice(Math.max(0, open - 200), open);
  let schema: ConfigField[] | null = null;
  if (/\bretry\s*$/.test(before)) schema = RETRY_CONFIG;
  const q = /([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s*(?:<[^<>]*>\s*)?$/.exec(before);
  const m = q ? a.resolved.modules.get(q[1]) : undefined;
  if (q && m) schema = m.ops.get(q[2])?.config ?? m.resources.get(q[2])?.config ?? null;
  if (!schema) return null;
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

function prqlAt(a: Analysis, at: number): Ast.PrqlStage | null {
  for (const item of a.resolved.program.items) {
    if (item.kind !== "Workflow" && item.kind !== "Handler") continue;
    for (const st of item.body) {
      for (const stage of st.pipeline.stages) {
        if (stage.kind === "Prql" && stage.textSpan.start <= at && at <= stage.textSpan.end) {
          return stage;
        }
      }
    }
  }
  return null;
}

/** After `join`, the steps that can be joined; elsewhere `input`'s columns. */
function prqlCompletions(a: Analysis, stage: Ast.PrqlStage, prefix: string): CompletionItem[] {
  if (/\bjoin\s+[A-Za-z0-9_]*$/.test(prefix)) {
    return [...a.resolved.steps.entries()]
      .filter(([, s]) => s.call?.op.role === "lookup")
      .map(([n]) => symbolItem(a, "step", n));
  }
  if (/\bfrom\s+[A-Za-z0-9_]*$/.test(prefix)) {
    return [{ label: "input", kind: "stream", detail: "the incoming rows" }];
  }
  const input = a.typed?.stages.get(stage)?.input;
  if (!input) return [];
  const row = rowSchemaText(input);
  return input.fields.map((f) => ({
    label: f.name,
    kind: "column" as const,
    detail: `${f.type ?? f.family ?? "unknown"}${f.nullable ? "?" : ""}`,
    documentation: `A column of \`input\`: \`${row}\``,
  }));
}
