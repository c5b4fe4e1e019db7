/**
 * Inline expectations for fixture programs: a comment line `// ^^^ error[HE0123]: text`
 * expects a diagnostic with that code, whose message contains `text`, and whose span
 * overlaps the columns under the carets on the previous non-comment line. Shared by every
 * test that checks diagnostics against a corpus, so the convention lives in one place.
 */
import type { Diagnostic } from "../../compiler/mod.ts";

export interface Expectation {
  severity: string;
  code: string;
  text: string;
  start: number;
  end: number;
  line: number;
}

const MARK = /^(\s*)\/\/(\s*)(\^+)\s+(error|warning|info)\[(HE\d{4})\]:\s*(.*)$/;

export function expectations(source: string): Expectation[] {
  const lines = source.split("\n");
  const starts: number[] = [];
  let offset = 0;
  for (const l of lines) {
    starts.push(offset);
    offset += l.length + 1;
  }
  const out: Expectation[] = [];
  let target = -1;
  lines.forEach((line, i) => {
    const m = MARK.exec(line);
    if (!m) {
      if (!/^\s*\/\//.test(line)) target = i;
      return;
    }
    const col = line.indexOf("^");
    out.push({
      severity: m[4],
      code: m[5],
      text: m[6].trim(),
      start: starts[target] + col,
      end: starts[target] + col + m[3].length,
      line: target + 1,
    });
  });
  return out;
}

/** Problems with `diagnostics` against the expectations; empty when everything matches. */
export function mismatches(source: string, diagnostics: Diagnostic[]): string[] {
  const expected = expectations(source);
  const problems: string[] = [];
  const matched = new Set<Diagnostic>();
  for (const e of expected) {
    const hit = diagnostics.find((d) =>
      d.code === e.code && d.severity === e.severity && d.message.includes(e.text) &&
      d.span.start < e.end && e.start < Math.max(d.span.end, d.span.start + 1)
    );
    if (hit) matched.add(hit);
    else {
      const near = diagnostics.map((d) => `${d.code} ${JSON.stringify(d.span)} ${d.message}`);
      problems.push(
        `line ${e.line}: expected ${e.severity}[${e.code}] "${e.text}" at ${e.start}-${e.end}; got: ${
          near.join(" | ") || "nothing"
        }`,
      );
    }
  }
  for (const d of diagnostics) {
    if (d.severity === "error" && !matched.has(d)) {
      problems.push(`unexpected error[${d.code}] ${JSON.stringify(d.span)}: ${d.message}`);
    }
  }
  return problems;
}
