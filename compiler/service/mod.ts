/**
 * The language service: what an editor asks about a `.he` document (diagnostics, hover,
 * definition, references, completion, outline, formatting, rename, semantic tokens, code
 * actions, signature help, folding, highlights, the workflow graph), answered by pure
 * functions over the text with the compiler's own phases. Offsets go in and spans come
 * out, in UTF-16 code units like every span in the compiler; `cli/lsp.ts` translates to
 * the protocol. This folder must never import an LSP library nor anything outside
 * `compiler/`, and no function here may throw on any text.
 */
import { type Diagnostic, format, RESOLVE_CODES, type Severity, type Span } from "../mod.ts";
import type { LineIndex } from "../diagnostics/mod.ts";
import type { Analysis } from "./_analysis.ts";
import type { TextEdit } from "./_navigate.ts";

export {
  analyse,
  type Analysis,
  type Occurrence,
  type SymbolInfo,
  type SymbolKind,
  type Target,
} from "./_analysis.ts";
export {
  definition,
  type Hover,
  hover,
  prepareRename,
  references,
  rename,
  type RenameResult,
  type TextEdit,
} from "./_navigate.ts";
export { completion, type CompletionItem, type CompletionKind } from "./_complete.ts";
export {
  documentSymbols,
  type OutlineSymbol,
  type WorkspaceSymbol,
  workspaceSymbols,
} from "./_outline.ts";
export { type CodeAction, codeActions, type SignatureHelp, signatureHelp } from "./_actions.ts";
export {
  documentHighlights,
  type FoldingRange,
  foldingRanges,
  type Highlight,
  type SemanticToken,
  semanticTokens,
  TOKEN_MODIFIERS,
  TOKEN_TYPES,
} from "./_tokens.ts";
export { dag, type DagGraph, type DagStage } from "./_dag.ts";
export { recheck, type RecheckBase, type Rechecked } from "./_recheck.ts";

/** A diagnostic as an editor shows it: hints folded into the message, labels as related. */
export interface ServiceDiagnostic {
  code: string;
  severity: Severity;
  message: string;
  span: Span;
  related: Array<{ span: Span; message: string; file: string }>;
  /** `unnecessary`: it marks code that can go (an unused declaration), editors fade it. */
  tags: Array<"unnecessary">;
}

/** Warnings about code nothing uses. */
const UNNECESSARY = new Set<string>([
  RESOLVE_CODES.unusedDeclaration.code,
  RESOLVE_CODES.unusedStream.code,
]);

/** Every phase's diagnostics for the analysed document. */
export function diagnostics(a: Analysis): ServiceDiagnostic[] {
  return a.diagnostics.map((d: Diagnostic) => {
    const own = (d.file ?? a.file) === a.file;
    const hints = d.hints.map((h) => `\nhint: ${h}`).join("");
    return {
      code: d.code,
      severity: d.severity,
      // A diagnostic about another file (a plugin manifest) is shown at the top of this one.
      message: (own ? "" : `${d.file}: `) + d.message + hints,
      span: own ? d.span : { start: 0, end: 0 },
      related: d.labels.map((l) => ({
        span: l.span,
        message: l.message,
        file: l.file ?? d.file ?? a.file,
      })),
      tags: own && UNNECESSARY.has(d.code) ? ["unnecessary"] : [],
    };
  });
}

/**
 * The edits that format the whole document canonically: none when it is already formatted,
 * null when it has syntax errors (formatting must never lose text).
 */
export function formatting(source: string): TextEdit[] | null {
  const formatted = format(source);
  if (formatted.diagnostics.some((d) => d.severity === "error")) return null;
  // The formatter writes `\n`; a file written with CRLF line ends keeps them.
  const crlf = /\r\n/.test(source.slice(0, source.indexOf("\n") + 1));
  const text = crlf ? formatted.value.replace(/\r?\n/g, "\r\n") : formatted.value;
  if (text === source) return [];
  return [{ span: { start: 0, end: source.length }, newText: text }];
}

/** A 0-based line and a UTF-16 character within it: the LSP's notion of a position. */
export interface LinePosition {
  line: number;
  character: number;
}

/** The offset of a position; positions past a line's end or the text's end are clamped. */
export function offsetAt(lines: LineIndex, p: LinePosition): number {
  const line = Math.min(Math.max(p.line + 1, 1), lines.lineCount);
  return lines.lineStart(line) + Math.min(Math.max(p.character, 0), lines.lineText(line).length);
}

/** The position of an offset, with characters in UTF-16 code units. */
export function positionAt(lines: LineIndex, offset: number): LinePosition {
  const line = lines.locate(offset).line;
  const start = lines.lineStart(line);
  return {
    line: line - 1,
    character: Math.min(Math.max(offset - start, 0), lines.lineText(line).length),
  };
}

/** How offsets of two versions of a text correspond: the one region that changed between them. */
export interface EditMap {
  /** An offset of the newer text in the older one (inside the changed region: its end). */
  toOlder(offset: number): number;
  toNewer(offset: number): number;
  /** The changed region in the older text. */
  older: Span;
}

/** The correspondence of offsets between an older and a newer text. */
export function editBetween(older: string, newer: string): EditMap {
  const max = Math.min(older.length, newer.length);
  // Whole chunks are compared first (a native comparison of slices), then characters: on a
  // large file this runs on every keystroke.
  const CHUNK = 1024;
  let prefix = 0;
  while (
    prefix + CHUNK <= max &&
    older.slice(prefix, prefix + CHUNK) === newer.slice(prefix, prefix + CHUNK)
  ) prefix += CHUNK;
  while (prefix < max && older.charCodeAt(prefix) === newer.charCodeAt(prefix)) prefix++;
  let suffix = 0;
  while (
    suffix + CHUNK <= max - prefix &&
    older.slice(older.length - suffix - CHUNK, older.length - suffix) ===
      newer.slice(newer.length - suffix - CHUNK, newer.length - suffix)
  ) suffix += CHUNK;
  while (
    suffix < max - prefix &&
    older.charCodeAt(older.length - 1 - suffix) === newer.charCodeAt(newer.length - 1 - suffix)
  ) suffix++;
  const delta = newer.length - older.length;
  return {
    toOlder: (n) =>
      n <= prefix ? n : n >= newer.length - suffix ? n - delta : older.length - suffix,
    toNewer: (o) =>
      o <= prefix ? o : o >= older.length - suffix ? o + delta : newer.length - suffix,
    older: { start: prefix, end: older.length - suffix },
  };
}

/**
 * An analysis of an older text seen through a newer one: the newer text and line index,
 * with `edit` to find places in the older tree. Names, types and diagnostics stay those of
 * the older text. For completion while typing, which reads the text before the cursor and
 * only looks names up.
 */
export function withText(a: Analysis, source: string, lines: LineIndex, edit: EditMap): Analysis {
  return { ...a, source, lines, edit };
}
