/**
 * The PRQL lowering done without prql-js (compiler/types/_prql_resolve.ts) must give exactly
 * the RQ prql-js's `pl_to_rq` gives, or nothing (null: prql-js then lowers the block).
 * Compared here on every PRQL block of the examples and test corpora, on hand-written cases
 * (frames, shadowing, names PRQL's standard library owns, errors prql-js reports) and on
 * seeded random pipelines. It must never accept a difference, nor a lowering that declines
 * everything: the benchmark program's blocks and most random pipelines must be lowered here.
 */
import assert from "node:assert/strict";
import { check, prqlc } from "../../compiler/mod.ts";
import { parsePl } from "../../compiler/types/_prql_parse.ts";
import { resolveRq } from "../../compiler/types/_prql_resolve.ts";
import { forgetLowered, lowerDeclared } from "../../compiler/types/_prql_lower.ts";
import { generateProgram } from "../../bench/parse.ts";
import { distinctBlocks } from "../../bench/check.ts";
import { blocks, corpusBlocks } from "./_prql_blocks.ts";
import { prng } from "../_prng.ts";
import * as arrow from "apache-arrow";
import { compilePrql, execute } from "../../runtime/prql/mod.ts";

/** prql-js's RQ for the PL, or the error it reports. */
function reference(pl: string): unknown {
  try {
    return JSON.parse(prqlc.plToRq(pl));
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
}

/** Asserts the lowering here agrees with prql-js on `text`; true when it lowered it. */
function agrees(text: string): boolean {
  const pl = parsePl(text);
  const ours = pl === null ? null : resolveRq(pl);
  if (ours === null) return false;
  assert.deepEqual(ours, reference(pl!), `the lowering differs on ${JSON.stringify(text)}`);
  return true;
}

/** The columns the engine declares for `input` in the comparisons below. */
const DECLARED = ["a", "b", "c", "x", "y", "amount", "note"];

/**
 * Asserts the lowering behind the engine's prelude (runtime/prql: `input`'s columns declared)
 * agrees with prql-js compiling the prelude and the block, as the engine did; true when lowered.
 */
function agreesDeclared(
  text: string,
  columns = DECLARED,
  relations: Record<string, string[]> = {},
): boolean {
  const ours = lowerDeclared(text, columns, relations);
  if (ours === null) return false;
  let head = "prql target:sql.duckdb\n";
  for (const [name, cols] of Object.entries({ input: columns, ...relations })) {
    head += `let ${name} = (from default_db.${name} | select {` +
      cols.map((c) => `\`${c}\``).join(", ") + "})\n";
  }
  let theirs: unknown;
  try {
    theirs = reference(prqlc.prqlToPl(head + text));
  } catch (e) {
    theirs = `error: ${(e as Error).message}`;
  }
  assert.deepEqual(ours, theirs, `the declared lowering differs on ${JSON.stringify(text)}`);
  return true;
}

Deno.test("every PRQL block of the examples and corpora lowers as prql-js lowers it, or is left to it", () => {
  const all = corpusBlocks();
  assert.ok(all.length >= 25, `${all.length} blocks`);
  const lowered = all.filter(agrees).length;
  assert.ok(lowered >= 9, `only ${lowered} of ${all.length} blocks lowered here`);
  // The benchmark programs' blocks are all in the subset.
  const generated = generateProgram(300);
  const own = [...new Set([...blocks(generated), ...blocks(distinctBlocks(generated))])];
  assert.ok(own.length > 10 && own.every(agrees));
});

Deno.test("the lowering agrees with prql-js on frames, shadowing, reserved names and errors", () => {
  const cases = [
    "from input",
    "from input\nfilter amount > 5\nselect {user_id, amount, label = 'x'}",
    "from input\nderive {b = a + 1, c = a * 2.0}\nfilter b > 3 && c != 2\nselect {c, b, z = a / 2, w = a // 2, m = -a % 3}",
    "from input\nselect {user_id, amount}\nsort {-amount}\ntake 10",
    "from input\nselect {x, y}\nderive y2 = y\nselect {y2, x}",
    "from input | filter name == 'a' || !(ok)",
    "from input\nderive b = a + 1\nfilter c > 1",
    "from input\nderive amount = 1",
    "from input\nselect {a2 = a}",
    "from input\nsort a\nfilter b > 1\ntake 3",
    "from input\nselect {a, b}\nsort b\nselect {a}\ntake 2",
    "from input\nsort {+a, -b}\nderive c = a - b",
    "from input\nderive x = true\nfilter x",
    "from input\nselect {_error_step, _error_message, _error_attempt}",
    "from input\nfilter _error_attempt > 2\nderive _error_next = _error_attempt + 1",
    "from input\nfilter a > 99999999999999999999999 && b < 9007199254740993",
    "from input\ngroup {note} (aggregate {n = count this, total = sum amount, top = max amount})",
    "from input\naggregate {n = count this, s = sum a}",
    "from input\nderive x = a + 1\ngroup {note, x} (aggregate {s = sum a})\nfilter s > 1",
    "from input\ngroup note (aggregate {average a})",
    "from input\ngroup {n2 = note} (aggregate {s = sum a + 1})",
    "from input\ngroup {note} (aggregate {count a, c = count_distinct b, min a, mn = min b})",
    "from input\ngroup {b + 1} (aggregate {s = sum a})",
    "from input\ngroup {b} (aggregate {s = sum a})\nselect {b, s2 = s}",
    "from input\ngroup {b} (aggregate {s = sum a})\nsort s\ntake 3",
    "from input\nselect {a, b}\ngroup {b} (aggregate {s = sum a})\nderive t = s * 2\nselect {t, b}",
    "from input\naggregate {n = count this}\nfilter n",
    "from input\ngroup {b} (aggregate {})",
    "from input\ntake 5\ngroup {b} (aggregate {s = sum a})",
    "from input\nfilter a == null",
    "from input\nfilter null != a || b > 1",
    "from input\nderive n = a + 1 == null",
    "from input\ntake 10..20",
    "from input\ntake 3..",
    "from input\nsort a\ntake 2..4",
    "from input\nfilter (a | in 1..5)",
    "from input\nderive z = a + 1\njoin side:left users (input.uid == users.uid)\njoin orders (input.oid == orders.oid)\nfilter orders.total > z\nselect {input.b, users.name, orders.total, z}",
    "from input\njoin users (input.uid == users.uid)\nderive q = users.age + input.c",
    "from input\njoin users (this.user_id == that.id)",
    "from input\nfilter a > 1\njoin side:full s (input.k == s.k && s.v > 2)\ntake 5",
    "from input\njoin side:right s (input.k == s.k)\nderive t = s.v * 2\nfilter t > 1\nselect {t, s.v}",
    "from input\nfilter (a + 1 | in 1.5..)",
    "from input\nderive c = (amount | in 10..20)",
    // Declined: prql-js reports these, or resolves them in ways not done here.
    "from input\nselect {a}\nfilter b > 1",
    "from input\nselect {a, a}",
    "from input\nderive {x = 1, x = 2}",
    "from input\nderive x = 1\nderive x = 2",
    "from input\nfilter count > 1",
    "from input\nderive x = sum a",
    "from input\nfilter null == null",
    "from input\ntake 0..3",
    "from input\ntake 0",
    "from input\nfilter (1 | in 1..5)",
    "from input\nfilter a ?? 1 > 2",
    "from input\nderive x = this.a",
    "from s\nfilter a > 1",
    "from input\njoin s (==id)",
    "from input\nderive x = 1\njoin users (input.id == users.id)\nfilter name == 'x'",
    "from input\njoin s (input.k == s.k)\nselect {s.k, input.k}",
    "from input\njoin s (input.k == s.k)\ngroup {s.k} (aggregate {n = count this})",
    "from input\nsort a\njoin s (input.k == s.k)",
    "from input\njoin side:outer s (input.k == s.k)",
    "from input\ngroup {a} (sort b | take 1)",
    "from input\nderive {c = a}\ngroup {c} (aggregate {s = sum c, m = max b})",
    "from input\nsort a\ngroup {b} (aggregate {s = sum a})\ntake 3",
    "from input\ngroup {b} (aggregate {s = sum a})\nfilter a > 1",
    "from input\ngroup {b} (aggregate {s = stddev a})",
    "from input\nselect {_a}",
    "from input\nselect {_param}",
    "from input\nderive {a + 1}",
  ];
  const lowered = cases.filter(agrees).length;
  assert.ok(lowered >= 43, `${lowered} lowered`);
  // Behind the engine's prelude, where every name outside `input`'s columns is prql-js's.
  const declared = cases.filter((c) => agreesDeclared(c)).length;
  assert.ok(declared >= 16, `${declared} lowered behind the prelude`);
  // What prql-js rejects is never lowered here: its error is the one a check reports.
  const wrong = "from input\nselect {a}\nfilter b > 1";
  assert.equal(resolveRq(parsePl(wrong)!), null);
  assert.match(String(reference(parsePl(wrong)!)), /^error:/);
});

Deno.test("the lowering agrees with prql-js on random pipelines", () => {
  const random = prng(21);
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
  // Mostly plain column names; now and then one PRQL's standard library owns.
  const name = () =>
    random() < 0.9 ? pick(["a", "b", "c", "x", "y", "amount"]) : pick(["count", "sum", "_z"]);
  const term = (depth: number): string => {
    const r = random();
    if (depth > 2 || r < 0.3) return name();
    if (r < 0.45) return pick(["1", "2.5", "'s'", "true", "null"]);
    if (r < 0.55) return `(${term(depth + 1)})`;
    if (r < 0.65) return `${pick(["-", "!"])}${term(depth + 1)}`;
    if (r < 0.7) return `${term(depth + 1)} ${pick(["==", "!="])} null`;
    if (r < 0.75) return `(${term(depth + 1)} | in ${pick(["1..5", "2.5..3", "1..", "'a'..'c'"])})`;
    return `${term(depth + 1)} ${
      pick(["+", "-", "*", "/", "//", "%", "==", "!=", ">", "<", ">=", "<=", "&&", "||"])
    } ${term(depth + 1)}`;
  };
  const aggregate = () =>
    `${pick(["", `${pick(["s", "n", "t"])} = `, `${name()} = `])}${
      pick(["count", "sum", "average", "min", "max", "count_distinct", "stddev"])
    } ${pick([name(), name(), "this", term(1)])}`;
  const aggregates = () => Array.from({ length: Math.floor(random() * 3) }, aggregate).join(", ");
  let lowered = 0, declared = 0, grouped = 0;
  for (let k = 0; k < 300; k++) {
    const steps = Array.from({ length: 1 + Math.floor(random() * 4) }, () =>
      pick([
        () => `filter ${term(0)}`,
        () => `derive ${name()} = ${term(0)}`,
        () => `derive {${name()} = ${term(0)}, ${name()} = ${term(0)}}`,
        () => `select {${name()}, ${name()} = ${term(0)}}`,
        () => `select ${name()}`,
        () => `sort {${pick(["-", "+", ""])}${name()}, ${name()}}`,
        () => `take ${pick(["1", "5", "20", "0", "2..4", "3..", "0..2", "5..2"])}`,
        () => `group {${name()}} (aggregate {${aggregates()}})`,
        () => `group ${name()} (aggregate ${aggregate()})`,
        () =>
          `group {${pick(["k", name()])} = ${term(1)}, ${name()}} (aggregate {${aggregates()}})`,
        () => `aggregate {${aggregates()}}`,
      ])());
    const text = `from input\n${steps.join(pick(["\n", " | "]))}`;
    if (agrees(text)) lowered++;
    if (agreesDeclared(text)) declared++;
    if (/group|aggregate/.test(text) && agreesDeclared(text)) grouped++;
  }
  assert.ok(lowered >= 50, `only ${lowered} of 300 lowered here`);
  assert.ok(declared >= 35, `only ${declared} of 300 lowered behind the prelude`);
  assert.ok(grouped >= 10, `only ${grouped} grouping pipelines lowered behind the prelude`);
});

Deno.test("the lowering agrees with prql-js on random pipelines with joins", () => {
  const random = prng(5);
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
  const col = () => pick(["a", "b", "k", "v", "count"]);
  const tables = ["s", "t"];
  let declared = 0;
  const ref = (joined: string[]) =>
    random() < 0.2 ? col() : `${pick(["input", ...joined, "u"])}.${col()}`;
  const term = (joined: string[]): string =>
    random() < 0.5
      ? ref(joined)
      : `${ref(joined)} ${pick(["+", "*", ">", "==", "!="])} ${pick([ref(joined), "1", "'x'"])}`;
  let lowered = 0;
  for (let k = 0; k < 200; k++) {
    const joined: string[] = [];
    const steps: string[] = [];
    if (random() < 0.4) steps.push(`derive d = ${pick(["a", "b"])} + 1`);
    for (const t of tables.slice(0, 1 + Math.floor(random() * 2))) {
      const side = pick(["", "side:left ", "side:right ", "side:full "]);
      const on = random() < 0.2
        ? `this.${col()} == that.${col()}`
        : random() < 0.2
        ? `==${pick(["k", "v", "a"])}`
        : `input.${col()} == ${t}.${col()}${random() < 0.2 ? ` && ${t}.${col()} > 1` : ""}`;
      steps.push(`join ${side}${t} (${on})`);
      joined.push(t);
    }
    for (let n = Math.floor(random() * 3); n > 0; n--) {
      steps.push(
        pick([
          () => `filter ${term(joined)}`,
          () => `derive ${pick(["e", "f"])} = ${term(joined)}`,
          () => `select {${ref(joined)}, ${pick(["e", "g"])} = ${term(joined)}}`,
          () => `take ${pick(["3", "1..2"])}`,
        ])(),
      );
    }
    const text = `from input\n${steps.join("\n")}`;
    if (agrees(text)) lowered++;
    // Behind the engine's prelude, as `heddle run` compiles it, with every table's columns.
    if (agreesDeclared(text, ["a", "b", "k", "v"], { s: ["a", "k", "v"], t: ["b", "k", "v"] })) {
      declared++;
    }
  }
  assert.ok(lowered >= 40, `only ${lowered} of 200 pipelines with joins lowered here`);
  assert.ok(
    declared >= 20,
    `only ${declared} of 200 pipelines with joins lowered behind the prelude`,
  );
});

Deno.test("a cold check of the benchmark programs makes no prql-js call", () => {
  const source = generateProgram(1_500);
  for (const program of [source, distinctBlocks(source)]) {
    forgetLowered();
    const before = prqlc.calls;
    const r = check(program, "/tmp/g.he", { snapshot: null });
    assert.ok(r.value.optimised);
    assert.deepEqual(prqlc.calls, before);
  }
});

Deno.test("the engine compiles and runs grouping and lookup-join blocks without prql-js", () => {
  const input = new arrow.Table({
    id: arrow.vectorFromArray([1, 2, 3, 4], new arrow.Int32()),
    amount: arrow.vectorFromArray([1.5, 2, 4, 8], new arrow.Float64()),
    note: arrow.vectorFromArray(["a", "b", "a", "a"], new arrow.Utf8()),
  });
  const text =
    "from input\ngroup {note} (aggregate {n = count this, total = sum amount, top = max amount})";
  const before = prqlc.calls;
  const compiled = compilePrql(text, { input: input.schema });
  assert.deepEqual(prqlc.calls, before);
  const out = execute(compiled.value!, { input });
  assert.deepEqual(out.toArray().map((r) => ({ ...r.toJSON() })), [
    { note: "a", n: 3n, total: 13.5, top: 8 },
    { note: "b", n: 1n, total: 2, top: 2 },
  ]);
  // A lookup join as the fraud example writes it, with the joined step's columns declared.
  const users = new arrow.Table({
    id: arrow.vectorFromArray([1, 3], new arrow.Int32()),
    tier: arrow.vectorFromArray(["gold", "new"], new arrow.Utf8()),
  });
  const join = compilePrql(
    "from input\njoin side:left users (==id)\nselect {input.id, users.tier, input.note}",
    { input: input.schema, users: users.schema },
  );
  assert.deepEqual(prqlc.calls, before);
  const joined = execute(join.value!, { input, users });
  assert.deepEqual(joined.toArray().map((r) => ({ ...r.toJSON() })), [
    { id: 1, tier: "gold", note: "a" },
    { id: 2, tier: null, note: "b" },
    { id: 3, tier: "new", note: "a" },
    { id: 4, tier: null, note: "a" },
  ]);
  // What prql-js would report stays prql-js's: a name `input` lacks is its error, located.
  const wrong = compilePrql("from input\ngroup {nope} (aggregate {n = count this})", {
    input: input.schema,
  });
  assert.equal(wrong.value, null);
  assert.match(wrong.diagnostics[0].message, /Unknown name `nope`/);
});

Deno.test("a cold check of every example (joins and groups included) makes no prql-js call", () => {
  const dir = new URL("../../examples/", import.meta.url);
  for (const e of Deno.readDirSync(dir)) {
    if (!e.name.endsWith(".he")) continue;
    forgetLowered();
    const before = prqlc.calls;
    check(Deno.readTextFileSync(new URL(e.name, dir)), e.name, { snapshot: null });
    assert.deepEqual(prqlc.calls, before, `${e.name} called prql-js`);
  }
});
