/**
 * Rendering of diagnostics from every phase: a source frame with carets for people, one line
 * per diagnostic for tools, and JSON with 1-based lines and columns for machines. Offsets
 * become lines and columns only here. Rendering must never throw, whatever the spans say:
 * spans outside the text are clamped, and labels in files whose text is unknown are shown
 * by location only.
 */
import type { Diagnostic, Label, Result, Severity, Span } from "./_types.ts";

export type { Diagnostic, Label, Result, Severity, Span };

/** A 1-based position; `column` counts Unicode code points, not UTF-16 units. */
export interface Position {
  line: number;
  column: number;
}

export interface LineIndex {
  /** The number of lines (an empty text has one empty line). */
  readonly lineCount: number;
  /** The position of a UTF-16 offset; offsets outside the text are clamped. */
  locate(offset: number): Position;
  /** The UTF-16 offset where a 1-based line starts. */
  lineStart(line: number): number;
  /** The text of a 1-based line, without its line end. */
  lineText(line: number): string;
}

/** Builds the offset-to-line table of a text once, for many lookups. */
export function lineIndex(source: string): LineIndex {
  const starts = [0];
  for (let i = source.indexOf("\n"); i >= 0; i = source.indexOf("\n", i + 1)) starts.push(i + 1);
  const lineOf = (offset: number): number => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const lineText = (line: number): string => {
    const i = Math.min(Math.max(line, 1), starts.length) - 1;
    const end = i + 1 < starts.length ? starts[i + 1] - 1 : source.length;
    return source.slice(starts[i], end).replace(/\r$/, "");
  };
  return {
    lineCount: starts.length,
    locate(offset) {
      const o = Math.min(Math.max(offset, 0), source.length);
      const l = lineOf(o);
      return { line: l + 1, column: codePoints(source.slice(starts[l], o)) + 1 };
    },
    lineStart: (line) => starts[Math.min(Math.max(line, 1), starts.length) - 1],
    lineText,
  };
}

function codePoints(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (
      c < 0xdc00 || c > 0xdfff || i === 0 || text.charCodeAt(i - 1) < 0xd800 ||
      text.charCodeAt(i - 1) > 0xdbff
    ) n++;
  }
  return n;
}

export interface JsonDiagnostic {
  code: string;
  severity: Severity;
  message: string;
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

/** Diagnostics as plain objects with 1-based positions, for `--format json` and tools. */
export function toJson(diags: Diagnostic[], source: string, file: string): JsonDiagnostic[] {
  const index = lineIndex(source);
  return diags.map((d) => {
    const from = index.locate(d.span.start);
    const to = index.locate(d.span.end);
    return {
      code: d.code,
      severity: d.severity,
      message: d.message,
      file: d.file ?? file,
      line: from.line,
      column: from.column,
      endLine: to.line,
      endColumn: to.column,
    };
  });
}

/** One line per diagnostic: `file:line:col: error[HE0001]: message`. */
export function renderShort(diags: Diagnostic[], source: string, file: string): string {
  const index = lineIndex(source);
  return diags.map((d) => {
    const p = index.locate(d.span.start);
    return `${d.file ?? file}:${p.line}:${p.column}: ${d.severity}[${d.code}]: ${d.message}`;
  }).join("\n");
}

export interface HumanOptions {
  color: boolean;
  /** Texts of other files that labels point into, by file name. */
  sources?: Record<string, string>;
}

const ANSI = { red: 31, yellow: 33, blue: 34, cyan: 36, bold: 1 } as const;
const SEVERITY_COLOR: Record<Severity, keyof typeof ANSI> = {
  error: "red",
  warning: "yellow",
  info: "cyan",
};
const TAB = "    ";

/**
 * A source frame per diagnostic, in the style of rustc: the header, the location, the line
 * with carets under the span, each label with its own carets, then the hints.
 */
export function renderHuman(
  diags: Diagnostic[],
  source: string,
  file: string,
  options: HumanOptions,
): string {
  const paint = (style: keyof typeof ANSI, text: string) =>
    options.color ? `\x1b[${ANSI[style]}m${text}\x1b[0m` : text;
  const indexes = new Map<string, LineIndex | null>();
  const indexFor = (f: string): LineIndex | null => {
    if (!indexes.has(f)) {
      const text = f === file ? source : options.sources?.[f];
      indexes.set(f, text === undefined ? null : lineIndex(text));
    }
    return indexes.get(f)!;
  };
  return diags.map((d) => {
    const own = d.file ?? file;
    const main: Label = { span: d.span, message: "", file: own };
    const places = [main, ...d.labels.map((l) => ({ ...l, file: l.file ?? own }))];
    const lineNumbers = places.map((p) => indexFor(p.file!)?.locate(p.span.start).line ?? 0);
    const gutter = String(Math.max(...lineNumbers)).length;
    const bar = paint("blue", `${" ".repeat(gutter)} |`);
    const out = [
      paint(
        "bold",
        `${paint(SEVERITY_COLOR[d.severity], `${d.severity}[${d.code}]`)}: ${d.message}`,
      ),
    ];
    let lastFile = "";
    places.forEach((place, k) => {
      const index = indexFor(place.file!);
      const pos = index?.locate(place.span.start) ?? { line: 0, column: 0 };
      const where = index === null ? place.file! : `${place.file}:${pos.line}:${pos.column}`;
      if (k === 0 || place.file !== lastFile) {
        out.push(`${" ".repeat(gutter)}${paint("blue", k === 0 ? "-->" : ":::")} ${where}`);
        out.push(bar);
      }
      lastFile = place.file!;
      if (index === null) {
        if (place.message !== "") out.push(`${bar} ${place.message}`);
        return;
      }
      const text = index.lineText(pos.line);
      const end = index.locate(Math.max(place.span.end, place.span.start));
      const endColumn = end.line === pos.line ? end.column : codePoints(text) + 1;
      const shown = [...text];
      const before = shown.slice(0, pos.column - 1).map((c) => c === "\t" ? TAB : " ").join("");
      const width = Math.max(
        1,
        shown.slice(pos.column - 1, endColumn - 1).reduce((n, c) => n + (c === "\t" ? 4 : 1), 0),
      );
      const mark = k === 0 ? "^" : "-";
      const style = k === 0 ? SEVERITY_COLOR[d.severity] : "blue";
      out.push(
        `${paint("blue", `${String(pos.line).padStart(gutter)} |`)} ${text.replaceAll("\t", TAB)}`,
      );
      const message = place.message === "" ? "" : ` ${place.message}`;
      out.push(`${bar} ${before}${paint(style, mark.repeat(width) + message)}`);
    });
    for (const hint of d.hints) {
      out.push(`${" ".repeat(gutter)} ${paint("cyan", "=")} hint: ${hint}`);
    }
    return out.join("\n");
  }).join("\n\n");
}
