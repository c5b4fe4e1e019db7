/**
 * The outline of a document: its declarations in order, with each workflow's and handler's
 * stream bindings nested under it. Read from the syntax tree alone, so the outline stays
 * useful while names do not resolve.
 */
import type { Span } from "../mod.ts";
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
  const out: OutlineSymbol[] = [];
  const text = (span: Span) => a.source.slice(span.start, span.end);
  for (const item of a.resolved.program.items) {
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
