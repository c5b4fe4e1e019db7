/**
 * A parser for the common subset of PRQL blocks that gives exactly what prql-js's
 * `prql_to_pl` gives (the PL JSON, byte for byte), in a small fraction of its time: prql-js
 * parses a three-line block in about a millisecond (several when its WebAssembly is still cold),
 * which made parsing most of a cold check of a program with hundreds of blocks. Anything
 * outside the subset, and any text that is not valid PRQL, gives null and prql-js parses it,
 * so PRQL's own errors and every construct this file does not know stay prql-js's.
 *
 * The subset: one pipeline of transforms (newlines or `|` between them), function calls with
 * positional, named (`side:left`) and aliased (`x = a`) arguments, identifiers and field
 * access (`this.id`), integer, float, plain string, boolean and null literals, tuples (`{a, b}`,
 * over lines), parenthesised pipelines, ranges of simple terms, the unary operators
 * `- + ! ==` and the binary operators by PRQL's precedence. `tests/compiler/prql_parse_test.ts`
 * compares it with prql-js on every block of the examples and test corpora and on generated
 * variations; a difference there is a bug here, never a reason to widen the subset blindly.
 */

type Kind =
  | "ident"
  | "int"
  | "float"
  | "string"
  | "op"
  | "nl"
  | "("
  | ")"
  | "{"
  | "}"
  | ","
  | "|"
  | ":"
  | "="
  | ".."
  | "."
  | "eof";

interface Token {
  kind: Kind;
  text: string;
  start: number;
  end: number;
  /** The JSON of a literal's value. */
  json?: string;
}

/** Thrown inside the parser when the text leaves the subset; `parsePl` turns it into null. */
class Outside extends Error {}

/** Words PRQL reserves, which start constructs outside the subset. */
const KEYWORDS = new Set([
  "let",
  "into",
  "case",
  "prql",
  "type",
  "module",
  "internal",
  "func",
  "import",
  "enum",
  "from_text",
]);

const BINARY: Array<Record<string, string>> = [
  { "||": "Or" },
  { "&&": "And" },
  { "??": "Coalesce" },
  { "==": "Eq", "!=": "Ne", ">=": "Gte", "<=": "Lte", ">": "Gt", "<": "Lt", "~=": "RegexSearch" },
  { "+": "Add", "-": "Sub" },
  { "*": "Mul", "/": "DivFloat", "//": "DivInt", "%": "Mod" },
];

const UNARY: Record<string, string> = { "-": "Neg", "+": "Add", "!": "Not", "==": "EqSelf" };

/** Operators, longest first so that `==` is never read as `=` `=`. */
const OPERATORS = [
  "==",
  "!=",
  ">=",
  "<=",
  "~=",
  "&&",
  "||",
  "??",
  "//",
  "..",
  ...">+-*/%!<=:|,(){}.",
];

const isIdentStart = (c: string) => /[A-Za-z_]/.test(c);
const isIdentChar = (c: string) => /[A-Za-z0-9_]/.test(c);
const isDigit = (c: string) => c >= "0" && c <= "9";

/** A float as serde_json prints it (shortest round trip, always with a fraction). */
function floatJson(value: number): string {
  const text = String(value);
  // Outside this range the two printers choose exponents differently: leave it to prql-js.
  if (!Number.isFinite(value) || text.includes("e") || Math.abs(value) >= 1e15) throw new Outside();
  if (value !== 0 && Math.abs(value) < 1e-5) throw new Outside();
  return text.includes(".") ? text : `${text}.0`;
}

const I64_MAX = 9223372036854775807n;

/**
 * An integer literal as prql-js writes it: its digits while it fits an i64 (also past what a
 * JavaScript number holds exactly), else a float in serde_json's exponent form, which is what
 * typing a long number into a block gives.
 */
function integerJson(raw: string): string {
  const digits = raw.replaceAll("_", "");
  if (BigInt(digits) <= I64_MAX) return `{"Integer":${BigInt(digits)}}`;
  return `{"Float":${Number(digits).toExponential().replace("e+", "e")}}`;
}

function lex(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const start = i;
    if (c === " " || c === "\t" || c === "\r") {
      i++;
    } else if (c === "\n") {
      tokens.push({ kind: "nl", text: c, start, end: ++i });
    } else if (c === "#") {
      if (text[i + 1] === "!") throw new Outside();
      while (i < text.length && text[i] !== "\n") i++;
    } else if (isIdentStart(c)) {
      while (i < text.length && isIdentChar(text[i])) i++;
      const word = text.slice(start, i);
      // `f"..."`, `s"..."`, `r"..."`: interpolations and raw strings are outside the subset.
      if (text[i] === '"' || text[i] === "'" || KEYWORDS.has(word)) throw new Outside();
      if (word === "true" || word === "false") {
        tokens.push({ kind: "int", text: word, start, end: i, json: `{"Boolean":${word}}` });
      } else if (word === "null") {
        tokens.push({ kind: "int", text: word, start, end: i, json: `"Null"` });
      } else tokens.push({ kind: "ident", text: word, start, end: i });
    } else if (isDigit(c)) {
      while (i < text.length && (isDigit(text[i]) || text[i] === "_")) i++;
      let float = false;
      if (text[i] === "." && text[i + 1] !== ".") {
        if (!isDigit(text[i + 1] ?? "")) throw new Outside();
        float = true;
        i++;
        while (i < text.length && isDigit(text[i])) i++;
      }
      if (text[i] === "e" || text[i] === "E") {
        float = true;
        i++;
        if (text[i] === "+" || text[i] === "-") i++;
        if (!isDigit(text[i] ?? "")) throw new Outside();
        while (i < text.length && isDigit(text[i])) i++;
      }
      const raw = text.slice(start, i);
      // Intervals (`5days`), `0x1f`, misplaced `_`: outside.
      if (isIdentChar(text[i] ?? "") || /_$|__|_\.|\._/.test(raw) || /^0\d/.test(raw)) {
        throw new Outside();
      }
      const value = Number(raw.replaceAll("_", ""));
      if (float) {
        tokens.push({
          kind: "float",
          text: raw,
          start,
          end: i,
          json: `{"Float":${floatJson(value)}}`,
        });
      } else {
        tokens.push({ kind: "int", text: raw, start, end: i, json: integerJson(raw) });
      }
    } else if (c === '"' || c === "'") {
      i++;
      while (i < text.length && text[i] !== c) {
        // Escapes, line breaks and anything but printable ASCII: outside.
        if (text[i] === "\\" || text[i] < " " || text[i] > "~") throw new Outside();
        i++;
      }
      // `""` may open a triple-quoted string; an unclosed string is an error for prql-js.
      if (i >= text.length || i === start + 1) throw new Outside();
      i++;
      const value = text.slice(start + 1, i - 1);
      tokens.push({
        kind: "string",
        text: value,
        start,
        end: i,
        json: `{"String":${JSON.stringify(value)}}`,
      });
    } else {
      const op = OPERATORS.find((o) => text.startsWith(o, i));
      if (!op) throw new Outside();
      i += op.length;
      const kind = (["(", ")", "{", "}", ",", "|", ":", "=", "..", "."] as string[]).includes(op)
        ? op as Kind
        : "op";
      // `**`, `->`, `=>`, `===`: operators outside the subset.
      if (op === "*" && text[i] === "*") throw new Outside();
      if ((op === "-" || op === "=" || op === "==") && (text[i] === ">" || text[i] === "=")) {
        throw new Outside();
      }
      tokens.push({ kind, text: op, start, end: i });
    }
  }
  tokens.push({ kind: "eof", text: "", start: text.length, end: text.length });
  return tokens;
}

/** An expression's PL JSON, and whether it already carries an alias. */
interface Expr {
  json: string;
  aliased: boolean;
}

const plain = (json: string): Expr => ({ json, aliased: false });

function withAlias(e: Expr, alias: string): Expr {
  if (e.aliased) throw new Outside();
  return { json: `${e.json.slice(0, -1)},"alias":${JSON.stringify(alias)}}`, aliased: true };
}

/**
 * The deepest bracket nesting parsed here. prql-js overflows its stack at about 20 levels
 * (`_prql.ts` reports that as a crash, and the engine would fail the same way at run time):
 * deep text is left to prql-js so that a check reports what a run will meet.
 */
const MAX_DEPTH = 8;

class Parser {
  private at = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.at + offset, this.tokens.length - 1)];
  }

  private next(): Token {
    return this.tokens[this.at++];
  }

  private expect(kind: Kind): Token {
    if (this.peek().kind !== kind) throw new Outside();
    return this.next();
  }

  /** Whether only line breaks are left. */
  done(): boolean {
    this.skipLines();
    return this.peek().kind === "eof";
  }

  private skipLines(): void {
    while (this.peek().kind === "nl") this.at++;
  }

  /** Transforms separated by `|` or line breaks; one alone is not wrapped in a pipeline. */
  pipeline(): Expr {
    this.skipLines();
    const steps = [this.step()];
    for (;;) {
      const t = this.peek();
      if (t.kind === "|") {
        this.at++;
        if (this.peek().kind === "nl") throw new Outside();
      } else if (t.kind === "nl") {
        this.skipLines();
        const after = this.peek().kind;
        if (after === "|") throw new Outside();
        if (after === ")" || after === "eof") break;
      } else break;
      steps.push(this.step());
    }
    if (steps.length === 1) return steps[0];
    return plain(`{"Pipeline":{"exprs":[${steps.map((s) => s.json).join(",")}]}}`);
  }

  /** `[alias =] name args...`: a call when arguments follow, else the expression itself. */
  private step(): Expr {
    let alias: string | null = null;
    if (this.peek().kind === "ident" && this.peek(1).kind === "=") {
      alias = this.next().text;
      this.at++;
    }
    const name = this.expression();
    const args: string[] = [];
    const named: string[] = [];
    while (this.startsTerm(this.peek())) {
      const t = this.peek();
      if (t.kind === "ident" && this.peek(1).kind === ":") {
        this.at += 2;
        named.push(`${JSON.stringify(t.text)}:${this.expression().json}`);
      } else if (t.kind === "ident" && this.peek(1).kind === "=") {
        this.at += 2;
        args.push(withAlias(this.expression(), t.text).json);
      } else args.push(this.expression().json);
    }
    let e = name;
    if (args.length > 0 || named.length > 0) {
      const namedJson = named.length > 0 ? `,"named_args":{${named.join(",")}}` : "";
      e = plain(`{"FuncCall":{"name":${name.json},"args":[${args.join(",")}]${namedJson}}}`);
    }
    return alias === null ? e : withAlias(e, alias);
  }

  private startsTerm(t: Token): boolean {
    return ["ident", "int", "float", "string", "(", "{"].includes(t.kind) ||
      (t.kind === "op" && t.text in UNARY);
  }

  private expression(level = 0): Expr {
    if (level === BINARY.length) return this.unary();
    let left = this.expression(level + 1);
    for (;;) {
      const t = this.peek();
      const op = t.kind === "op" ? BINARY[level][t.text] : undefined;
      if (!op) return left;
      this.at++;
      const right = this.expression(level + 1);
      left = plain(`{"Binary":{"left":${left.json},"op":"${op}","right":${right.json}}}`);
    }
  }

  private unary(): Expr {
    const t = this.peek();
    if (t.kind === "op" && t.text in UNARY) {
      this.at++;
      // `-1..5` and `- -a`: how prql-js groups these is not worth guessing.
      if (this.peek().kind === "op" || this.peek(1).kind === "..") throw new Outside();
      return plain(`{"Unary":{"op":"${UNARY[t.text]}","expr":${this.unary().json}}}`);
    }
    return this.range();
  }

  /**
   * `a..b` and `a..` between simple terms, written without spaces around `..` (with spaces
   * prql-js binds it differently). `..b` is left to prql-js.
   */
  private range(): Expr {
    const simple = (t: Token) => ["ident", "int", "float", "string"].includes(t.kind);
    const isTerm = (e: Expr) => /^\{"(Literal|Ident)"/.test(e.json);
    const before = this.peek();
    const start = this.term();
    const dots = this.peek();
    if (dots.kind !== "..") return start;
    const after = this.peek(1);
    // With a space after `..`, prql-js's token (and so its span) takes the space in.
    const tight = after.start === dots.end;
    if (
      !simple(before) || !isTerm(start) || this.tokens[this.at - 1].end !== dots.start || !tight
    ) {
      throw new Outside();
    }
    this.at++;
    const end = simple(after) ? this.term() : null;
    if ((end && !isTerm(end)) || this.peek().kind === "..") throw new Outside();
    return plain(`{"Range":{"start":${start.json},"end":${end?.json ?? "null"}}}`);
  }

  private term(): Expr {
    const t = this.next();
    if ((t.kind === "(" || t.kind === "{") && ++this.depth > MAX_DEPTH) throw new Outside();
    switch (t.kind) {
      case "int":
      case "float":
      case "string":
        return plain(`{"Literal":${t.json}}`);
      case "ident": {
        let e = plain(`{"Ident":${JSON.stringify(t.text)}}`);
        let end = t.end;
        while (this.peek().kind === "." && this.peek().start === end) {
          this.at++;
          const field = this.expect("ident");
          if (field.start !== end + 1) throw new Outside();
          end = field.end;
          e = plain(
            `{"Indirection":{"base":${e.json},"field":{"Name":${JSON.stringify(field.text)}}}}`,
          );
        }
        return e;
      }
      case "(": {
        const inner = this.pipeline();
        this.skipLines();
        this.expect(")");
        this.depth--;
        return inner;
      }
      case "{": {
        const items: string[] = [];
        this.skipLines();
        while (this.peek().kind !== "}") {
          items.push(this.step().json);
          this.skipLines();
          if (this.peek().kind !== ",") break;
          this.at++;
          this.skipLines();
        }
        this.expect("}");
        this.depth--;
        return plain(`{"Tuple":[${items.join(",")}]}`);
      }
      default:
        throw new Outside();
    }
  }
}

/**
 * The PL JSON prql-js's `prql_to_pl` gives for `text`, or null when `text` is outside the
 * subset this parser knows or is not valid PRQL (prql-js then parses it, and reports errors).
 */
export function parsePl(text: string): string | null {
  try {
    const tokens = lex(text);
    const parser = new Parser(tokens);
    const main = parser.pipeline();
    const last = tokens.at(-2);
    if (!parser.done() || !last) return null;
    const first = tokens.find((t) => t.kind !== "nl")!;
    return `{"name":"Project","stmts":[{"VarDef":{"kind":"Main","name":"main","value":${main.json}},` +
      `"span":"1:${first.start}-${last.end}"}]}`;
  } catch (e) {
    if (e instanceof Outside) return null;
    throw e;
  }
}
