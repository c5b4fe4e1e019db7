/**
 * The formatter: prints a syntactically valid `Program` in Heddle's one canonical style
 * (two-space indents, one pipeline stage per line, declaration configs one field per line,
 * small stage configs on one line). Comments are put back where they were: a comment on its
 * own line stays on its own line before the next construct, a trailing comment stays at the
 * end of the line that holds the code before it. At most one blank line is kept where the
 * source had blank lines. It must never change the tree apart from spans (PRQL text only
 * changes its indentation) and must be idempotent.
 */
import type * as Ast from "./ast.ts";

const INDENT = "  ";
const LINE_WIDTH = 100;

export function formatProgram(program: Ast.Program, src: string): string {
  const p = new Printer(src, program.comments);
  program.items.forEach((item, k) => {
    p.startUnit(item.span.start, k > 0);
    printItem(p, item);
    p.newline();
  });
  p.finish();
  return p.text();
}

class Printer {
  private lines: string[] = [];
  private cur = "";
  private depth = 0;
  private next = 0;
  private lastEnd = 0;
  private trailing: string[] = [];
  /** The current line is string content that must be printed even when empty. */
  private keep = false;

  constructor(private readonly src: string, private readonly comments: Ast.Comment[]) {}

  get column(): number {
    return this.cur === "" ? this.depth * INDENT.length : this.cur.length;
  }

  indent(by: number) {
    this.depth += by;
  }

  /** Whether any comment lies inside a span: such constructs are never printed inline. */
  hasComments(span: Ast.Span): boolean {
    let lo = 0;
    let hi = this.comments.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.comments[mid].span.start < span.start) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.comments.length && this.comments[lo].span.start < span.end;
  }

  /** Writes text that came from the source at `at..end`, after the comments before it. */
  word(text: string, at: number, end = at) {
    this.flushBefore(at);
    if (this.cur === "") this.cur = INDENT.repeat(this.depth);
    this.cur += text;
    this.lastEnd = Math.max(this.lastEnd, end);
  }

  /** Writes text that has no place of its own in the source (spaces, `,`). */
  raw(text: string) {
    if (this.cur === "") this.cur = INDENT.repeat(this.depth);
    this.cur += text;
  }

  /** Writes a line of string content exactly as the source has it, without indentation. */
  verbatim(text: string) {
    this.cur = text;
    this.keep = true;
  }

  /** Ends the line; `keepEnd` keeps trailing spaces that belong to a string's content. */
  newline(keepEnd = false) {
    this.takeTrailingOnLine();
    const keep = this.keep;
    this.keep = false;
    if (this.cur === "" && this.trailing.length === 0 && !keep) return;
    let line = this.cur === "" && !keep ? INDENT.repeat(this.depth) : this.cur;
    for (const t of this.trailing) line += ` //${t}`;
    this.trailing = [];
    this.lines.push(keepEnd ? line : line.trimEnd());
    this.cur = "";
  }

  /** Ends an indented block: comments before its closing token stay inside it. */
  dedentBefore(close: number) {
    this.flushBefore(close);
    this.newline();
    this.depth--;
  }

  /** Starts an item, statement or field: keeps one blank line where the source had one. */
  startUnit(at: number, blankAllowed: boolean) {
    this.flushBefore(at, blankAllowed);
    if (blankAllowed && this.blankBetween(this.lastEnd, at)) this.blank();
  }

  finish() {
    this.flushBefore(this.src.length + 1, true);
    this.newline();
  }

  text(): string {
    return this.lines.length === 0 ? "" : this.lines.join("\n") + "\n";
  }

  private blank() {
    if (this.lines.length > 0 && this.lines[this.lines.length - 1] !== "") this.lines.push("");
  }

  private blankBetween(from: number, to: number): boolean {
    return /\n[ \t\r\f\v]*\n/.test(this.src.slice(from, to));
  }

  private isTrailing(c: Ast.Comment): boolean {
    const lineStart = this.src.lastIndexOf("\n", c.span.start - 1) + 1;
    return this.src.slice(lineStart, c.span.start).trim() !== "";
  }

  private takeTrailingOnLine() {
    while (this.next < this.comments.length) {
      const c = this.comments[this.next];
      if (!this.isTrailing(c) || this.src.slice(this.lastEnd, c.span.start).includes("\n")) break;
      this.trailing.push(c.text);
      this.lastEnd = c.span.end;
      this.next++;
    }
  }

  private flushBefore(at: number, blankAllowed = false) {
    while (this.next < this.comments.length && this.comments[this.next].span.start < at) {
      const c = this.comments[this.next];
      this.next++;
      if (this.isTrailing(c)) {
        this.trailing.push(c.text);
      } else {
        const blank = this.blankBetween(this.lastEnd, c.span.start);
        this.newline();
        if (blank && (blankAllowed || this.cur === "")) this.blank();
        this.lines.push(`${INDENT.repeat(this.depth)}//${c.text}`.trimEnd());
      }
      this.lastEnd = c.span.end;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Declarations and statements.

/** `keyword name = `, the head that resource, step and type declarations share. */
function printBinding(
  p: Printer,
  keyword: string,
  item: Ast.ResourceDecl | Ast.StepDecl | Ast.TypeDecl,
) {
  p.word(`${keyword} `, item.span.start);
  p.word(item.name.name, item.name.span.start, item.name.span.end);
  p.raw(" = ");
}

function printItem(p: Printer, item: Ast.Item) {
  switch (item.kind) {
    case "Import":
      p.word("import ", item.span.start);
      p.word(stringText(item.path.value), item.path.span.start, item.path.span.end);
      p.raw(" ");
      p.word(item.alias.name, item.alias.span.start, item.alias.span.end);
      return;
    case "Resource":
      printBinding(p, "resource", item);
      p.word(qualified(item.type), item.type.span.start, item.type.span.end);
      if (item.config !== null) {
        p.raw(" ");
        printObject(p, item.config, true);
      }
      return;
    case "Step":
      printBinding(p, "step", item);
      printStage(p, item.call, true);
      return;
    case "TypeDecl":
      printBinding(p, "type", item);
      printType(p, item.type, true);
      return;
    case "Handler":
    case "Workflow":
      p.word(item.kind === "Handler" ? "handler " : "workflow ", item.span.start);
      p.word(item.name.name, item.name.span.start, item.name.span.end);
      if (item.kind === "Workflow" && item.handler !== null) {
        p.raw(" ? ");
        p.word(item.handler.name, item.handler.span.start, item.handler.span.end);
      }
      p.raw(" {");
      p.newline();
      p.indent(1);
      item.body.forEach((st, k) => {
        p.startUnit(st.span.start, k > 0);
        printStatement(p, st);
        p.newline();
      });
      p.dedentBefore(item.span.end - 1);
      p.word("}", item.span.end - 1, item.span.end);
      return;
    case "ErrorItem":
      // Unreachable: files with syntax errors are never formatted.
      return;
  }
}

function printStatement(p: Printer, st: Ast.Statement) {
  st.pipeline.stages.forEach((stage, k) => {
    if (k > 0) {
      p.newline();
      p.word("| ", stage.span.start);
    }
    printStage(p, stage, false);
  });
  if (st.binding !== null) {
    p.newline();
    p.word("> ", st.binding.span.start);
    p.word(st.binding.name, st.binding.span.start, st.binding.span.end);
  }
}

function printStage(p: Printer, stage: Ast.Stage, inDecl: boolean) {
  const s = stage.span;
  switch (stage.kind) {
    case "Wildcard":
      p.word("*", s.start, s.start + 1);
      break;
    case "Ref":
      p.word(stage.name.name, s.start, stage.name.span.end);
      break;
    case "Prql":
      printPrql(p, stage);
      break;
    case "Call": {
      const injections = stage.injections.length === 0
        ? ""
        : `<${stage.injections.map((i) => `${i.slot.name}=${i.resource.name}`).join(", ")}>`;
      const start = s.start;
      const target = qualified(stage.target);
      if (inDecl && injections !== "") {
        p.word(injections + " " + target, start, stage.target.span.end);
      } else {
        p.word(target, start, stage.target.span.end);
        if (injections !== "") p.raw(" " + injections);
      }
      if (stage.config !== null) {
        p.raw(" ");
        printObject(p, stage.config, inDecl);
      }
      break;
    }
    case "ErrorStage":
      break;
  }
  if (stage.handler !== null) {
    p.raw(" ? ");
    p.word(stage.handler.name, stage.handler.span.start, stage.handler.span.end);
  }
  if (stage.retry !== null) {
    p.raw(" retry ");
    printObject(p, stage.retry, false);
  }
  if (stage.annotation !== null) {
    p.raw(": ");
    printType(p, stage.annotation, false);
  }
}

function printPrql(p: Printer, stage: Ast.PrqlStage) {
  const lines = prqlLines(stage.text);
  if (lines.length === 1 && !stage.text.includes("\n")) {
    p.word(`(${lines[0].text})`, stage.span.start, stage.span.end);
    return;
  }
  p.word("(", stage.span.start, stage.textSpan.start);
  p.newline();
  for (const line of lines) {
    if (line.verbatim) p.verbatim(line.text);
    else p.raw(line.text === "" ? "" : INDENT + line.text);
    p.newline(line.open);
  }
  p.word(")", stage.span.end - 1, stage.span.end);
}

/**
 * A line of a PRQL block as the formatter prints it. Lines that start inside a triple-quoted
 * string are string content: they keep their text exactly (`verbatim`), and a line that ends
 * inside one (`open`) keeps its trailing spaces.
 */
export interface PrqlLine {
  text: string;
  verbatim: boolean;
  open: boolean;
}

/** PRQL text as lines, dedented to its least-indented code line, outer blank lines dropped. */
export function prqlLines(text: string): PrqlLine[] {
  const raw = text.split(/\r?\n/);
  let quote: string | null = null;
  const lines = raw.map((l): PrqlLine => {
    const verbatim = quote !== null;
    quote = scanStrings(l, quote);
    if (verbatim) return { text: l, verbatim, open: quote !== null };
    const indented = l.replace(/^[ \t]+/, (ws) => ws.replaceAll("\t", INDENT));
    return { text: quote === null ? indented.trimEnd() : indented, verbatim, open: quote !== null };
  });
  const blank = (l: PrqlLine | undefined) => l !== undefined && !l.verbatim && l.text === "";
  while (blank(lines[0])) lines.shift();
  while (blank(lines[lines.length - 1])) lines.pop();
  const code = lines.filter((l) => !l.verbatim && l.text !== "");
  // A fold, not `Math.min(...)`: a block can have more lines than a call takes arguments.
  const cut = code.reduce(
    (m, l) => Math.min(m, l.text.length - l.text.trimStart().length),
    Infinity,
  );
  return lines.map((l) => l.verbatim ? l : { ...l, text: l.text.slice(cut) });
}

/**
 * Follows PRQL's strings and `#` comments through one line: given the triple quote the line
 * starts inside (or null), returns the one it ends inside. Ordinary strings end on their line.
 */
function scanStrings(line: string, quote: string | null): string | null {
  let i = 0;
  while (i < line.length) {
    if (quote !== null) {
      const end = line.indexOf(quote, i);
      if (end < 0) return quote;
      i = end + 3;
      quote = null;
      continue;
    }
    const c = line[i];
    if (c === "#") return null;
    if (line.startsWith('"""', i) || line.startsWith("'''", i)) {
      quote = line.slice(i, i + 3);
      i += 3;
    } else if (c === '"' || c === "'") {
      i++;
      while (i < line.length && line[i] !== c) i += line[i] === "\\" ? 2 : 1;
      i++;
    } else i++;
  }
  return quote;
}

// ---------------------------------------------------------------------------------------
// Values and types.

function qualified(q: Ast.QualifiedName): string {
  return `${q.module.name}.${q.member.name}`;
}

export function stringText(value: string): string {
  // Control characters are exactly what must be escaped for display.
  // deno-lint-ignore no-control-regex
  const escaped = value.replace(/[\\"\x00-\x1f\x7f]/g, (c) => {
    switch (c) {
      case "\\":
        return "\\\\";
      case '"':
        return '\\"';
      case "\n":
        return "\\n";
      case "\r":
        return "\\r";
      case "\t":
        return "\\t";
      case "\0":
        return "\\0";
      default:
        return `\\u{${c.charCodeAt(0).toString(16)}}`;
    }
  });
  return `"${escaped}"`;
}

/** A value written on one line. */
function inlineValue(v: Ast.Value): string {
  switch (v.kind) {
    case "String":
      return stringText(v.value);
    case "Number":
    case "Duration":
      return v.raw;
    case "Bool":
      return String(v.value);
    case "Null":
      return "null";
    case "List":
      return `[${v.items.map(inlineValue).join(", ")}]`;
    case "Object":
      return v.fields.length === 0
        ? "{}"
        : `{ ${v.fields.map((f) => `${f.key.name}: ${inlineValue(f.value)}`).join(", ")} }`;
    case "Env":
      return `${v.secret ? "secret" : "env"}(${stringText(v.name.value)}${
        v.default === null ? "" : `, ${stringText(v.default.value)}`
      })`;
    case "ErrorValue":
      return "";
  }
}

function fitsInline(p: Printer, v: Ast.Value | Ast.TypeExpr, text: string): boolean {
  return !p.hasComments(v.span) && p.column + text.length <= LINE_WIDTH;
}

function printValue(p: Printer, v: Ast.Value) {
  if (v.kind === "Object") return printObject(p, v, false);
  if (v.kind === "List") {
    const inline = inlineValue(v);
    if (v.items.length === 0 || fitsInline(p, v, inline)) {
      return p.word(inline, v.span.start, v.span.end);
    }
    p.word("[", v.span.start, v.span.start + 1);
    p.newline();
    p.indent(1);
    v.items.forEach((item, k) => {
      p.startUnit(item.span.start, k > 0);
      printValue(p, item);
      p.newline();
    });
    p.dedentBefore(v.span.end - 1);
    p.word("]", v.span.end - 1, v.span.end);
    return;
  }
  p.word(inlineValue(v), v.span.start, v.span.end);
}

function printObject(p: Printer, o: Ast.ObjectLit, multiline: boolean) {
  if (o.fields.length === 0 && !p.hasComments(o.span)) {
    return p.word("{}", o.span.start, o.span.end);
  }
  const inline = inlineValue(o);
  if (!multiline && fitsInline(p, o, inline)) return p.word(inline, o.span.start, o.span.end);
  p.word("{", o.span.start, o.span.start + 1);
  p.newline();
  p.indent(1);
  o.fields.forEach((f, k) => {
    p.startUnit(f.span.start, k > 0);
    p.word(`${f.key.name}: `, f.key.span.start, f.key.span.end);
    printValue(p, f.value);
    p.newline();
  });
  p.dedentBefore(o.span.end - 1);
  p.word("}", o.span.end - 1, o.span.end);
}

function inlineType(t: Ast.TypeExpr): string {
  switch (t.kind) {
    case "NamedType":
      return t.name.name + (t.nullable ? "?" : "");
    case "ListType":
      return `[${inlineType(t.element)}]${t.nullable ? "?" : ""}`;
    case "RowType": {
      const parts = t.fields.map((f) => `${f.name.name}: ${inlineType(f.type)}`);
      if (t.open) parts.push("..");
      return parts.length === 0 ? "{}" : `{ ${parts.join(", ")} }`;
    }
  }
}

function printType(p: Printer, t: Ast.TypeExpr, multiline: boolean) {
  const inline = inlineType(t);
  if (t.kind !== "RowType" || t.fields.length === 0 || (!multiline && fitsInline(p, t, inline))) {
    return p.word(inline, t.span.start, t.span.end);
  }
  p.word("{", t.span.start, t.span.start + 1);
  p.newline();
  p.indent(1);
  t.fields.forEach((f, k) => {
    p.startUnit(f.span.start, k > 0);
    p.word(`${f.name.name}: `, f.name.span.start, f.name.span.end);
    printType(p, f.type, false);
    p.newline();
  });
  if (t.open) p.raw("..");
  p.dedentBefore(t.span.end - 1);
  p.word("}", t.span.end - 1, t.span.end);
}
