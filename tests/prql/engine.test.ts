/**
 * Behaviour of the PRQL engine beyond row-for-row agreement with DuckDB (oracle.test.ts):
 * zero-copy projections, the columns a query reads, diagnostics for PRQL errors and for
 * constructs the engine does not support, and typed errors on data that does not fit.
 */
import { strict as assert } from "node:assert";
import * as arrow from "apache-arrow";
import {
  type CompiledQuery,
  compilePrql,
  execute,
  PRQL_ERROR,
  PRQL_UNSUPPORTED,
  PrqlExecutionError,
} from "../../runtime/prql/mod.ts";
import { makeDataset } from "./_fixtures.ts";

const ds = makeDataset(7, 50);
const schemas = Object.fromEntries(Object.entries(ds.tables).map(([k, t]) => [k, t.schema]));

function compile(text: string, rel = schemas): CompiledQuery {
  const r = compilePrql(text, rel);
  assert.deepEqual(r.diagnostics, []);
  return r.value!;
}

function check(text: string, code: string, messagePart: string, spanText?: string) {
  const r = compilePrql(text, schemas);
  assert.equal(r.value, null);
  assert.equal(r.diagnostics.length >= 1, true);
  const d = r.diagnostics[0];
  assert.equal(d.code, code);
  assert.match(d.message, new RegExp(messagePart));
  if (spanText !== undefined) assert.equal(text.slice(d.span.start, d.span.end), spanText);
}

Deno.test("execute() returns a pure projection without copying the input's buffers", () => {
  const q = compile("from input | select {uid = user_id, amount, name}");
  assert.equal(q.projectionOf, "input");
  const out = execute(q, ds.tables);
  assert.deepEqual(out.schema.fields.map((f) => f.name), ["uid", "amount", "name"]);
  const input = ds.tables.input;
  assert.equal(out.getChild("uid")!.data[0].values, input.getChild("user_id")!.data[0].values);
  assert.equal(out.getChild("amount")!.data[0].values, input.getChild("amount")!.data[0].values);
  assert.equal(
    out.getChild("amount")!.data[0].nullBitmap,
    input.getChild("amount")!.data[0].nullBitmap,
  );
  assert.equal(
    out.getChild("name")!.data[0].valueOffsets,
    input.getChild("name")!.data[0].valueOffsets,
  );
});

Deno.test("compilePrql() does not treat a filtered query as a projection", () => {
  assert.equal(compile("from input | filter qty > 0 | select {qty}").projectionOf, null);
  assert.equal(compile("from input | derive {x = qty + 1} | select {x}").projectionOf, null);
});

Deno.test("compilePrql() reports only the input columns a query reads", () => {
  const q = compile("from input | filter amount > 10000 | select {user_id, qty}");
  assert.deepEqual(q.readColumns.input.toSorted(), ["amount", "qty", "user_id"]);
  const j = compile("from input | join users (==user_id) | select {amount, country}");
  assert.deepEqual(j.readColumns.input.toSorted(), ["amount", "user_id"]);
  assert.deepEqual(j.readColumns.users.toSorted(), ["country", "user_id"]);
});

Deno.test("compilePrql() accepts the seed program's blocks and chains lookups by the input key", () => {
  const first = compile("from input\nfilter amount > 10000\nselect {user_id, amount}");
  assert.deepEqual(first.outputSchema.fields.map((f) => String(f.type)), ["Int32", "Float64"]);
  const rel = {
    input: first.outputSchema,
    fetch_user_data: schemas.users,
    fetch_risk_profile: schemas.risk,
  };
  const second = compile(
    "from input\njoin fetch_user_data (==user_id)\njoin fetch_risk_profile (==user_id)",
    rel,
  );
  assert.deepEqual(second.outputSchema.fields.map((f) => f.name), [
    "user_id",
    "amount",
    "user_id_1",
    "country",
    "score",
    "user_id_2",
    "velocity",
  ]);
  const mid = execute(first, ds.tables);
  const out = execute(second, {
    input: mid,
    fetch_user_data: ds.tables.users,
    fetch_risk_profile: ds.tables.risk,
  });
  for (let i = 0; i < out.numRows; i++) {
    assert.equal(out.getChild("user_id")!.get(i), out.getChild("user_id_2")!.get(i));
    assert.equal(out.getChild("amount")!.get(i)! > 10000, true);
  }
});

Deno.test("compilePrql() maps a PRQL syntax error's span into the block's text", () => {
  check("from input\nfilter (amount > 1", PRQL_ERROR, "end of input");
  check("from input | select {user_id, nope}", PRQL_ERROR, "Unknown name", "nope");
});

Deno.test("compilePrql() names constructs the engine does not support", () => {
  check('from input | derive {x = s"random()"}', PRQL_UNSUPPORTED, "s-strings", 's"');
  check(
    "from input | group {user_id} (sort {ts} | window range:-1..1 (derive {w = sum amount}))",
    PRQL_UNSUPPORTED,
    "RANGE window frames",
  );
  check("from input | derive {p = math.pow amount 2}", PRQL_UNSUPPORTED, "`math.pow`", "pow");
  check("from input | group user_id (aggregate {s = stddev amount})", PRQL_UNSUPPORTED, "stddev");
  check("from input | filter name > 3", PRQL_UNSUPPORTED, "mixes `text` and `int`");
  check('from input | derive {s = f"a{amount}"}', PRQL_UNSUPPORTED, "concat");
});

Deno.test("compilePrql() reports a relation it has no schema for", () => {
  check("from nowhere | select {a}", PRQL_UNSUPPORTED, "unknown relation `nowhere`", "nowhere");
});

Deno.test("execute() reads tables split into several record batches", () => {
  const q = compile("from input | filter qty > 2 | sort {amount} | select {qty, amount}");
  const whole = execute(q, ds.tables);
  const input = ds.tables.input;
  const split = new arrow.Table([...input.slice(0, 20).batches, ...input.slice(20).batches]);
  assert.equal(split.batches.length, 2);
  const parts = execute(q, { ...ds.tables, input: split });
  assert.deepEqual(parts.toArray().map((r) => r.toJSON()), whole.toArray().map((r) => r.toJSON()));
});

Deno.test("execute() throws a PrqlExecutionError for a missing or mistyped relation", () => {
  const q = compile("from input | filter qty > 2");
  assert.throws(() => execute(q, {}), PrqlExecutionError);
  const wrong = new arrow.Table({
    ...Object.fromEntries(
      ds.tables.input.schema.fields.map((f) => [f.name, ds.tables.input.getChild(f.name)!]),
    ),
    qty: arrow.vectorFromArray(["x"], new arrow.Utf8()),
  });
  assert.throws(() => execute(q, { input: wrong }), /compiled for/);
});

Deno.test("execute() refuses 64-bit integers it cannot represent exactly", () => {
  const big = new arrow.Table({
    v: arrow.vectorFromArray([1n, 2n ** 60n], new arrow.Int64()),
  });
  const q = compile("from t | filter v > 0", { t: big.schema });
  assert.throws(() => execute(q, { t: big }), /2\^53/);
});
