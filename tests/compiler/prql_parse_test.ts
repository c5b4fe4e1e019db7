/**
 * The PRQL subset parser (compiler/types/_prql_parse.ts) must give exactly what prql-js's
 * `prql_to_pl` gives, or nothing (null: prql-js then parses the block). Compared here on every
 * PRQL block of the examples and test corpora, on hand-written edge cases (spacing, comments,
 * precedence, ranges, literals, errors) and on seeded random expressions. It must never accept
 * a difference, nor a parser that declines everything: the corpus must be mostly parsed here.
 */
import assert from "node:assert/strict";
import { prqlc } from "../../compiler/mod.ts";
import { parsePl } from "../../compiler/types/_prql_parse.ts";
import { generateProgram } from "../../bench/parse.ts";
import { blocks, corpusBlocks } from "./_prql_blocks.ts";
import { prng } from "../_prng.ts";

/** prql-js's PL for `text`, or null when it reports an error. */
function reference(text: string): string | null {
  try {
    return prqlc.prqlToPl(text);
  } catch {
    return null;
  }
}

/** Asserts the parser agrees with prql-js on `text`; true when it parsed it. */
function agrees(text: string): boolean {
  const ours = parsePl(text);
  if (ours === null) return false;
  assert.equal(ours, reference(text), `the subset parser differs on ${JSON.stringify(text)}`);
  return true;
}

Deno.test("every PRQL block of the examples and corpora parses as prql-js parses it, most of them here", () => {
  const all = corpusBlocks();
  assert.ok(all.length >= 25, `${all.length} blocks`);
  const parsed = all.filter(agrees).length;
  assert.ok(parsed / all.length >= 0.7, `only ${parsed} of ${all.length} blocks parsed here`);
  // The benchmark program's blocks are all in the subset.
  const generated = [...new Set(blocks(generateProgram(300)))];
  assert.ok(generated.length > 5 && generated.every(agrees));
});

Deno.test("the subset parser agrees with prql-js on spacing, comments, precedence and literals", () => {
  const cases = [
    "from input",
    "\nfrom input\n\n",
    "  from input  # c\n",
    "from input   ",
    "# c\nfrom input",
    "from input | filter a > 1 | select {a}",
    "from input\nselect {\n  a,\n\n  b,\n}",
    "from input\nselect {x = a\n}",
    "from input\nfilter (a > 1 && b < 2) || !c",
    "from input\nfilter a == null && b != true && c ?? 1 > 2",
    "from input\nfilter a >= 1.5 && b <= 1e3 && c == 'x' && d ~= \"y\"",
    "from input\nderive x = a / b // c % d * e + f - g",
    "from input\nsort {-a, +b}\ntake 1..10",
    "from input\ntake 1..",
    "from input\ntake ..3",
    "from input\ntake 1 .. 3",
    "from input\ntake -1..5",
    "from input\nsort -a",
    "from input\ngroup {a, b} (aggregate {n = count this, s = sum x})",
    "from input\njoin side:left s (==id)",
    "from input\njoin s (this.id == that.id)\nselect {a, s.b}",
    "from input\nderive x = average a",
    "from input\nderive x = 'it''s'",
    "from input\nderive {x = 1_000, y = 0.5, z = 2.5E-2, w = 12345678901}",
    // Integers past what a JavaScript number holds, past an i64 (prql-js makes them floats).
    "from input\nfilter a > 9007199254740993",
    "from input\nfilter a > 9223372036854775807 && b < 9223372036854775808",
    "from input\nfilter a > 99999999999999999999999",
    "from input\nfilter a > 7123456789012345678901234567890123",
    "from input\nfilter a > 1_000_000_000_000_000_000_000",
    "from input\nfilter (a\n| in 1..5)",
    "from input\nfilter a in 1..3",
    "from input\nderive {x = (f a), y = f a b}",
    // Outside the subset, or errors: prql-js must be asked.
    'from input\nderive x = f"{a}"',
    'from input\nderive x = "a\\"b"',
    "from input\nderive x = 5days",
    "from input\nderive x = a ** 2",
    "from input\nderive x = [1, 2]",
    "let a = 1\nfrom input",
    "from input\nfilter a > 5.",
    "from input\nfilter a > 1)",
    "from input\nfilter (a > 1",
    "from input\nselect {a b}",
    "from input\n| filter a",
    "from input |\nfilter a",
    "from input\nfilter a >\n 1",
    "from input\nfilter a == 'é'",
    "",
  ];
  const parsed = cases.filter(agrees).length;
  assert.ok(parsed >= 20, `${parsed} parsed`);
  // Typing digits into a threshold must never leave the subset (it once cost a prql-js call).
  assert.ok(agrees(`from input\nfilter a > 12${"34567890".repeat(4)}`));
  // Deep brackets crash prql-js (at run time too): never parsed here, so a check reports it.
  assert.equal(parsePl(`from input\nderive x = ${"(".repeat(9)}1${")".repeat(9)}`), null);
});

Deno.test("the subset parser agrees with prql-js on random expressions", () => {
  const random = prng(12);
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
  const term = (depth: number): string => {
    const r = random();
    if (depth > 2 || r < 0.35) return pick(["a", "b", "this.c", "1", "2.5", "'s'", "true", "null"]);
    if (r < 0.5) return `(${expr(depth + 1)})`;
    if (r < 0.6) return `${pick(["-", "!", "+"])}${term(depth + 1)}`;
    if (r < 0.7) return `(f ${term(depth + 1)} ${term(depth + 1)})`;
    return `${term(depth + 1)} ${
      pick(["+", "-", "*", "/", "//", "%", "==", "!=", ">", "<", ">=", "<=", "&&", "||", "??"])
    } ${term(depth + 1)}`;
  };
  const expr = (depth: number): string => term(depth);
  let parsed = 0;
  for (let k = 0; k < 300; k++) {
    const step = pick([
      () => `filter ${expr(0)}`,
      () => `derive x = ${expr(0)}`,
      () => `derive {x = ${expr(0)}, y = ${expr(0)}}`,
      () => `select {a, b = ${expr(0)}}`,
      () => `sort {${pick(["-", "+", ""])}a, b}`,
      () => `take ${pick(["1..3", "5", "2.."])}`,
      () => `group {a} (aggregate {n = ${pick(["count", "sum", "min"])} ${expr(1)}})`,
    ])();
    const sep = pick(["\n", " | ", "\n\n", "\n# note\n"]);
    if (agrees(`from input${sep}${step}${pick(["", "\n", " # end"])}`)) parsed++;
  }
  assert.ok(parsed >= 200, `only ${parsed} of 300 parsed here`);
});
