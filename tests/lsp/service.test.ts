/**
 * The language service (compiler/service) on the seed program and on broken variants of
 * it, with `<|>` cursor markers: hover, definition, references, completion, outline,
 * formatting, rename and diagnostics.
 */
import assert from "node:assert/strict";
import * as service from "../../compiler/service/mod.ts";
import { lineIndex } from "../../compiler/diagnostics/mod.ts";
import { generateProgram } from "../../bench/parse.ts";
import { cursor, lineOf, SEED, seedAt, texts } from "./_cursor.ts";

const labels = (items: service.CompletionItem[]) => items.map((i) => i.label).sort();

// Hover.

Deno.test("hover on an operation shows its contract: role, config, slots and rows", () => {
  const { analysis, offset } = seedAt("pg.qu<|>ery");
  const h = service.hover(analysis, offset);
  assert.ok(h);
  assert.match(h.markdown, /pg\.query\s+\/\/ lookup/);
  assert.match(h.markdown, /`query: string` \(required\)/);
  assert.match(h.markdown, /<connection=…>.*fhub\/postgresql\.connection/);
  assert.match(h.markdown, /Output: .*config key "query"/);
});

Deno.test("hover on a plugin operation shows the manifest's input and output rows", () => {
  const { analysis, offset } = seedAt("fraud_detection.pro<|>cess");
  const h = service.hover(analysis, offset);
  assert.ok(h);
  assert.match(h.markdown, /Input: `\{ user_id: int64, amount: float64 \}`/);
  assert.match(h.markdown, /Output: `\{ user_id: int64, amount: float64, fraud_score: float64 \}`/);
});

Deno.test("hover on an import alias lists the module's members", () => {
  const { analysis, offset } = seedAt("| kaf<|>ka.produce");
  const h = service.hover(analysis, offset);
  assert.ok(h);
  assert.match(h.markdown, /import "fhub\/kafka" kafka/);
  assert.match(h.markdown, /`consume` \(source\)/);
  assert.match(h.markdown, /`produce` \(sink\)/);
});

Deno.test("hover on a step shows its declaration and the inferred output row", () => {
  const { analysis, offset } = seedAt("| generate_au<|>dit");
  const h = service.hover(analysis, offset);
  assert.ok(h);
  assert.match(h.markdown, /step generate_audit = openai\.prompt/);
  assert.match(h.markdown, /fraud_score: float64/);
  assert.match(h.markdown, /completion: utf8/);
});

Deno.test("hover on a SQL step shows the columns from the schema snapshot", () => {
  const { analysis, offset } = seedAt("join fetch_user<|>_data");
  const h = service.hover(analysis, offset);
  assert.ok(h);
  assert.match(h.markdown, /Output: `\{ user_id: int64, country: utf8 \}`/);
});

Deno.test("hover on a stream shows the row type that flows in it", () => {
  const { analysis, offset } = seedAt("> tx_st<|>ream");
  const h = service.hover(analysis, offset);
  assert.ok(h);
  assert.match(h.markdown, /stream of workflow `FraudDetection`/);
  assert.match(h.markdown, /amount: float64/);
  assert.match(h.markdown, /user_id: int64/);
});

Deno.test("hover on a config key shows its type and doc", () => {
  const { analysis, offset } = seedAt('bro<|>ker: "kafka');
  const h = service.hover(analysis, offset);
  assert.ok(h);
  assert.match(h.markdown, /kafka\.connection/);
  assert.match(h.markdown, /`broker: string` \(required\): Bootstrap servers/);
});

Deno.test("hover on a resource names its kind", () => {
  const { analysis, offset } = seedAt("<connection=ch_<|>db>");
  const h = service.hover(analysis, offset);
  assert.ok(h);
  assert.match(h.markdown, /resource ch_db = ch\.connection/);
  assert.match(h.markdown, /fhub\/clickhouse\.connection/);
});

Deno.test("hover inside a comment gives nothing", () => {
  const { analysis, offset } = seedAt("// Global<|> error");
  assert.equal(service.hover(analysis, offset), null);
});

// Definition and references.

Deno.test("definition of a step used in a pipeline is its declaration", () => {
  const { analysis, offset, source } = seedAt("| generate_<|>audit");
  const span = service.definition(analysis, offset);
  assert.ok(span);
  assert.equal(source.slice(span.start, span.end), "generate_audit");
  assert.match(source.slice(source.lastIndexOf("\n", span.start), span.end), /step generate_audit/);
});

Deno.test("definition of a step joined inside PRQL is its declaration", () => {
  const { analysis, offset, source } = seedAt("join fetch_risk<|>_profile");
  const span = service.definition(analysis, offset);
  assert.ok(span);
  assert.equal(lineOf(source, span.start), lineOf(source, source.indexOf("step fetch_risk")));
});

Deno.test("definition of a resource in a slot, an alias and a handler", () => {
  for (
    const [at, decl] of [
      ["<connection=pg<|>_db>", "resource pg_db"],
      ["| ope<|>nai", 'import "fhub/llm" openai'],
      ["? alert_step<|>_fail", "handler alert_step_fail"],
    ]
  ) {
    const { analysis, offset, source } = cursor(
      at.startsWith("| ope")
        ? SEED.replace(
          "| generate_audit",
          '| openai<|>.prompt { system: "x" }'.replace("openai<|>", "ope<|>nai"),
        )
        : SEED.replace(at.replace("<|>", ""), at),
    );
    const span = service.definition(analysis, offset);
    assert.ok(span, at);
    assert.equal(lineOf(source, span.start), lineOf(source, source.indexOf(decl)), at);
  }
});

Deno.test("definition of a stream read at the start of a statement is its binding", () => {
  const { analysis, offset, source } = seedAt("\ntx_<|>stream\n");
  const span = service.definition(analysis, offset);
  assert.ok(span);
  assert.equal(source.slice(span.start - 2, span.end), "> tx_stream");
});

Deno.test("references of a resource are its declaration and every injection", () => {
  const { analysis, offset, source } = seedAt("resource kf_bro<|>ker");
  const spans = service.references(analysis, offset);
  const uses = SEED.match(/=kf_broker>/g)!.length;
  assert.deepEqual(texts(source, spans), Array(uses + 1).fill("kf_broker"));
  const without = service.references(analysis, offset, false);
  assert.equal(without.length, uses);
  assert.ok(without.every((s) => lineOf(source, s.start) > lineOf(source, offset)));
});

Deno.test("references of a step include its uses inside PRQL text", () => {
  const { analysis, offset, source } = seedAt("step fetch_user<|>_data");
  const lines = service.references(analysis, offset).map((s) => lineOf(source, s.start));
  assert.deepEqual(lines, [
    lineOf(source, offset),
    lineOf(source, source.indexOf("join fetch_user")),
  ]);
});

Deno.test("references work in a file with a syntax error", () => {
  const { analysis, offset, source } = cursor(
    SEED.replace("resource pg_db", "resource pg<|>_db").replace(
      "| generate_audit",
      "| generate_audit |",
    ),
  );
  assert.ok(analysis.diagnostics.some((d) => d.severity === "error"));
  assert.deepEqual(texts(source, service.references(analysis, offset)), ["pg_db", "pg_db"]);
});

// Completion.

Deno.test("completion at the start of a line offers declaration keywords", () => {
  const { analysis, offset } = cursor(SEED + "\nwor<|>");
  const got = labels(service.completion(analysis, offset));
  assert.deepEqual(got, ["handler", "import", "resource", "step", "type", "workflow"]);
});

Deno.test("completion after `alias.` offers the module's operations", () => {
  const { analysis, offset } = cursor(SEED.replace("| generate_audit", "| kafka.<|>"));
  assert.deepEqual(labels(service.completion(analysis, offset)), ["consume", "produce"]);
});

Deno.test("completion after `alias.` in a resource declaration offers resource kinds", () => {
  const { analysis, offset } = cursor(SEED + "\nresource other = pg.<|>");
  assert.deepEqual(labels(service.completion(analysis, offset)), ["connection"]);
});

Deno.test("completion inside `<...>` offers slot names, then resources of the slot's kind", () => {
  const slots = cursor(SEED.replace("<connection=pg_db> pg.query", "<<|>> pg.query"));
  assert.deepEqual(labels(service.completion(slots.analysis, slots.offset)), ["connection"]);
  const res = cursor(SEED.replace("<connection=pg_db> pg.query", "<connection=<|>> pg.query"));
  assert.deepEqual(labels(service.completion(res.analysis, res.offset)), ["pg_db"]);
  const ch = cursor(SEED.replace("<connection=ch_db> ch.query", "<connection=c<|>> ch.query"));
  assert.deepEqual(labels(service.completion(ch.analysis, ch.offset)), ["ch_db"]);
});

Deno.test("completion inside a config object offers the contract's missing keys", () => {
  const { analysis, offset } = cursor(
    SEED.replace('host: "pg.internal"', 'host: "pg.internal",\n  <|>'),
  );
  const got = labels(service.completion(analysis, offset));
  assert.deepEqual(got, ["database", "password", "port", "user"]);
});

Deno.test("completion inside `retry { }` offers the retry policy's keys", () => {
  const { analysis, offset } = cursor(
    SEED.replace("| generate_audit", "| generate_audit retry { attempts: 3, <|> }"),
  );
  const got = labels(service.completion(analysis, offset));
  assert.ok(got.includes("backoff") && got.includes("timeout"));
  assert.ok(!got.includes("attempts"));
});

Deno.test("completion in a pipeline offers declared steps and the body's streams", () => {
  const { analysis, offset } = cursor(SEED.replace("| generate_audit", "| <|>"));
  const got = labels(service.completion(analysis, offset));
  for (const name of ["fetch_user_data", "generate_audit", "tx_stream", "kafka"]) {
    assert.ok(got.includes(name), name);
  }
  assert.ok(!got.includes("workflow"));
});

Deno.test("completion after `?` offers handlers", () => {
  const { analysis, offset } = cursor(
    SEED.replace("| fraud_detection.process ? alert_step_fail", "| fraud_detection.process ? <|>"),
  );
  assert.deepEqual(labels(service.completion(analysis, offset)), [
    "alert_on_fail",
    "alert_step_fail",
  ]);
});

Deno.test("completion inside a PRQL block offers the columns of `input`", () => {
  const { analysis, offset } = seedAt("filter am<|>ount > 10000");
  const items = service.completion(analysis, offset);
  assert.deepEqual(labels(items.filter((i) => i.kind === "column")), ["amount", "user_id"]);
  assert.equal(items.find((i) => i.label === "amount")?.detail, "float64");
  // In an expression, the functions PRQL offers as well.
  assert.ok(items.some((i) => i.kind === "function" && i.label === "sum"));
});

Deno.test("completion after `join` in PRQL offers the lookup steps", () => {
  const { analysis, offset } = seedAt("join fetch_risk<|>_profile");
  assert.deepEqual(labels(service.completion(analysis, offset)), [
    "fetch_risk_profile",
    "fetch_user_data",
  ]);
});

// Outline, formatting, rename.

Deno.test("document symbols list declarations in order with workflow bindings nested", () => {
  const { analysis } = seedAt("<|>import");
  const outline = service.documentSymbols(analysis);
  assert.deepEqual(outline.map((s) => s.name), [
    "kafka",
    "pg",
    "ch",
    "openai",
    "fraud_detection",
    "pg_db",
    "ch_db",
    "kf_broker",
    "fetch_user_data",
    "fetch_risk_profile",
    "generate_audit",
    "alert_on_fail",
    "alert_step_fail",
    "FraudDetection",
  ]);
  const wf = outline.at(-1)!;
  assert.equal(wf.kind, "workflow");
  assert.deepEqual(wf.children.map((c) => [c.name, c.kind]), [["tx_stream", "stream"]]);
});

Deno.test("formatting returns a whole-document edit that the formatter agrees is canonical", () => {
  const messy = SEED.replace("resource pg_db = pg.connection {", "resource   pg_db=pg.connection{");
  const edits = service.formatting(messy);
  assert.ok(edits && edits.length === 1);
  assert.deepEqual(edits[0].span, { start: 0, end: messy.length });
  assert.deepEqual(service.formatting(edits[0].newText), []);
});

Deno.test("formatting gives no edit for a file with syntax errors", () => {
  assert.equal(service.formatting(SEED.replace("> tx_stream", "> ")), null);
});

Deno.test("rename changes the declaration and every use, PRQL joins included", () => {
  const { analysis, offset, source } = seedAt("step fetch_user<|>_data");
  const result = service.rename(analysis, offset, "load_user");
  assert.ok(result.ok);
  let out = source;
  for (const e of [...result.edits].sort((a, b) => b.span.start - a.span.start)) {
    out = out.slice(0, e.span.start) + e.newText + out.slice(e.span.end);
  }
  assert.ok(!out.includes("fetch_user_data"));
  assert.match(out, /step load_user = /);
  assert.match(out, /join load_user \(==user_id\)/);
  assert.deepEqual(service.diagnostics(service.analyse(out, analysis.file)), []);
});

Deno.test("rename refuses a name that is already declared or not an identifier", () => {
  const { analysis, offset } = seedAt("resource pg<|>_db");
  const taken = service.rename(analysis, offset, "kf_broker");
  assert.equal(taken.ok, false);
  assert.match(taken.ok ? "" : taken.message, /`kf_broker` is already declared/);
  assert.equal(service.rename(analysis, offset, "9lives").ok, false);
  assert.equal(service.rename(analysis, offset, "workflow").ok, false);
});

Deno.test("rename refuses where the cursor is on no declared name", () => {
  const { analysis, offset } = seedAt("filter amount > 10<|>000");
  assert.equal(service.prepareRename(analysis, offset), null);
  assert.equal(service.rename(analysis, offset, "x").ok, false);
});

// Diagnostics and positions.

Deno.test("diagnostics carry the code, the range, related labels and hints", () => {
  const { analysis } = cursor(SEED.replace("<connection=pg_db>", "<connection=ch_db><|>"));
  const ds = service.diagnostics(analysis);
  const wrong = ds.find((d) => d.severity === "error");
  assert.ok(wrong);
  assert.equal(analysis.source.slice(wrong.span.start, wrong.span.end), "ch_db");
  assert.match(wrong.code, /^HE\d{4}$/);
  assert.ok(wrong.related.length > 0);
  assert.equal(wrong.related[0].file, analysis.file);
});

Deno.test("diagnostics append hints to the message", () => {
  const { analysis } = cursor(SEED.replace("| generate_audit", "| generate_audi<|>"));
  const d = service.diagnostics(analysis).find((d) => d.severity === "error");
  assert.ok(d);
  assert.match(d.message, /no step or stream is named `generate_audi`\nhint: .*generate_audit/);
});

Deno.test("positions count UTF-16 code units and clamp past the end of a line", () => {
  const text = "// é😀x\nstep";
  const lines = lineIndex(text);
  const x = text.indexOf("x");
  assert.deepEqual(service.positionAt(lines, x), { line: 0, character: x });
  assert.equal(service.offsetAt(lines, { line: 0, character: x }), x);
  assert.equal(service.offsetAt(lines, { line: 0, character: 99 }), text.indexOf("\n"));
  assert.equal(service.offsetAt(lines, { line: 7, character: 0 }), text.indexOf("step"));
});

Deno.test("every request answers without throwing at every offset of a broken file", () => {
  const broken = SEED.slice(0, Math.floor(SEED.length * 0.6)) + '\n| <connection= { query: "';
  const a = service.analyse(broken, "/nowhere/broken.he");
  for (let offset = 0; offset <= broken.length; offset += 7) {
    service.hover(a, offset);
    service.definition(a, offset);
    service.references(a, offset);
    service.completion(a, offset);
    service.prepareRename(a, offset);
  }
  assert.ok(service.diagnostics(a).length > 0);
  assert.ok(service.documentSymbols(a).length > 0);
});

// Serving requests while an edit is pending.

Deno.test("editBetween maps offsets of a newer text to an older one and back", () => {
  const edit = service.editBetween("filter amount > 10 # x", "filter amount > 1000 # x");
  assert.equal(edit.toOlder(5), 5);
  assert.equal(edit.toOlder(21), 19);
  assert.equal(edit.toNewer(19), 21);
  assert.equal(edit.toNewer(16), 16);
  // Inside the inserted text: where the insertion ends in the older text.
  assert.equal(edit.toOlder(19), 18);
});

Deno.test("completion through a newer text reads its prefix and the older analysis's names", () => {
  const { analysis, offset } = seedAt("filter <|>amount > 10000");
  const newer = analysis.source.slice(0, offset) + "am" + analysis.source.slice(offset);
  const view = service.withText(
    analysis,
    newer,
    lineIndex(newer),
    service.editBetween(analysis.source, newer),
  );
  const items = service.completion(view, offset + 2);
  assert.deepEqual(labels(items.filter((i) => i.kind === "column")), ["amount", "user_id"]);
});

Deno.test("recheck of an edit inside one workflow gives the diagnostics a full analysis gives", () => {
  const source = generateProgram(600);
  const file = "/tmp/recheck.he";
  const before = service.analyse(source, file);
  assert.deepEqual(before.diagnostics.filter((d) => d.severity === "error"), []);
  // A misspelt config key and a misspelt step in one workflow's body.
  const at = source.indexOf("workflow Flow7 ");
  const body = source.slice(at, source.indexOf("\n}\n", at));
  const edited = body.replace('{ topic: "audits_7" }', '{ topik: "audits_7" }')
    .replace("| summarise_7 ?", "| summarise_77 ?");
  const after = source.slice(0, at) + edited + source.slice(at + body.length);
  const partial = service.recheck(before, after, service.editBetween(source, after));
  assert.ok(partial, "the edit is inside one workflow");
  const full = service.analyse(after, file);
  const view = (a: service.Analysis) =>
    a.diagnostics.filter((d) => d.code !== "HE0123").map((d) =>
      `${d.code} ${after.slice(d.span.start, d.span.end)} ${d.message}`
    ).sort();
  assert.deepEqual(view(partial), view(full));
  assert.equal(view(full).length, 3);
  // An edit that spans two declarations is declined: a full analysis is needed.
  const across = source.replace("}\n\n// Block 3", "}\n\n\n// Block 3");
  assert.equal(service.recheck(before, across, service.editBetween(source, across)), null);
});

Deno.test("recheck reports a conflict the edited workflow causes in another declaration, and drops it once fixed", () => {
  const source = generateProgram(600);
  const file = "/tmp/recheck.he";
  const clean = service.analyse(source, file);
  const at = source.indexOf("workflow Flow7 ");
  const body = source.slice(at, source.indexOf("\n}\n", at));
  const view = (a: service.Analysis) =>
    a.diagnostics.filter((d) => d.code !== "HE0123").map((d) => ({
      code: d.code,
      span: d.span,
      message: d.message,
      labels: d.labels.map((l) => ({ span: l.span, message: l.message })),
      hints: d.hints,
    }));
  // A string compared with `amount`: the conflict is reported at `type Transaction`, where
  // `amount: float64` is declared, far from the edit; a row annotation that contradicts the
  // declared `user_id`.
  const edits = [
    ["filter amount > 7 ", 'filter amount == "x" '],
    [": { user_id: int64, .. }", ": { user_id: utf8, .. }"],
  ];
  for (const [from, to] of edits) {
    const broken = source.slice(0, at) + body.replace(from, to) + source.slice(at + body.length);
    const full = service.analyse(broken, file);
    assert.equal(view(full).length, 1, to);
    const partial = service.recheck(clean, broken, service.editBetween(source, broken));
    assert.ok(partial, "the edit is inside one workflow");
    assert.deepEqual(view(partial), view(full), to);
    // Fixed again in the body: the conflict elsewhere goes with it.
    const fixed = service.recheck(full, source, service.editBetween(broken, source));
    assert.ok(fixed);
    assert.deepEqual(view(fixed), view(clean), `${to}, fixed`);
  }
});

Deno.test("rechecks chain: typing in one workflow, then in another, gives what a full analysis gives", () => {
  const source = generateProgram(600);
  const file = "/tmp/recheck.he";
  const view = (a: service.Analysis) =>
    a.diagnostics.filter((d) => d.code !== "HE0123").map((d) =>
      `${d.code} ${d.span.start}-${d.span.end} ${d.message} ${
        d.labels.map((l) => `${l.span.start}-${l.span.end}`)
      }`
    );
  const edit = (text: string, flow: string, from: string, to: string) => {
    const at = text.indexOf(`workflow ${flow} `);
    const end = text.indexOf("\n}\n", at);
    return text.slice(0, at) + text.slice(at, end).replace(from, to) + text.slice(end);
  };
  // A misspelt column in Flow7, then a conflict with `type Transaction` typed in Flow9: the
  // second recheck starts from the first's base, so the edits since the full analysis span two
  // workflows and it still needs no full analysis.
  const first = edit(source, "Flow7", "filter amount >", "filter amout >");
  const second = edit(first, "Flow9", "filter amount > 9 ", 'filter amount == "x" ');
  const one = service.recheck(
    service.analyse(source, file),
    first,
    service.editBetween(source, first),
  );
  assert.ok(one);
  assert.equal(
    service.recheck(service.analyse(source, file), second, service.editBetween(source, second)),
    null,
    "from the full analysis the edits span two workflows",
  );
  const two = service.recheck(one.base, second, service.editBetween(first, second));
  assert.ok(two);
  const full = service.analyse(second, file);
  assert.equal(view(full).length, 2, view(full).join("\n"));
  assert.deepEqual(view(two), view(full));
});

Deno.test("completion in a half-typed PRQL block offers columns at each transform, never the typed word", () => {
  const file = new URL("../../examples/quickstart.he", import.meta.url).pathname;
  const source = Deno.readTextFileSync(file);
  const options = { heddlePath: new URL("../../examples/plugins", import.meta.url).pathname };
  const opened = service.analyse(source, file, options);
  const line = '    filter status == "settled" && amount > 0.0\n';
  const columns = ["amount", "merchant", "status", "ts", "tx_id", "user_id"];
  for (const typed of ["filter ", "select {", "sort ", "derive x = ", "derive x = amou"]) {
    const text = source.replace(line, `    ${typed}\n`);
    const at = text.indexOf(`    ${typed}\n`) + 4 + typed.length;
    const items = service.completion(service.analyse(text, file, options), at, opened);
    const offered = labels(items.filter((i) => i.kind === "column"));
    assert.deepEqual(offered, columns, typed);
  }
  // After `aggregate {` in the second block: the rows arriving there, and the functions.
  const second = "        payments = count this,\n";
  const text = source.replace(second, "        s = sum amo\n");
  const at = text.indexOf("sum amo") + "sum amo".length;
  const items = service.completion(service.analyse(text, file, options), at, opened);
  assert.ok(items.some((i) => i.label === "amount_cents" && i.kind === "column"));
  assert.ok(items.some((i) => i.label === "count" && i.kind === "function"));
  assert.ok(!items.some((i) => i.label === "amo" || i.label === "s"));
});
