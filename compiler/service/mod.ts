/**
 * The language service: what an editor asks about a `.he` document (diagnostics, hover,
 * definition, references, completion, outline, formatting, rename), answered by pure
 * functions over the text with the compiler's own phases. Offsets go in and spans come
 * out, in UTF-16 code units like every span in the compiler; `cli/lsp.ts` translates to
 * the protocol. This folder must never import an LSP library nor anything outside
 * `compiler/`, and no function here may throw on any text.
 */
import { type Diagnostic, format, type Severity, type Span } from "../mod.ts";
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
export { documentSymbols, type OutlineSymbol } from "./_outline.ts";

/** A diagnostic as an editor shows it: hints folded into the message, labels as related. */
export interface ServiceDiagnostic {
  code: string;
  severity: Severity;
  message: string;
  span: Span;
  related: Array<{ span: Span; message: string; file: string }>;
}

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
  if (formatted.value === source) return [];
  return [{ span: { start: 0, end: source.length }, newText: formatted.value }];
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
