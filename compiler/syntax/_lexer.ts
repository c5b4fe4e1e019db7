/**
 * The lexer: source text to tokens, comments and lexical diagnostics. Each token rule is an
 * arcsecond parser over the source string; a hand-written loop around `choice(rules)` keeps
 * going after characters no rule accepts, so lexing never fails and never throws.
 *
 * One decision is contextual: `(` opens an inline PRQL block unless it follows `env` or
 * `secret`, and a PRQL block is captured whole by an iterative scan (nesting depth is a
 * counter, so 20,000 nested parentheses cost no stack). Newlines are not tokens; each token
 * records whether a line break precedes it, which is all the grammar needs.
 */
import { choice } from "arcsecond";
import type { Comment } from "./ast.ts";
import type { Diagnostic, Span } from "../diagnostics/_types.ts";
import { SYNTAX_CODES, type SyntaxCodeName } from "./_codes.ts";
import { type Parser, primitive, runAt } from "./_arc.ts";

export type TokenKind =
  /** A name or keyword: keywords are contextual and recognised by the grammar. */
  | "ident"
  /** A double-quoted string; `value` is the decoded text. */
  | "string"
  /** An integer or float; `value` is its numeric value. */
  | "number"
  /** A number with a unit; `value` is milliseconds. */
  | "duration"
  /** Punctuation such as `{`, `|`, `..`. */
  | "punct"
  /** A whole inline PRQL block `( ... )`; `value` is the text between the parentheses. */
  | "prql"
  /** The end of the file; always the last token. */
  | "eof";

export interface Token {
  kind: TokenKind;
  /** The source text of the token. */
  text: string;
  start: number;
  end: number;
  /** A line break (or the start of the file) lies between this token and the previous one. */
  nl: boolean;
  /** The token is the first thing on its line and starts in column 1. */
  col0: boolean;
  value: string | number | null;
}

export interface Lexed {
  tokens: Token[];
  comments: Comment[];
  diagnostics: Diagnostic[];
}

interface LexData {
  src: string;
  /** The text of the previous token, to decide what `(` means. */
  prev: string;
  diagnostics: Diagnostic[];
}

type Lexeme =
  | { kind: "trivia"; newline: boolean }
  | { kind: "comment"; text: string }
  | { kind: Exclude<TokenKind, "eof">; value: string | number | null };

export function syntaxDiagnostic(
  name: SyntaxCodeName,
  message: string,
  span: Span,
  hints: string[] = [],
  labels: Diagnostic["labels"] = [],
): Diagnostic {
  return { code: SYNTAX_CODES[name].code, severity: "error", message, span, labels, hints };
}

function rule(
  re: RegExp,
  make: (text: string, start: number, data: LexData) => Lexeme,
): Parser<Lexeme, string, LexData> {
  const sticky = new RegExp(re.source, "y");
  return primitive<Lexeme, string, LexData>((data, index) => {
    sticky.lastIndex = index;
    const m = sticky.exec(data.src);
    if (m === null || m[0].length === 0) return { error: "no token" };
    return { value: make(m[0], index, data), next: index + m[0].length };
  });
}

const whitespace = rule(/[ \t\r\n\f\v\u00a0\ufeff]+/, (text) => ({
  kind: "trivia",
  newline: text.includes("\n"),
}));

const comment = rule(/\/\/[^\n]*/, (text) => ({
  kind: "comment",
  text: text.slice(2).replace(/\r$/, ""),
}));

const ident = rule(/[A-Za-z_][A-Za-z0-9_]*/, (text) => ({ kind: "ident", value: text }));

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

const number = rule(
  /-?[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9]+)?[A-Za-z_]*/,
  (text, start, data) => {
    const unit = /[A-Za-z_]*$/.exec(text)![0];
    const digits = text.slice(0, text.length - unit.length);
    const value = Number(digits.replaceAll("_", ""));
    const span = { start, end: start + text.length };
    if (!Number.isFinite(value) || (!/[.eE]/.test(digits) && !Number.isSafeInteger(value))) {
      data.diagnostics.push(
        syntaxDiagnostic(
          "invalidNumber",
          `number \`${digits}\` cannot be represented exactly`,
          span,
          ["integers must lie between -(2^53 - 1) and 2^53 - 1"],
        ),
      );
    }
    if (unit === "") return { kind: "number", value };
    const factor = DURATION_UNITS[unit];
    if (factor === undefined) {
      data.diagnostics.push(
        syntaxDiagnostic(
          "invalidDuration",
          `expected a duration unit \`ms\`, \`s\`, \`m\` or \`h\`, found \`${unit}\``,
          { start: start + digits.length, end: span.end },
          unit === "d" ? [`write days as hours: \`${Number(digits) * 24}h\``] : [
            "durations are written like `250ms`, `30s`, `5m` or `1h`",
          ],
        ),
      );
      return { kind: "duration", value: value };
    }
    return { kind: "duration", value: value * factor };
  },
);

const ESCAPES: Record<string, string> = {
  n: "\n",
  r: "\r",
  t: "\t",
  "0": "\0",
  "\\": "\\",
  '"': '"',
};

/** Decodes the escapes of a string body, reporting the invalid ones. */
function decodeString(body: string, bodyStart: number, data: LexData): string {
  if (!body.includes("\\")) return body;
  return body.replace(/\\(u\{[0-9A-Fa-f]{1,6}\}|.?)/gs, (esc, what: string, at: number) => {
    if (what.startsWith("u{")) {
      const cp = parseInt(what.slice(2, -1), 16);
      if (cp <= 0x10ffff) return String.fromCodePoint(cp);
    } else if (what in ESCAPES) return ESCAPES[what];
    data.diagnostics.push(
      syntaxDiagnostic(
        "invalidEscape",
        `\`${esc}\` is not a valid escape sequence`,
        { start: bodyStart + at, end: bodyStart + at + esc.length },
        ['write `\\\\` for a backslash, or one of `\\n`, `\\t`, `\\"`, `\\u{1F600}`'],
      ),
    );
    return esc;
  });
}

const string = rule(/"(?:[^"\\\n\r]|\\[^\n\r]?)*"?/, (text, start, data) => {
  const closed = text.length >= 2 && text.endsWith('"') && !/(^|[^\\])(\\\\)*\\"$/.test(text);
  if (!closed) {
    data.diagnostics.push(
      syntaxDiagnostic(
        "unterminatedString",
        'unterminated string: expected a closing `"` before the end of the line',
        { start, end: start + text.length },
        ["strings cannot span lines; write `\\n` for a line break"],
      ),
    );
  }
  const body = text.slice(1, closed ? -1 : undefined);
  return { kind: "string", value: decodeString(body, start + 1, data) };
});

const punct = rule(/\.\.|[{}\[\]<>=,:.|?*)]/, (text) => ({ kind: "punct", value: text }));

/**
 * Scans a PRQL block from its `(` to the matching `)`, skipping PRQL strings and `#`
 * comments. Returns the index after `)`, or -1 when the file ends first.
 */
export function scanPrql(src: string, open: number): number {
  let depth = 0;
  let i = open;
  const n = src.length;
  while (i < n) {
    const c = src.charCodeAt(i);
    if (c === 0x28 /* ( */) {
      depth++;
      i++;
    } else if (c === 0x29 /* ) */) {
      depth--;
      i++;
      if (depth === 0) return i;
    } else if (c === 0x23 /* # */) {
      while (i < n && src.charCodeAt(i) !== 0x0a) i++;
    } else if (c === 0x22 || c === 0x27 /* " ' */) {
      const raw = i > 0 && (src[i - 1] === "r" || src[i - 1] === "R") &&
        !/\w/.test(src[i - 2] ?? "");
      i = skipPrqlString(src, i, raw);
    } else i++;
  }
  return -1;
}

function skipPrqlString(src: string, at: number, raw: boolean): number {
  const q = src[at];
  const triple = src.startsWith(q + q + q, at);
  const close = triple ? q + q + q : q;
  let i = at + close.length;
  while (i < src.length) {
    if (!raw && src[i] === "\\") {
      i += 2;
      continue;
    }
    if (src.startsWith(close, i)) return i + close.length;
    // A single-quoted PRQL string cannot span lines; stopping at the line end keeps one
    // stray quote from swallowing the rest of the block.
    if (!triple && src[i] === "\n") return i;
    i++;
  }
  return i;
}

const DECL_KEYWORDS = new Set(["import", "resource", "step", "handler", "workflow", "type"]);

/** Where an unclosed PRQL block most likely ends: before the next declaration line. */
function prqlRecoveryEnd(src: string, open: number): number {
  const re = /\n(?=(import|resource|step|handler|workflow|type)\b)/g;
  re.lastIndex = open;
  const m = re.exec(src);
  return m === null ? src.length : m.index;
}

const paren = rule(/\(/, (_text, start, data) => {
  if (data.prev === "env" || data.prev === "secret") return { kind: "punct", value: "(" };
  return { kind: "prql", value: start };
});

const lexeme = choice([whitespace, ident, punct, string, number, comment, paren]) as Parser<
  Lexeme,
  string,
  LexData
>;

export function lex(src: string): Lexed {
  const data: LexData = { src, prev: "", diagnostics: [] };
  const tokens: Token[] = [];
  const comments: Comment[] = [];
  let i = 0;
  let nl = true;
  let lineStart = true;
  let junkStart = -1;
  const flushJunk = (end: number) => {
    if (junkStart < 0) return;
    const text = src.slice(junkStart, end);
    data.diagnostics.push(
      syntaxDiagnostic(
        "unexpectedCharacter",
        text.length === 1 || [...text].length === 1
          ? `unexpected character \`${printable(text)}\``
          : `unexpected characters \`${printable(text.slice(0, 20))}${
            text.length > 20 ? "…" : ""
          }\``,
        { start: junkStart, end },
        text.startsWith("#") ? ["comments start with `//`"] : [],
      ),
    );
    junkStart = -1;
  };
  while (i < src.length) {
    const out = runAt(lexeme, data, i);
    if (out.isError) {
      if (junkStart < 0) junkStart = i;
      i += src.codePointAt(i)! > 0xffff ? 2 : 1;
      lineStart = false;
      continue;
    }
    flushJunk(i);
    const lx = out.result;
    let end = out.index;
    if (lx.kind === "trivia") {
      nl ||= lx.newline;
      lineStart = src.charCodeAt(end - 1) === 0x0a;
    } else if (lx.kind === "comment") {
      comments.push({ kind: "Comment", text: lx.text, span: { start: i, end } });
      lineStart = false;
    } else {
      let value = lx.value;
      if (lx.kind === "prql") {
        const close = scanPrql(src, i);
        if (close < 0) {
          end = prqlRecoveryEnd(src, i);
          data.diagnostics.push(
            syntaxDiagnostic(
              "unclosedPrql",
              "unclosed PRQL block: expected `)` to end the block opened here",
              { start: i, end: i + 1 },
              ["check that every `(` inside the block is closed and every PRQL string ends"],
            ),
          );
          value = src.slice(i + 1, end);
        } else {
          end = close;
          value = src.slice(i + 1, end - 1);
        }
      }
      const text = src.slice(i, end);
      tokens.push({ kind: lx.kind, text, start: i, end, nl, col0: nl && lineStart, value });
      data.prev = text;
      nl = false;
      lineStart = false;
    }
    i = end;
  }
  flushJunk(i);
  tokens.push({
    kind: "eof",
    text: "",
    start: src.length,
    end: src.length,
    nl: true,
    col0: true,
    value: null,
  });
  return { tokens, comments, diagnostics: data.diagnostics };
}

function printable(text: string): string {
  // Control characters are exactly what must be escaped for display.
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f`]/g, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
}

export function isDeclKeyword(t: Token): boolean {
  return t.kind === "ident" && DECL_KEYWORDS.has(t.text);
}
