/**
 * Hover, go to definition, find references and rename: all answered from the analysis's
 * occurrence index, so that each agrees with the others about what a name means. Rename
 * must never produce an edit that changes what the program means: it refuses names that
 * are taken or are not identifiers.
 */
import type { Span } from "../mod.ts";
import {
  type Analysis,
  type Occurrence,
  occurrenceAt,
  symbolAt,
  type SymbolInfo,
} from "./_analysis.ts";
import { configFieldText, opMarkdown, resourceKindMarkdown, symbolMarkdown } from "./_describe.ts";
import { prqlHover } from "./_prql.ts";

export interface Hover {
  /** The text the hover is about. */
  span: Span;
  markdown: string;
}

export interface TextEdit {
  span: Span;
  newText: string;
}

export function hover(a: Analysis, offset: number): Hover | null {
  const o = occurrenceAt(a, offset);
  if (!o) return prqlHover(a, offset);
  const t = o.target;
  switch (t.kind) {
    case "symbol": {
      const s = a.symbols.get(t.key);
      return s ? { span: o.span, markdown: symbolMarkdown(a, s) } : null;
    }
    case "member": {
      const op = t.module.ops.get(t.member);
      const kind = t.module.resources.get(t.member);
      const markdown = op
        ? opMarkdown(t.alias, op)
        : kind
        ? resourceKindMarkdown(t.alias, kind)
        : null;
      return markdown ? { span: o.span, markdown } : null;
    }
    case "configKey":
      return { span: o.span, markdown: `Config of \`${t.owner}\`: ${configFieldText(t.field)}` };
    case "slot":
      return {
        span: o.span,
        markdown: `Slot \`${t.slot.name}\` of \`${t.op.name}\`: a \`${t.slot.resource}\`${
          t.slot.required ? " (required)" : ""
        }. ${t.slot.doc}`,
      };
  }
}

/** Where the name under the cursor is declared. */
export function definition(a: Analysis, offset: number): Span | null {
  return symbolAt(a, offset)?.nameSpan ?? null;
}

/** Every occurrence of the name under the cursor, in text order. */
export function references(a: Analysis, offset: number, includeDeclaration = true): Span[] {
  const s = symbolAt(a, offset);
  if (!s) return [];
  return occurrencesOf(a, s)
    .filter((o) => includeDeclaration || !(o.target.kind === "symbol" && o.target.declaration))
    .map((o) => o.span);
}

function occurrencesOf(a: Analysis, s: SymbolInfo): Occurrence[] {
  return a.occurrences.filter((o) => o.target.kind === "symbol" && o.target.key === s.key);
}

/** The name that a rename at `offset` would change, or null where nothing can be renamed. */
export function prepareRename(a: Analysis, offset: number): { span: Span; name: string } | null {
  const o = occurrenceAt(a, offset);
  const s = symbolAt(a, offset);
  return o && s ? { span: o.span, name: s.name } : null;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const KEYWORDS = new Set([
  "import",
  "resource",
  "step",
  "handler",
  "workflow",
  "type",
  "retry",
  "true",
  "false",
  "null",
  "env",
  "secret",
]);

export type RenameResult = { ok: true; edits: TextEdit[] } | { ok: false; message: string };

/** Renames the declared name under the cursor and all its uses. */
export function rename(a: Analysis, offset: number, newName: string): RenameResult {
  const s = symbolAt(a, offset);
  if (!s) return { ok: false, message: "there is no declared name here to rename" };
  if (!IDENT.test(newName) || KEYWORDS.has(newName)) {
    return { ok: false, message: `\`${newName}\` is not a valid name` };
  }
  if (newName === s.name) return { ok: true, edits: [] };
  // Streams live in their own body; everything else shares one program-wide namespace.
  const taken = [...a.symbols.values()].find((other) =>
    other.name === newName &&
    !(s.kind === "stream" && other.kind === "stream" && other.item !== s.item)
  );
  if (taken) {
    return { ok: false, message: `\`${newName}\` is already declared (a ${taken.kind})` };
  }
  return { ok: true, edits: occurrencesOf(a, s).map((o) => ({ span: o.span, newText: newName })) };
}
