/**
 * Hostile sizes and shapes for the compiler (issue 16, item 6): every input ends in a result
 * or diagnostics, never an exception (exit 70), and no pass does work quadratic in the size of
 * the program. Complexity is asserted by counting work (reads of PRQL text, entries of the
 * PRQL table walked), never by wall-clock time, so the tests hold on a loaded machine.
 */
import assert from "node:assert/strict";
import { check, format, optimise, parse, resolve } from "../../compiler/mod.ts";
import type { PrqlStage } from "../../compiler/syntax/mod.ts";
import { manyWorkflows, unusedDeclarations } from "../../bench/check.ts";

const ok = (source: string) => {
  const r = check(source, "/tmp/hostile.he", { snapshot: null });
  return r.diagnostics.filter((d) => d.severity !== "info").map((d) => `${d.code} ${d.message}`);
};

const pipeline = (annotation: string, middle = "") =>
  `workflow W {
  file.read { path: "in.csv", format: "csv" }${annotation}${middle}
  | file.write { path: "o.csv", format: "csv" }
}
`;

Deno.test("a 50,000-character identifier is a name like any other, in .he and in PRQL", () => {
  const long = "a".repeat(50_000);
  const prql = `\n  | (\n    from input\n    select {${long}}\n  )`;
  assert.deepEqual(ok(`import "fhub/file" file\n${pipeline("", prql)}`), []);
  const undefinedStep = ok(`import "fhub/file" file\n${pipeline("", `\n  | ${long}`)}`);
  assert.equal(undefinedStep.length, 1);
  assert.match(undefinedStep[0], /^HE0105 no step or stream is named/);
  const unused = ok(
    `import "fhub/kafka" kafka\nresource ${long} = kafka.connection { broker: "k:9092" }\n`,
  );
  assert.deepEqual(unused.map((d) => d.slice(0, 6)), ["HE0123"]);
});

Deno.test("10,000 chained type aliases check in either order without overflowing the stack", () => {
  const n = 10_000;
  const forward = ["type T0 = { amount: float64, .. }"];
  for (let i = 1; i < n; i++) forward.push(`type T${i} = T${i - 1}`);
  const backward = [];
  for (let i = 0; i < n - 1; i++) backward.push(`type T${i} = T${i + 1}`);
  backward.push(`type T${n - 1} = { amount: float64, .. }`);
  for (const [types, top] of [[forward, `T${n - 1}`], [backward, "T0"]]) {
    const program = `import "fhub/file" file\n${(types as string[]).join("\n")}\n${
      pipeline(`: ${top}`, "\n  | (\n    from input\n    filter amount > 1\n  )")
    }`;
    assert.deepEqual(ok(program), []);
  }
});

Deno.test("types nested deeper than 64 levels through aliases are one HE0126 where they cross", () => {
  const lists = ["type L0 = int64"];
  for (let i = 1; i < 10_000; i++) lists.push(`type L${i} = [L${i - 1}]`);
  const rows = ["type R0 = { a: int64 }"];
  for (let i = 1; i < 10_000; i++) rows.push(`type R${i} = { x: R${i - 1} }`);
  for (const [types, name] of [[lists, "L65"], [rows, "R64"]] as const) {
    const found = ok(`import "fhub/file" file\n${types.join("\n")}\n${pipeline("")}`);
    assert.equal(found.length, 1, found.slice(0, 3).join("\n"));
    assert.match(found[0], new RegExp(`^HE0126 type \`${name}\` nests 65 levels deep`));
  }
  // At the limit exactly, a list of lists is accepted and typed.
  const at = [...lists.slice(0, 64), `type Row = { deep: L63 }`].join("\n");
  assert.deepEqual(ok(`import "fhub/file" file\n${at}\n${pipeline(": Row")}`), []);
});

Deno.test("resolve() reads each PRQL block a fixed number of times, however many declarations are unused", () => {
  const reads = (unused: number) => {
    const source = `${unusedDeclarations(unused)}\n${manyWorkflows(20)}`;
    const program = parse(source).value;
    let count = 0;
    for (const item of program.items) {
      if (item.kind !== "Workflow") continue;
      for (const stage of item.body[0].pipeline.stages) {
        if (stage.kind !== "Prql") continue;
        const text = (stage as PrqlStage).text;
        Object.defineProperty(stage, "text", {
          get: () => (count++, text),
        });
      }
    }
    const r = resolve(program, { file: "/tmp/hostile.he", programDir: "/tmp" });
    assert.equal(r.diagnostics.filter((d) => d.code === "HE0123").length, unused);
    return count;
  };
  const few = reads(10);
  const many = reads(5_000);
  assert.ok(few <= 40, `${few} reads of 20 blocks`);
  assert.equal(many, few, "unused declarations must not rescan the PRQL blocks");
});

Deno.test("optimise() walks the PRQL table once, however many workflows there are", () => {
  const walked = (workflows: number) => {
    const source = manyWorkflows(workflows);
    const r = check(source, "/tmp/hostile.he", { snapshot: null });
    const typed = r.value.typed!;
    assert.equal(typed.prql.size, workflows);
    let steps = 0;
    const counting = new Map(typed.prql);
    const iterate = counting[Symbol.iterator].bind(counting);
    const walk = function* () {
      for (const entry of iterate()) {
        steps++;
        yield entry;
      }
    };
    counting[Symbol.iterator] = walk as unknown as typeof counting.entries;
    counting.entries = walk as unknown as typeof counting.entries;
    counting.forEach = (f) => {
      for (const [k, v] of walk()) f(v, k, counting);
    };
    counting.get = (k) => (steps++, typed.prql.get(k));
    const out = optimise(r.value.ir!, { typed: { ...typed, prql: counting } });
    assert.equal(out.value.graphs.filter((g) => g.kind === "workflow").length, workflows);
    return steps;
  };
  assert.ok(walked(10) <= 2 * 10);
  assert.ok(walked(1_000) <= 2 * 1_000, "the PRQL table is walked once, not once per workflow");
});

Deno.test("150,000 warnings and a 200,000-line PRQL block pass check() and format() without a throw", () => {
  // Both overflowed the argument limit of a spread call (`push(...list)`, `Math.min(...lines)`).
  const warnings = check(unusedDeclarations(150_000), "/tmp/u.he", { snapshot: null }).diagnostics;
  assert.equal(warnings.length, 150_000);
  assert.ok(warnings.every((d) => d.code === "HE0123"));
  const lines = Array.from({ length: 200_000 }, (_, k) => `    derive c${k} = ${k}`).join("\n");
  const source = `import "fhub/file" file\n${
    pipeline("", `\n  | (\n    from input\n${lines}\n  )`)
  }`;
  const formatted = format(source);
  assert.deepEqual(formatted.diagnostics, []);
  assert.ok(formatted.value.includes("\n    derive c199999 = 199999\n"));
});
