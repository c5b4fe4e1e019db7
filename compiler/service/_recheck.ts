/**
 * Re-checking only what an edit touches. Most edits in a large program fall inside one
 * workflow's body, and nothing outside that body can change what the body means except
 * the declarations it uses. So the body is checked again together with the declarations
 * (every one but the other workflows and the steps it does not name), put one after another
 * in a text of their own whose offsets are mapped back to the file's, and
 * its diagnostics (also those it causes elsewhere, see `caused`) replace the body's old ones;
 * everything else keeps the diagnostics of the last full analysis, moved across the edit.
 * Program-wide findings (an unused declaration) are left to the next full analysis, which the
 * caller runs when typing pauses. It declines (null) whenever the edit is not safely inside one
 * body. Each recheck hands on a base for the next (`Rechecked.base`): typing that moves on to
 * another workflow is rechecked from there, not analysed in full.
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

/** What a recheck starts from: a text, where its declarations are, and its diagnostics. */
export interface RecheckBase {
  source: string;
  file: string;
  items: Array<{ kind: string; name: string; nameEnd: number; span: Span }>;
  diagnostics: Diagnostic[];
}

/** A recheck's diagnostics, and the base for the next recheck of a later text. */
export type Rechecked = Analysis & { base: RecheckBase };

/** The base a full analysis gives. */
export function recheckBase(a: Analysis): RecheckBase {
  return {
    source: a.source,
    file: a.file,
    items: a.resolved.program.items.map((i) => ({
      kind: i.kind,
      name: "name" in i ? i.name.name : "",
      nameEnd: "name" in i ? i.name.span.end : i.span.start,
      span: i.span,
    })),
    diagnostics: a.diagnostics,
  };
}

/**
 * The diagnostics of `source` (a newer version of `previous.source`, changed by `edit`)
 * from a check of the edited workflow alone, or null when the edit is not inside one
 * workflow's body. The result is an analysis of the focused text: use it for diagnostics,
 * not for names in other workflows.
 */
export function recheck(
  from: Analysis | RecheckBase,
  source: string,
  edit: EditRegion,
  options: CheckOptions = {},
): Rechecked | null {
  const previous = "items" in from ? from : recheckBase(from);
  const items = previous.items;
  const target = items.find((i) =>
    i.kind === "Workflow" && i.span.start < edit.older.start && edit.older.end < i.span.end - 1
  );
  if (!target) return null;
  // The header (name, handler) must be untouched: only the body between the braces changed.
  const open = previous.source.indexOf("{", target.nameEnd);
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
    if (i.kind === "Workflow" || (i.kind === "Step" && !named.has(i.name))) continue;
    keep.push({ start: edit.toNewer(i.span.start), end: edit.toNewer(i.span.end) });
  }
  keep.sort((a, b) => a.start - b.start);
  // The kept declarations alone, one after another: the checker's cost follows what is kept,
  // not the file's length. `real` maps an offset of that text back to the file.
  const pieces: Array<{ at: number; start: number; end: number }> = [];
  let focused = "";
  for (const k of keep) {
    pieces.push({ at: focused.length, start: k.start, end: k.end });
    focused += source.slice(k.start, k.end) + "\n\n";
  }
  const real = (offset: number): number => {
    let lo = 0;
    let hi = pieces.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (pieces[mid].at <= offset) lo = mid;
      else hi = mid - 1;
    }
    const p = pieces[lo];
    return Math.min(p.start + Math.max(0, offset - p.at), p.end);
  };
  const a = analyse(focused, previous.file, options);
  const ours = (file: string | undefined) => (file ?? previous.file) === previous.file;
  const inside = (d: Diagnostic, s: number, e: number) =>
    ours(d.file) && d.span.start >= s && d.span.end <= e;
  const moved = (d: Diagnostic, to: (offset: number) => number): Diagnostic => ({
    ...d,
    span: ours(d.file) ? { start: to(d.span.start), end: to(d.span.end) } : d.span,
    labels: d.labels.map((l) =>
      ours(l.file) ? { ...l, span: { start: to(l.span.start), end: to(l.span.end) } } : l
    ),
  });
  const fresh = a.diagnostics.filter((d) => ours(d.file)).map((d) => moved(d, real));
  // A finding is the edited body's when it is there or points there (a conflict it causes
  // with a declaration elsewhere is reported at that declaration): the fresh check's
  // replace the old ones; the rest keep the last full analysis's.
  const caused = (d: Diagnostic, s: number, e: number) =>
    !PROGRAM_WIDE.has(d.code) &&
    (inside(d, s, e) || d.labels.some((l) => ours(l.file) && l.span.start >= s && l.span.end <= e));
  const seen = new Set<string>();
  const diagnostics = [
    ...fresh.filter((d) => caused(d, start, end)),
    ...previous.diagnostics.filter((d) => !caused(d, target.span.start, target.span.end))
      .map((d) => moved(d, edit.toNewer)),
  ].filter((d) => {
    const key = `${d.code} ${d.file ?? ""} ${d.span.start} ${d.span.end} ${d.message}`;
    return !seen.has(key) && seen.add(key);
  }).sort((x, y) => x.span.start - y.span.start);
  const moveSpan = (span: Span) => ({
    start: edit.toNewer(span.start),
    end: edit.toNewer(span.end),
  });
  const base: RecheckBase = {
    source,
    file: previous.file,
    items: items.map((i) => ({ ...i, nameEnd: edit.toNewer(i.nameEnd), span: moveSpan(i.span) })),
    diagnostics,
  };
  return { ...a, source, lines: lineIndex(source), diagnostics, base };
}
