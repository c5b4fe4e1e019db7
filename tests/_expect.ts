/**
 * The test corpora on disk and their inline expectations: a comment line
 * `// ^^^ error[HE0123]: text` expects a diagnostic with that severity and code, whose message
 * contains `text`, and whose span starts under the first caret of the previous code line and
 * covers exactly as many columns as there are carets (to the line end for spans that run on).
 * Every test that checks diagnostics against a fixture uses this one file, so the convention
 * lives in one place. It must never accept a near miss: a fixture matches only when every
 * expectation meets exactly one diagnostic and no diagnostic is left over.
 */
import { lineIndex } from "../compiler/diagnostics/mod.ts";
import type { Diagnostic, Severity } from "../compiler/diagnostics/_types.ts";

const DATA = new URL("./testdata/", import.meta.url);

/** The corpora: clean programs, syntax errors, and contract errors of the later phases. */
export type CorpusKind = "ok" | "err" | "err/contracts";

export interface Fixture {
  name: string;
  /** The absolute path, which `check()` uses to find plugins and the schema snapshot. */
  path: string;
  source: string;
}

/** The `.he` programs directly in a corpus folder, sorted by name. */
export function corpus(kind: CorpusKind): Fixture[] {
  const dir = new URL(`${kind}/`, DATA);
  return [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && e.name.endsWith(".he"))
    .map((e) => e.name)
    .sort()
    .map((name) => {
      const url = new URL(name, dir);
      return { name, path: url.pathname, source: Deno.readTextFileSync(url) };
    });
}

/** One diagnostic as an inline expectation sees it: 1-based, columns in code points. */
export interface Expectation {
  line: number;
  column: number;
  width: number;
  severity: Severity;
  code: string;
  message: string;
}

const MARK = /^(\s*)\/\/(\s*)(\^+)\s+(error|warning|info)\[(HE\d{4})\]:\s*(.*)$/;

/** Reads the expectation lines, each of which marks the previous non-comment line. */
export function expectations(source: string): Expectation[] {
  const out: Expectation[] = [];
  let target = 0;
  source.split(/\r?\n/).forEach((text, k) => {
    const m = MARK.exec(text);
    if (m === null) {
      if (!/^\s*(\/\/.*)?$/.test(text)) target = k + 1;
      return;
    }
    out.push({
      line: target,
      column: [...m[1]].length + 2 + [...m[2]].length + 1,
      width: m[3].length,
      severity: m[4] as Severity,
      code: m[5],
      message: m[6].trim(),
    });
  });
  return out;
}

/** A diagnostic in the shape of an expectation, for comparing both ways. */
export function observed(source: string, d: Diagnostic): Expectation {
  const index = lineIndex(source);
  const from = index.locate(d.span.start);
  const to = index.locate(d.span.end);
  const lineEnd = [...index.lineText(from.line)].length + 1;
  const width = Math.max(1, (to.line === from.line ? to.column : lineEnd) - from.column);
  return {
    line: from.line,
    column: from.column,
    width,
    severity: d.severity,
    code: d.code,
    message: d.message,
  };
}

function show(e: Expectation): string {
  return `${e.line}:${e.column}+${e.width} ${e.severity}[${e.code}] ${JSON.stringify(e.message)}`;
}

/** What differs between the inline expectations and `diagnostics`; empty when they agree. */
export function mismatches(source: string, diagnostics: Diagnostic[]): string[] {
  const got = diagnostics.map((d) => observed(source, d));
  const left = new Set(got);
  const problems: string[] = [];
  for (const want of expectations(source)) {
    const hit = [...left].find((g) =>
      g.line === want.line && g.column === want.column && g.width === want.width &&
      g.severity === want.severity && g.code === want.code && g.message.includes(want.message)
    );
    if (hit) left.delete(hit);
    else problems.push(`missing ${show(want)}; got: ${got.map(show).join(" | ") || "nothing"}`);
  }
  for (const g of left) problems.push(`unexpected ${show(g)}`);
  return problems;
}
