/**
 * Re-checking only what an edit touches. Most edits in a large program fall inside one
 * workflow's body, and nothing outside that body can change what the body means except
 * the declarations it uses. So the body is checked again together with the declarations
 * (every one but the steps it does not name; the rest blanked out to spaces, so that
 * offsets stay those of the real text), and
 * its diagnostics replace the body's old ones; everything else keeps the diagnostics of the
 * last full analysis, moved across the edit. Program-wide findings (an unused declaration)
 * are left to the next full analysis, which the caller runs when typing pauses. It declines
 * (null) whenever the edit is not safely inside one body.
 */
import { type CheckOptions, type Diagnostic, RESOLVE_CODES, type Span } from "../mod.ts";
import { lineIndex } from "../diagnostics/mod.ts";
import { analyse, type Analysis } from "./_analysis.ts";

/** Program-wide findings a partial check cannot make. */
const PROGRAM_WIDE = new Set<string>([RESOLVE_CODES.unusedDeclaration.code]);

export interface EditRegion {
  toNewer(offset: number): number;
  /** The changed region in the older text. */
  older: Span;
}

/**
 * The diagnostics of `source` (a newer version of `previous.source`, changed by `edit`)
 * from a check of the edited workflow alone, or null when the edit is not inside one
 * workflow's body. The result is an analysis of the focused text: use it for diagnostics,
 * not for names in other workflows.
 */
export function recheck(
  previous: Analysis,
  source: string,
  edit: EditRegion,
  options: CheckOptions = {},
): Analysis | null {
  const items = previous.resolved.program.items;
  const target = items.find((i) =>
    i.kind === "Workflow" && i.span.start < edit.older.start && edit.older.end < i.span.end - 1
  );
  if (!target || target.kind !== "Workflow") return null;
  // The header (name, handler) must be untouched: only the body between the braces changed.
  const open = previous.source.indexOf("{", target.name.span.end);
  if (open < 0 || edit.older.start <= open) return null;
  const start = target.span.start;
  const end = edit.toNewer(target.span.end);
  const keep: Span[] = [{ start, end }];
  // Steps only matter where they are used: those the body or a handler names are kept.
  const named = new Set(
    [
      source.slice(start, end),
      ...items.filter((i) => i.kind === "Handler").map((i) =>
        previous.source.slice(i.span.start, i.span.end)
      ),
    ].flatMap((text) => text.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []),
  );
  for (const i of items) {
    if (i.kind === "Workflow" || (i.kind === "Step" && !named.has(i.name.name))) continue;
    keep.push({ start: edit.toNewer(i.span.start), end: edit.toNewer(i.span.end) });
  }
  keep.sort((a, b) => a.start - b.start);
  let focused = "";
  let at = 0;
  for (const k of keep) {
    focused += source.slice(at, k.start).replace(/[^\r\n]/g, " ") + source.slice(k.start, k.end);
    at = k.end;
  }
  focused += source.slice(at).replace(/[^\r\n]/g, " ");
  const a = analyse(focused, previous.file, options);
  const inside = (d: Diagnostic, s: number, e: number) =>
    (d.file ?? previous.file) === previous.file && d.span.start >= s && d.span.end <= e;
  const moved = (d: Diagnostic): Diagnostic => ({
    ...d,
    span: { start: edit.toNewer(d.span.start), end: edit.toNewer(d.span.end) },
    labels: d.labels.map((l) =>
      l.file && l.file !== previous.file
        ? l
        : { ...l, span: { start: edit.toNewer(l.span.start), end: edit.toNewer(l.span.end) } }
    ),
  });
  const diagnostics = [
    ...a.diagnostics.filter((d) => inside(d, start, end) && !PROGRAM_WIDE.has(d.code)),
    ...previous.diagnostics.filter((d) =>
      !inside(d, target.span.start, target.span.end) || PROGRAM_WIDE.has(d.code)
    ).map(moved),
  ].sort((x, y) => x.span.start - y.span.start);
  return { ...a, source, lines: lineIndex(source), diagnostics };
}
