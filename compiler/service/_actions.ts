/**
 * Code actions and signature help: the fixes the compiler's own diagnostics point at (a
 * did-you-mean hint applied, a missing required config key added with a placeholder of its
 * type) and the contract of the config object being written. An action only ever edits the
 * text a diagnostic is about; it must never guess a fix the compiler did not suggest.
 */
import type { Diagnostic, Span } from "../mod.ts";
import type { ConfigField } from "../modules/mod.ts";
import { RESOLVE_CODES } from "../resolve/mod.ts";
import type { Analysis } from "./_analysis.ts";
import { configContextAt } from "./_complete.ts";
import { configTypeText } from "./_describe.ts";
import type { TextEdit } from "./_navigate.ts";

export interface CodeAction {
  title: string;
  /** The diagnostic it fixes. */
  diagnostic: Diagnostic;
  edits: TextEdit[];
  /** The fix the user most likely wants (an editor may apply it on save). */
  preferred: boolean;
}

/** A value of a config key's type to start from. */
function placeholder(f: ConfigField): string {
  if (typeof f.type !== "string") return `"${f.type.enum[0]}"`;
  switch (f.type) {
    case "int":
    case "number":
      return "0";
    case "bool":
      return "false";
    case "duration":
      return "1s";
    case "list":
      return "[]";
    case "object":
      return "{}";
    default:
      return '""';
  }
}

function overlaps(a: Span, b: Span): boolean {
  return a.start <= b.end && b.start <= a.end;
}

/** The fixes for the diagnostics that touch `range`. */
export function codeActions(a: Analysis, range: Span): CodeAction[] {
  const out: CodeAction[] = [];
  for (const d of a.diagnostics) {
    if ((d.file ?? a.file) !== a.file || !overlaps(d.span, range)) continue;
    const written = a.source.slice(d.span.start, d.span.end);
    for (const hint of d.hints) {
      const guess = /^did you mean `([^`]+)`\?$/.exec(hint)?.[1];
      if (!guess) continue;
      // A qualified suggestion (`file.write`) for a misspelt member (`writ`) replaces the member.
      const replacement = written.includes(".") ? guess : guess.slice(guess.lastIndexOf(".") + 1);
      if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(written) || replacement === written) continue;
      out.push({
        title: `Change \`${written}\` to \`${replacement}\``,
        diagnostic: d,
        edits: [{ span: d.span, newText: replacement }],
        preferred: true,
      });
    }
    if (d.code === RESOLVE_CODES.missingConfigKey.code) {
      const action = addConfigKey(a, d, written);
      if (action) out.push(action);
    }
  }
  return out;
}

/** `x needs config key \`k\``: adds `k: <placeholder>` to the object the diagnostic marks. */
function addConfigKey(a: Analysis, d: Diagnostic, written: string): CodeAction | null {
  const key = /needs config key `([^`]+)`/.exec(d.message)?.[1];
  if (!key || !written.startsWith("{")) return null;
  const field = configContextAt(a, d.span.start + 1)?.schema.find((f) => f.key === key);
  if (!field) return null;
  const inner = written.slice(1, -1);
  const entry = `${key}: ${placeholder(field)}`;
  const body = inner.trimEnd();
  // Right after the last field, keeping the object's layout: one line, or a field per line.
  const after = d.span.start + 1 + body.length;
  const comma = body.trim() === "" || body.endsWith(",") ? "" : ",";
  const edit: TextEdit = body.trim() === ""
    ? { span: d.span, newText: `{ ${entry} }` }
    : inner.includes("\n")
    ? {
      span: { start: after, end: after },
      // One field per line needs no comma (a line break separates fields).
      newText: `\n${/\n([ \t]*)[^\n]*$/.exec(body)?.[1] ?? "  "}${entry}`,
    }
    : { span: { start: after, end: d.span.end - 1 }, newText: `${comma} ${entry} ` };
  return {
    title: `Add the required config key \`${key}: ${configTypeText(field.type)}\``,
    diagnostic: d,
    edits: [edit],
    preferred: true,
  };
}

export interface SignatureHelp {
  /** `file.read { path: string, format: "csv" | "jsonl" }`. */
  label: string;
  documentation: string;
  /** Each key's part of the label, as offsets into it, with its doc. */
  parameters: Array<{ label: [number, number]; documentation: string }>;
  /** The key being written, or -1. */
  active: number;
}

/** The contract of the config object around the cursor, with the key being written. */
export function signatureHelp(a: Analysis, offset: number): SignatureHelp | null {
  const context = configContextAt(a, offset);
  if (!context) return null;
  let label = `${context.owner} { `;
  const parameters: SignatureHelp["parameters"] = [];
  context.schema.forEach((f, i) => {
    if (i > 0) label += ", ";
    const text = `${f.key}${f.required ? "" : "?"}: ${configTypeText(f.type)}`;
    parameters.push({ label: [label.length, label.length + text.length], documentation: f.doc });
    label += text;
  });
  label += " }";
  // The key of the field the cursor is in: the last `key:` since the last `,` or line break.
  const before = a.source.slice(context.open + 1, offset);
  const field = before.split(/,|\n/).at(-1) ?? "";
  const key = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:/.exec(field)?.[1] ??
    /^\s*([A-Za-z_][A-Za-z0-9_]*)$/.exec(field)?.[1];
  const active = key === undefined
    ? -1
    : context.schema.findIndex((f) =>
      f.key === key || (!field.includes(":") && f.key.startsWith(key))
    );
  return {
    label,
    documentation: `Config of \`${context.owner}\`.`,
    parameters,
    active,
  };
}
