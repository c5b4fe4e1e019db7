/**
 * The table of syntax diagnostic codes. Codes are stable: tools, tests and
 * `docs/diagnostics.md` refer to them, so a code is never renumbered or reused for a
 * different mistake. This file must never hold message text that depends on input; it
 * names the kinds of mistake, the parser words each instance.
 */

export interface CodeInfo {
  code: string;
  title: string;
  explanation: string;
}

export const SYNTAX_CODES = {
  unexpectedCharacter: {
    code: "HE0001",
    title: "unexpected character",
    explanation: "The text contains a character that cannot start any token of the language.",
  },
  unterminatedString: {
    code: "HE0002",
    title: "unterminated string",
    explanation: 'A string literal is missing its closing `"` before the end of the line.',
  },
  unexpectedToken: {
    code: "HE0003",
    title: "unexpected token",
    explanation: "The parser expected one kind of token and found another.",
  },
  unclosedDelimiter: {
    code: "HE0004",
    title: "unclosed delimiter",
    explanation: "A `{`, `[` or `<` is never closed by its matching `}`, `]` or `>`.",
  },
  unclosedPrql: {
    code: "HE0005",
    title: "unclosed PRQL block",
    explanation: "An inline PRQL block `( ... )` reaches the end of the file without its `)`.",
  },
  invalidEscape: {
    code: "HE0006",
    title: "invalid escape sequence",
    explanation: 'Strings accept `\\n`, `\\r`, `\\t`, `\\0`, `\\\\`, `\\"` and `\\u{XXXX}` only.',
  },
  invalidDuration: {
    code: "HE0007",
    title: "invalid duration unit",
    explanation: "A number is directly followed by letters that are not `ms`, `s`, `m` or `h`.",
  },
  expectedDeclaration: {
    code: "HE0008",
    title: "expected a declaration",
    explanation:
      "At the top level only `import`, `resource`, `step`, `handler`, `workflow` and `type` may start a line.",
  },
  tooDeep: {
    code: "HE0009",
    title: "nesting too deep",
    explanation: "Objects, lists or row types are nested more deeply than the parser allows.",
  },
  duplicateKey: {
    code: "HE0010",
    title: "duplicate key",
    explanation: "An object, row type or stage sets the same key or clause twice.",
  },
  missingSeparator: {
    code: "HE0011",
    title: "missing separator",
    explanation:
      "Fields, list items and pipeline stages need `,`, a line break or `|` between them.",
  },
  invalidEnvRef: {
    code: "HE0012",
    title: "invalid env or secret reference",
    explanation:
      "`env` takes a string name and an optional string default; `secret` takes a string name only.",
  },
  missingStage: {
    code: "HE0013",
    title: "missing pipeline stage",
    explanation: "A `|` must be followed by a stage: a call, a name, a PRQL block or `*`.",
  },
  emptyPrql: {
    code: "HE0014",
    title: "empty PRQL block",
    explanation: "An inline PRQL block `( )` holds no query.",
  },
  invalidNumber: {
    code: "HE0015",
    title: "invalid number",
    explanation: "A numeric literal is malformed or too large to be represented exactly.",
  },
  sourceTooLarge: {
    code: "HE0016",
    title: "source too large",
    explanation:
      "The program is longer than the caller's limit (`check()`'s `limits.maxSourceBytes`, e.g. a daemon's deploy limit); it is not parsed.",
  },
} as const satisfies Record<string, CodeInfo>;

export type SyntaxCodeName = keyof typeof SYNTAX_CODES;

/** Every syntax code, in code order, for documentation and tests. */
export const SYNTAX_CODE_TABLE: readonly CodeInfo[] = Object.values(SYNTAX_CODES);
