/**
 * The outline of a document: its declarations in order, with each workflow's and handler's
 * stream bindings nested under it. Read from the syntax tree alone, so the outline stays
 * useful while names do not resolve.
 */
import { parse, type Span } from "../mod.ts";
import type * as Ast from "../syntax/mod.ts";
import type { Analysis, SymbolKind } from "./_analysis.ts";

export interface OutlineSymbol {
  name: string;
  kind: SymbolKind;
  /** One line about it: the import path, the kind of resource, the operation. */
  detail: string;
  /** The whole declaration. */
  span: Span;
  /** Its name. */
  selectionSpan: Span;
  children: OutlineSymbol[];
}

export function documentSymbols(a: Analysis): OutlineSymbol[] {
  return outline(a.resolved.program, a.source);
}

function outline(program: Ast.Program, source: string): OutlineSymbol[] {
  const out: OutlineSymbol[] = [];
  const text = (span: Span) => source.slice(span.start, span.end);
  for (const item of program.items) {
    const base = { span: item.span, children: [] as OutlineSymbol[] };
    switch (item.kind) {
      case "Import":
        out.push({
          ...base,
          name: item.alias.name,
          kind: "import",
          detail: item.path.value,
          selectionSpan: item.alias.span,
        });
        break;
      case "Resource":
        out.push({
          ...base,
          name: item.name.name,
          kind: "resource",
          detail: text(item.type.span),
          selectionSpan: item.name.span,
        });
        break;
      case "Step":
        out.push({
          ...base,
          name: item.name.name,
          kind: "step",
          detail: text(item.call.target.span),
          selectionSpan: item.name.span,
        });
        break;
      case "TypeDecl":
        out.push({
          ...base,
          name: item.name.name,
          kind: "type",
          detail: "",
          selectionSpan: item.name.span,
        });
        break;
      case "Handler":
      case "Workflow": {
        const children = item.body.filter((st) => st.binding).map((st) => ({
          name: st.binding!.name,
          kind: "stream" as const,
          detail: "stream",
          span: st.span,
          selectionSpan: st.binding!.span,
          children: [],
        }));
        const detail = item.kind === "Workflow" && item.handler ? `? ${item.handler.name}` : "";
        out.push({
          ...base,
          name: item.name.name,
          kind: item.kind === "Workflow" ? "workflow" : "handler",
          detail,
          selectionSpan: item.name.span,
          children,
        });
        break;
      }
    }
  }
  return out.filter((s) => s.name !== "");
}

/** A declaration found by a workspace-wide search. */
export interface WorkspaceSymbol {
  name: string;
  kind: SymbolKind;
  file: string;
  span: Span;
  /** The workflow or handler a stream belongs to. */
  container: string | null;
}

/**
 * The declarations of several files whose names match `query` (its characters in order,
 * ignoring case, as editors match symbols). Files are only parsed: a workspace search must
 * stay cheap however many programs there are.
 */
export function workspaceSymbols(
  files: Array<{ file: string; source: string }>,
  query: string,
): WorkspaceSymbol[] {
  const pattern = new RegExp(
    [...query.toLowerCase()].map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*"),
  );
  const out: WorkspaceSymbol[] = [];
  for (const { file, source } of files) {
    const add = (s: OutlineSymbol, container: string | null) => {
      if (pattern.test(s.name.toLowerCase())) {
        out.push({ name: s.name, kind: s.kind, file, span: s.selectionSpan, container });
      }
      for (const c of s.children) add(c, s.name);
    };
    for (const s of outline(parse(source, file).value, source)) add(s, null);
  }
  return out;
}
