/**
 * What an editor paints and folds: semantic tokens (every name by what it denotes, comments,
 * and the words inside PRQL blocks), the highlights of the name under the cursor, and the
 * foldable regions (declarations, PRQL blocks, runs of comment lines). All read from the
 * analysis's occurrence index and the syntax tree; tokens never overlap and come sorted.
 */
import type { Span } from "../mod.ts";
import { type Analysis, type Occurrence, occurrenceAt, type SymbolKind } from "./_analysis.ts";
import { references } from "./_navigate.ts";
import { prqlAliases, prqlStageAt, prqlStages, type PrqlTokenKind, prqlTokens } from "./_prql.ts";

/** The token types, in the order of the legend the server announces. */
export const TOKEN_TYPES = [
  "namespace",
  "type",
  "class",
  "function",
  "method",
  "property",
  "parameter",
  "variable",
  "event",
  "keyword",
  "string",
  "number",
  "comment",
  "operator",
] as const;
export type TokenType = typeof TOKEN_TYPES[number];

/** The token modifiers, in the order of the legend. */
export const TOKEN_MODIFIERS = ["declaration", "readonly", "defaultLibrary"] as const;
export type TokenModifier = typeof TOKEN_MODIFIERS[number];

export interface SemanticToken {
  span: Span;
  type: TokenType;
  modifiers: TokenModifier[];
}

const SYMBOL_TOKEN: Record<SymbolKind, TokenType> = {
  import: "namespace",
  resource: "variable",
  step: "function",
  handler: "event",
  workflow: "class",
  type: "type",
  stream: "variable",
};

const PRQL_TOKEN: Record<PrqlTokenKind, TokenType> = {
  transform: "keyword",
  function: "function",
  name: "property",
  builtin: "variable",
  string: "string",
  number: "number",
  comment: "comment",
  operator: "operator",
};

function occurrenceToken(a: Analysis, o: Occurrence): SemanticToken {
  const t = o.target;
  switch (t.kind) {
    case "symbol": {
      const kind = a.symbols.get(t.key)?.kind ?? "stream";
      const modifiers: TokenModifier[] = t.declaration ? ["declaration"] : [];
      if (kind === "resource") modifiers.push("readonly");
      return { span: o.span, type: SYMBOL_TOKEN[kind], modifiers };
    }
    case "member":
      return {
        span: o.span,
        type: t.module.ops.has(t.member) ? "method" : "class",
        modifiers: ["defaultLibrary"],
      };
    case "configKey":
      return { span: o.span, type: "property", modifiers: [] };
    case "slot":
      return { span: o.span, type: "parameter", modifiers: [] };
  }
}

/** Every token of the document, sorted, without overlaps. */
export function semanticTokens(a: Analysis): SemanticToken[] {
  const tokens: SemanticToken[] = a.occurrences.map((o) => occurrenceToken(a, o));
  for (const c of a.resolved.program.comments) {
    tokens.push({ span: c.span, type: "comment", modifiers: [] });
  }
  for (const item of a.resolved.program.items) {
    if (item.kind === "ErrorItem") continue;
    const keyword = /^[a-z]+/.exec(a.source.slice(item.span.start, item.span.start + 10))?.[0];
    if (keyword) {
      tokens.push({
        span: { start: item.span.start, end: item.span.start + keyword.length },
        type: "keyword",
        modifiers: [],
      });
    }
  }
  for (const stage of prqlStages(a)) {
    const aliases = new Set(prqlAliases(stage).map((x) => x.name));
    for (const t of prqlTokens(stage)) {
      const modifiers: TokenModifier[] = t.kind === "builtin" || t.kind === "function"
        ? ["defaultLibrary"]
        : [];
      // A name that is neither a column nor an alias is most likely a joined step (indexed
      // as an occurrence already, which wins below) or a typo: still a property to paint.
      if (t.kind === "name" && aliases.has(t.text)) modifiers.push("declaration");
      tokens.push({ span: { start: t.start, end: t.end }, type: PRQL_TOKEN[t.kind], modifiers });
    }
  }
  tokens.sort((x, y) => x.span.start - y.span.start || y.span.end - x.span.end);
  const out: SemanticToken[] = [];
  let end = -1;
  for (const t of tokens) {
    if (t.span.start < end || t.span.end <= t.span.start) continue;
    out.push(t);
    end = t.span.end;
  }
  return out;
}

export interface Highlight {
  span: Span;
  /** A declaration or a definition is written; every other occurrence is read. */
  write: boolean;
}

/** The occurrences of the name under the cursor in this document (PRQL words included). */
export function documentHighlights(a: Analysis, offset: number): Highlight[] {
  const o = occurrenceAt(a, offset);
  if (o?.target.kind === "symbol") {
    const declaration = a.symbols.get(o.target.key)?.nameSpan;
    return references(a, offset, true).map((span) => ({
      span,
      write: span.start === declaration?.start,
    }));
  }
  const stage = prqlStageAt(a, offset);
  if (!stage) return [];
  const tokens = prqlTokens(stage);
  const word = tokens.find((t) => t.kind === "name" && t.start <= offset && offset <= t.end);
  if (!word) return [];
  const defined = new Set(
    prqlAliases(stage).filter((x) => x.name === word.text).map((x) => x.start),
  );
  return tokens.filter((t) => t.kind === "name" && t.text === word.text).map((t) => ({
    span: { start: t.start, end: t.end },
    write: defined.has(t.start),
  }));
}

export interface FoldingRange {
  /** 1-based lines, as the diagnostics' line index counts them. */
  startLine: number;
  endLine: number;
  kind: "region" | "comment" | "imports";
}

/** Declarations, PRQL blocks and runs of comment lines that span several lines. */
export function foldingRanges(a: Analysis): FoldingRange[] {
  const out: FoldingRange[] = [];
  const lineOf = (offset: number) => a.lines.locate(offset).line;
  const add = (span: Span, kind: FoldingRange["kind"]) => {
    const startLine = lineOf(span.start);
    let endLine = lineOf(Math.max(span.start, span.end - 1));
    // A closing bracket on its own line stays visible under the folded region.
    if (/^\s*[})]/.test(a.lines.lineText(endLine)) && endLine > startLine) endLine--;
    if (endLine > startLine) out.push({ startLine, endLine, kind });
  };
  const imports = a.resolved.program.items.filter((i) => i.kind === "Import");
  if (imports.length > 1) {
    add({ start: imports[0].span.start, end: imports.at(-1)!.span.end }, "imports");
  }
  for (const item of a.resolved.program.items) if (item.kind !== "Import") add(item.span, "region");
  for (const stage of prqlStages(a)) add(stage.span, "region");
  let run: Span | null = null;
  let runLine = -1;
  for (const c of a.resolved.program.comments) {
    const line = lineOf(c.span.start);
    const alone = a.lines.lineText(line).trimStart().startsWith("//");
    if (run && alone && line === runLine + 1) run = { start: run.start, end: c.span.end };
    else {
      if (run) add(run, "comment");
      run = alone ? c.span : null;
    }
    runLine = line;
  }
  if (run) add(run, "comment");
  return out.sort((x, y) => x.startLine - y.startLine);
}
