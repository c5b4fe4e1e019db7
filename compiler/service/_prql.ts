/**
 * What an editor needs to know about the PRQL inside a block: its words (a small lexer
 * that knows PRQL's strings, comments and transforms, enough to colour and to find the word
 * under the cursor; prql-js stays the one that decides what the block means), the columns
 * the block reads (`input`'s, with their type and the stage they come from) and the aliases
 * it defines. It must never throw on half-typed text: a block is mostly edited while broken.
 */
import type { SchemaField } from "../types/mod.ts";
import type * as Ast from "../syntax/mod.ts";
import type { Analysis } from "./_analysis.ts";
import { fieldTypeText } from "./_describe.ts";

/** PRQL's transforms: keywords in the editor's eyes. */
export const PRQL_TRANSFORMS = new Set([
  "from",
  "select",
  "filter",
  "derive",
  "group",
  "aggregate",
  "sort",
  "take",
  "join",
  "window",
  "append",
  "loop",
  "union",
  "intersect",
  "remove",
  "distinct",
  "case",
  "let",
  "into",
  "func",
  "prql",
]);

/** Functions a block commonly calls (aggregations, windows, rounding). */
export const PRQL_FUNCTIONS = new Map<string, string>([
  ["count", "the number of rows (`count this`)"],
  ["count_distinct", "the number of distinct values"],
  ["sum", "the sum of a column"],
  ["min", "the smallest value"],
  ["max", "the largest value"],
  ["average", "the mean of a column"],
  ["stddev", "the standard deviation of a column"],
  ["any", "true when any value is true"],
  ["all", "true when every value is true"],
  ["row_number", "the row's position in its group"],
  ["rank", "the row's rank in its group"],
  ["lag", "the value some rows before"],
  ["lead", "the value some rows after"],
  ["first", "the first value"],
  ["last", "the last value"],
  ["round", "rounds to some digits"],
]);

export type PrqlTokenKind =
  | "transform"
  | "function"
  | "name"
  | "builtin"
  | "string"
  | "number"
  | "comment"
  | "operator";

export interface PrqlToken {
  kind: PrqlTokenKind;
  /** Offsets in the document. */
  start: number;
  end: number;
  text: string;
}

const TOKEN = new RegExp(
  [
    /(?<comment>#[^\n]*|^[ \t]*\/\/[^\n]*)/.source,
    /(?<string>(?:(?<![A-Za-z0-9_])[fsr])?(?:"""[\s\S]*?(?:"""|$(?![\s\S]))|'''[\s\S]*?(?:'''|$(?![\s\S]))|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?))/
      .source,
    /(?<date>@[0-9][0-9T:.\-+Z]*)/.source,
    /(?<number>\b[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:e[+-]?[0-9]+)?[a-z]*)/.source,
    /(?<name>[A-Za-z_][A-Za-z0-9_]*)/.source,
    /(?<operator>==|!=|>=|<=|~=|&&|\|\||\?\?|\*\*|\/\/|->|=>|\.\.|[<>+\-*/%!=|])/.source,
  ].join("|"),
  "gm",
);

/** The block's tokens, at document offsets; whitespace and punctuation are left out. */
export function prqlTokens(stage: Ast.PrqlStage): PrqlToken[] {
  const base = stage.textSpan.start;
  const out: PrqlToken[] = [];
  for (const m of stage.text.matchAll(TOKEN)) {
    const g = m.groups!;
    const text = m[0];
    const start = base + m.index!;
    const kind: PrqlTokenKind = g.comment !== undefined
      ? "comment"
      : g.string !== undefined
      ? "string"
      : g.date !== undefined || g.number !== undefined
      ? "number"
      : g.operator !== undefined
      ? "operator"
      : PRQL_TRANSFORMS.has(text)
      ? "transform"
      : text === "this" || text === "that" || text === "input" || text === "true" ||
          text === "false" || text === "null"
      ? "builtin"
      : PRQL_FUNCTIONS.has(text) && !/^\s*=(?!=)/.test(stage.text.slice(m.index! + text.length))
      ? "function"
      : "name";
    // A `//` line comment's match includes its indentation: the token starts at the slashes.
    const lead = kind === "comment" ? text.length - text.trimStart().length : 0;
    out.push({ kind, start: start + lead, end: start + text.length, text: text.slice(lead) });
  }
  return out;
}

/** The PRQL block whose text holds `at` (touching its ends counts). */
export function prqlStageAt(a: Analysis, at: number): Ast.PrqlStage | null {
  // Blocks do not overlap and are in text order: the last one starting at or before `at`.
  const stages = prqlStages(a);
  let lo = 0;
  let hi = stages.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (stages[mid].textSpan.start <= at) lo = mid;
    else hi = mid - 1;
  }
  const stage = stages[lo];
  return stage && stage.textSpan.start <= at && at <= stage.textSpan.end ? stage : null;
}

/**
 * Each program's PRQL blocks in text order, found once: hover and completion ask on every
 * keystroke, and a large program has hundreds of blocks.
 */
const stagesOf = new WeakMap<Ast.Program, Ast.PrqlStage[]>();

export function prqlStages(a: Analysis): Ast.PrqlStage[] {
  const program = a.resolved.program;
  const known = stagesOf.get(program);
  if (known) return known;
  const out: Ast.PrqlStage[] = [];
  for (const item of program.items) {
    if (item.kind !== "Workflow" && item.kind !== "Handler") continue;
    for (const st of item.body) {
      for (const stage of st.pipeline.stages) if (stage.kind === "Prql") out.push(stage);
    }
  }
  out.sort((x, y) => x.textSpan.start - y.textSpan.start);
  stagesOf.set(program, out);
  return out;
}

/** An alias the block defines: `derive x = ...`, `aggregate {n = count this}`, `select {a = b}`. */
export interface PrqlAlias {
  name: string;
  /** The name where it is defined. */
  start: number;
  end: number;
  /** The expression it stands for, as written (to the end of its line or its `,`). */
  expression: string;
}

export function prqlAliases(stage: Ast.PrqlStage): PrqlAlias[] {
  const out: PrqlAlias[] = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)\s*([^,\n}]*)/g;
  for (const m of stage.text.matchAll(re)) {
    const before = stage.text.slice(0, m.index!);
    // `==`'s second `=` or `!=`, `<=`, `>=`: not an assignment.
    if (/[=!<>]$/.test(before)) continue;
    const start = stage.textSpan.start + m.index!;
    out.push({ name: m[1], start, end: start + m[1].length, expression: m[2].trim() });
  }
  return out;
}

/** The rows that flow into a block: `input`'s fields, or null when inference could not type them. */
export function prqlInput(a: Analysis, stage: Ast.PrqlStage): SchemaField[] | null {
  return a.typed?.stages.get(stage)?.input?.fields ?? null;
}

/** The statement (and its pipeline position) that holds a stage. */
function statementOf(a: Analysis, stage: Ast.Stage) {
  for (const item of a.resolved.program.items) {
    if (item.kind !== "Workflow" && item.kind !== "Handler") continue;
    for (const st of item.body) {
      const index = st.pipeline.stages.indexOf(stage);
      if (index >= 0) return { owner: item, statement: st, index };
    }
  }
  return null;
}

/** How a stage reads in a sentence: `file.read`, `to_cents`, the PRQL block, `*`. */
function stageText(a: Analysis, stage: Ast.Stage): string {
  switch (stage.kind) {
    case "Call":
      return `\`${stage.target.module.name}.${stage.target.member.name}\``;
    case "Ref":
      return `\`${stage.name.name}\``;
    case "Prql":
      return `the PRQL block at line ${a.lines.locate(stage.span.start).line}`;
    default:
      return "`*` (the failed rows)";
  }
}

/**
 * The stage a column of a block's input comes from: walking upstream, the first stage
 * whose output has it and whose input does not (a source, the step that adds it, the block
 * that derives it). Through a stream reference it goes on in the statement that binds it.
 */
export function columnOrigin(a: Analysis, stage: Ast.Stage, column: string): string | null {
  const at = statementOf(a, stage);
  if (!at) return null;
  let statement = at.statement;
  let i = at.index - 1;
  for (let guard = 0; i >= 0 && guard < 10_000; guard++) {
    const s = statement.pipeline.stages[i];
    if (s.kind === "Ref" && i === 0) {
      const bound = at.owner.body.find((st) => st.binding?.name === s.name.name);
      if (bound) {
        statement = bound;
        i = bound.pipeline.stages.length - 1;
        continue;
      }
    }
    const inInput = a.typed?.stages.get(s)?.input?.fields.some((f) => f.name === column);
    if (!inInput) return stageText(a, s);
    i--;
  }
  return null;
}

/** Hover on a word of a PRQL block: an alias (its definition and type) or a column of `input`. */
export function prqlHover(
  a: Analysis,
  offset: number,
): { span: { start: number; end: number }; markdown: string } | null {
  const stage = prqlStageAt(a, offset);
  if (!stage) return null;
  const word = prqlTokens(stage).find((t) =>
    t.kind === "name" && t.start <= offset && offset <= t.end
  );
  if (!word) return null;
  const span = { start: word.start, end: word.end };
  const types = a.typed?.stages.get(stage);
  const alias = prqlAliases(stage).find((x) => x.name === word.text && x.start <= word.start);
  if (alias) {
    const out = types?.output?.fields.find((f) => f.name === alias.name);
    const line = a.lines.locate(alias.start).line;
    return {
      span,
      markdown: [
        "```prql",
        `${alias.name}${out ? `: ${fieldTypeText(out)}` : ""}`,
        "```",
        `Defined in this block at line ${line}: \`${alias.name} = ${alias.expression}\`.`,
      ].join("\n"),
    };
  }
  const column = types?.input?.fields.find((f) => f.name === word.text);
  if (!column) return null;
  const origin = columnOrigin(a, stage, column.name);
  return {
    span,
    markdown: [
      "```prql",
      `${column.name}: ${fieldTypeText(column)}`,
      "```",
      `A column of \`input\`${origin ? `, from ${origin}` : ""}.`,
    ].join("\n"),
  };
}
