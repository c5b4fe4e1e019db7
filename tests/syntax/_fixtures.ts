/**
 * Shared helpers of the syntax tests: the golden corpus on disk, inline expectations read
 * from fixtures, and tree comparisons with spans stripped. Tests import these so that a
 * change of fixture format touches one place. It must never hide a difference: helpers
 * normalise only what the formatter is allowed to change (spans, PRQL indentation).
 */
import { lineIndex } from "../../compiler/diagnostics/mod.ts";
import type { Diagnostic } from "../../compiler/diagnostics/_types.ts";

const DATA = new URL("../testdata/", import.meta.url);

export interface Fixture {
  name: string;
  source: string;
}

/** The fixtures of `ok/` or `err/` (not subfolders, which belong to later phases). */
export function corpus(kind: "ok" | "err"): Fixture[] {
  const dir = new URL(`${kind}/`, DATA);
  return [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && e.name.endsWith(".he"))
    .map((e) => e.name)
    .sort()
    .map((name) => ({ name, source: Deno.readTextFileSync(new URL(name, dir)) }));
}

/** One diagnostic as an inline expectation sees it. */
export interface Expectation {
  line: number;
  column: number;
  width: number;
  code: string;
  message: string;
}

const MARK = /^(\s*)\/\/(\s*)(\^+)\s+error\[(HE\d{4})\]:\s*(.*)$/;

/** Reads `// ^^^ error[HE0003]: message` lines, which mark the previous code line. */
export function expectations(source: string): Expectation[] {
  const lines = source.split(/\r?\n/);
  const out: Expectation[] = [];
  let target = 0;
  lines.forEach((text, k) => {
    const m = MARK.exec(text);
    if (m === null) {
      if (!/^\s*(\/\/.*)?$/.test(text)) target = k + 1;
      return;
    }
    const column = m[1].length + 2 + m[2].length + 1;
    out.push({ line: target, column, width: m[3].length, code: m[4], message: m[5].trim() });
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
  return { line: from.line, column: from.column, width, code: d.code, message: d.message };
}

/** A JSON copy of a tree without `span`/`textSpan`, with PRQL text reduced to its lines. */
export function stripSpans(tree: unknown): unknown {
  return JSON.parse(JSON.stringify(tree, (key, value) => {
    if (key === "span" || key === "textSpan") return undefined;
    if (key === "text" && typeof value === "string" && value.includes("\n")) {
      return value.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
    }
    return value;
  }));
}

/** A seeded PRNG (mulberry32), so that fuzz failures reproduce. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
