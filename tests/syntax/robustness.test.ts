/**
 * Robustness of parse() and format(): seeded fuzzing of the golden corpus and the hostile
 * inputs every parser meets sooner or later. Nothing may throw, every span must lie inside
 * the file, and the formatter must leave broken files untouched. It must never depend on
 * timing: speed is measured by bench/parse.ts.
 */
import assert from "node:assert/strict";
import { format, MAX_NESTING, parse } from "../../compiler/syntax/mod.ts";
import { renderHuman, renderShort, toJson } from "../../compiler/diagnostics/mod.ts";
import { generateProgram } from "../../bench/parse.ts";
import { prng } from "../_prng.ts";
import { corpus } from "../_expect.ts";

function assertSpansInside(tree: unknown, length: number) {
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== "object") continue;
    for (const [key, value] of Object.entries(node)) {
      if (key === "span" || key === "textSpan") {
        const s = value as { start: number; end: number };
        assert.ok(
          0 <= s.start && s.start <= s.end && s.end <= length,
          `bad span ${JSON.stringify(s)}`,
        );
      } else stack.push(value);
    }
  }
}

function check(source: string) {
  const { value, diagnostics } = parse(source, "fuzz.he");
  assertSpansInside(value, source.length);
  assertSpansInside(diagnostics, source.length);
  const formatted = format(source);
  if (diagnostics.length > 0) assert.equal(formatted.value, source);
  else assert.deepEqual(parse(formatted.value).diagnostics, []);
  renderHuman(diagnostics, source, "fuzz.he", { color: true });
  toJson(diagnostics, source, "fuzz.he");
  return diagnostics;
}

const TOKENS = [
  "{",
  "}",
  "(",
  ")",
  "[",
  "]",
  "<",
  ">",
  "|",
  "?",
  "*",
  ":",
  ",",
  "..",
  '"',
  "\n",
  "workflow",
  "step",
  "retry",
  "env(",
  "//",
  "#",
  "1_0",
  "5s",
  "x.y",
  "\u{1F600}",
  "\r\n",
  "\t",
];

Deno.test("parse() and format() survive 3,000 seeded mutations of the corpus", () => {
  const random = prng(20240611);
  const sources = [...corpus("ok"), ...corpus("err")].map((f) => f.source).filter((s) => s);
  for (let n = 0; n < 3000; n++) {
    let text = sources[n % sources.length];
    for (let k = 0; k < 1 + Math.floor(random() * 4); k++) {
      const at = Math.floor(random() * (text.length + 1));
      const len = Math.floor(random() * 12);
      switch (Math.floor(random() * 5)) {
        case 0:
          text = text.slice(0, at) + text.slice(at + len);
          break;
        case 1:
          text = text.slice(0, at) + TOKENS[Math.floor(random() * TOKENS.length)] + text.slice(at);
          break;
        case 2:
          text = text.slice(0, at) + String.fromCharCode(Math.floor(random() * 256)) +
            text.slice(at + 1);
          break;
        case 3: {
          const other = Math.floor(random() * (text.length + 1));
          const [a, b] = at < other ? [at, other] : [other, at];
          text = text.slice(0, a) + text.slice(b, b + len) + text.slice(a + len, b) +
            text.slice(a, a + len) + text.slice(b + len);
          break;
        }
        default:
          text = text.slice(0, at) + text.slice(at, at + len).split("").reverse().join("") +
            text.slice(at + len);
      }
    }
    check(text);
  }
});

Deno.test("parse() scans 20,000 nested parentheses without overflowing the stack", () => {
  const deep = "workflow W {\n  x | " + "(".repeat(20_000) + ")".repeat(20_000) + "\n}\n";
  assert.deepEqual(check(deep), []);
  const open = "workflow W {\n  x | " + "(".repeat(20_000) + "\n}\n";
  assert.deepEqual(check(open).map((d) => d.code), ["HE0005"]);
});

Deno.test("parse() stops deep objects, lists and row types with HE0009", () => {
  for (
    const src of [
      "resource r = a.b " + "{a: ".repeat(20_000) + "1" + "}".repeat(20_000) + "\n",
      "resource r = a.b {a: " + "[".repeat(20_000) + "\n",
      "type T = " + "{a: ".repeat(20_000) + "\n",
      "type T = " + "[".repeat(20_000) + "\n",
    ]
  ) {
    assert.deepEqual(check(src).map((d) => d.code), ["HE0009"]);
  }
  const ok = "resource r = a.b " + "{a: ".repeat(MAX_NESTING) + "1" + "}".repeat(MAX_NESTING);
  assert.deepEqual(check(ok), []);
});

Deno.test("parse() turns binary junk into diagnostics", () => {
  const random = prng(7);
  const junk = Array.from({ length: 20_000 }, () => String.fromCharCode(random() * 256)).join("");
  assert.ok(check(junk).length > 0);
});

Deno.test("parse() reads a 100,000-line program without diagnostics", () => {
  const big = generateProgram(100_000);
  assert.ok(big.split("\n").length > 100_000);
  const { value, diagnostics } = parse(big);
  assert.deepEqual(diagnostics, []);
  assert.ok(value.items.length > 4000);
});

Deno.test("parse() accepts CRLF line ends, tabs and Unicode", () => {
  const src = 'import "a" b\r\n\tresource r = b.c {\r\n\t\tname: "héllo 🌍"\r\n\t} // ünï 🎉\r\n';
  assert.deepEqual(check(src), []);
  const { value } = parse(src);
  assert.equal(value.comments[0].text, " ünï 🎉");
  const r = value.items[1];
  assert.equal(
    r.kind === "Resource" && r.config?.fields[0].value.kind === "String" &&
      r.config.fields[0].value.value,
    "héllo 🌍",
  );
});

Deno.test("parse() reads an empty file as an empty program", () => {
  const { value, diagnostics } = parse("");
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(value.items, []);
  assert.equal(format("").value, "");
});

Deno.test("toJson() counts columns in code points and renderShort() names file, line and column", () => {
  const src = 'resource r = a.b { s: "🌍🌍", t: nope }\n';
  const diags = parse(src, "u.he").diagnostics;
  const [j] = toJson(diags, src, "u.he");
  assert.deepEqual([j.line, j.column, j.endColumn, j.code], [1, 32, 36, "HE0003"]);
  assert.equal(
    renderShort(diags, src, "u.he").split(":").slice(0, 4).join(":"),
    "u.he:1:32: error[HE0003]",
  );
});

Deno.test("renderHuman() shows labels in other files and colours only when asked", () => {
  const src = "step s = a.b\n";
  const diag = {
    code: "HE0201",
    severity: "error" as const,
    message: "type mismatch",
    span: { start: 9, end: 12 },
    labels: [{ span: { start: 4, end: 9 }, message: "declared here", file: "lib.he" }],
    hints: ["convert it"],
  };
  const plain = renderHuman([diag], src, "main.he", {
    color: false,
    sources: { "lib.he": "abc\ntype T = int64\n" },
  });
  assert.match(plain, /--> main\.he:1:10/);
  assert.match(plain, /::: lib\.he:2:1/);
  assert.match(plain, /----- declared here/);
  assert.ok(!plain.includes("\x1b["));
  assert.ok(renderHuman([diag], src, "main.he", { color: true }).includes("\x1b["));
  assert.match(renderHuman([diag], src, "main.he", { color: false }), /::: lib\.he/);
});
