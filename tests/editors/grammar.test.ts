/**
 * The VS Code extension's TextMate grammars (editors/vscode/syntaxes): the assertion files
 * in editors/vscode/test run through `vscode-tmgrammar-test`, and every example program
 * and golden `ok/` program is highlighted as the parser reads it (comments are comments,
 * PRQL blocks and only they are PRQL). Highlighting is what a user sees first, and a
 * grammar that drifts from the parser mis-colours whole files after one odd token.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import textmate from "vscode-textmate";
import oniguruma from "vscode-oniguruma";
import { parse } from "../../compiler/syntax/mod.ts";
import type { PrqlStage } from "../../compiler/syntax/mod.ts";

const root = new URL("../../", import.meta.url).pathname;
const syntaxes = `${root}editors/vscode/syntaxes/`;

Deno.test("the grammar's assertion files pass vscode-tmgrammar-test", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "npm:vscode-tmgrammar-test",
      "-g",
      `${syntaxes}heddle.tmLanguage.json`,
      "-g",
      `${syntaxes}prql.tmLanguage.json`,
      "editors/vscode/test/*.he",
    ],
    cwd: root,
    env: { NO_COLOR: "1" },
  }).output();
  const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, out);
  const files = [...Deno.readDirSync(`${root}editors/vscode/test`)].filter((f) =>
    f.name.endsWith(".he")
  );
  assert.ok(files.length >= 2);
  for (const f of files) {
    assert.match(out, new RegExp(`✓ editors/vscode/test/${f.name} run successful`));
  }
});

async function grammarRegistry(): Promise<textmate.Registry> {
  const wasm = createRequire(import.meta.url).resolve("vscode-oniguruma/release/onig.wasm");
  await oniguruma.loadWASM((await Deno.readFile(wasm)).buffer);
  const files: Record<string, string> = {
    "source.heddle": "heddle.tmLanguage.json",
    "source.prql": "prql.tmLanguage.json",
  };
  return new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scope) => {
      const file = files[scope];
      if (!file) return null;
      const path = `${syntaxes}${file}`;
      return textmate.parseRawGrammar(await Deno.readTextFile(path), path);
    },
  });
}

/** The scopes of every UTF-16 unit of `source`. */
function scopesOf(grammar: textmate.IGrammar, source: string): string[][] {
  const scopes: string[][] = [];
  let state = textmate.INITIAL;
  for (const line of source.split("\n")) {
    const result = grammar.tokenizeLine(line, state);
    for (const t of result.tokens) {
      for (let i = t.startIndex; i < Math.min(t.endIndex, line.length); i++) scopes.push(t.scopes);
    }
    scopes.push(["\n"]);
    state = result.ruleStack;
  }
  return scopes;
}

function prqlBlocks(source: string): PrqlStage[] {
  const found: PrqlStage[] = [];
  const visit = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === "object") {
      if ((node as { kind?: string }).kind === "Prql") found.push(node as PrqlStage);
      else Object.values(node).forEach(visit);
    }
  };
  visit(parse(source).value.items);
  return found;
}

const programs = [
  ...[...Deno.readDirSync(`${root}examples`)].map((f) => `examples/${f.name}`),
  ...[...Deno.readDirSync(`${root}tests/testdata/ok`)].map((f) => `tests/testdata/ok/${f.name}`),
].filter((f) => f.endsWith(".he")).sort();

Deno.test("every example is highlighted as the parser reads it", async () => {
  const grammar = (await (await grammarRegistry()).loadGrammar("source.heddle"))!;
  assert.ok(programs.length >= 5);
  for (const file of programs) {
    // The grammar works on lines: CRLF files reach it without their `\r`, as in VS Code.
    const source = (await Deno.readTextFile(root + file)).replaceAll("\r\n", "\n");
    const parsed = parse(source);
    assert.deepEqual(parsed.diagnostics.filter((d) => d.severity === "error"), [], file);
    const scopes = scopesOf(grammar, source);
    const where = (i: number) =>
      `${file} at offset ${i} (${JSON.stringify(source.slice(i, i + 20))})`;
    for (const c of parsed.value.comments) {
      for (let i = c.span.start; i < c.span.end; i++) {
        assert.ok(scopes[i].some((s) => s.startsWith("comment.")), `comment: ${where(i)}`);
      }
    }
    const inPrql = new Array(source.length).fill(false);
    for (const block of prqlBlocks(source)) {
      for (let i = block.textSpan.start; i < block.textSpan.end; i++) inPrql[i] = true;
    }
    for (let i = 0; i < source.length; i++) {
      if (/\s/.test(source[i])) continue;
      const prql = scopes[i].includes("source.prql");
      assert.equal(prql, inPrql[i], `${inPrql[i] ? "PRQL" : "Heddle"} text: ${where(i)}`);
    }
  }
});
