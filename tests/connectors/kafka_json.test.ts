/**
 * The Kafka connector's column decoder and row encoder (runtime/connectors/_kafka_json.ts)
 * must answer exactly what the generic path answered before them: a row object per record
 * coerced by `coerce` and built by `tableFromRows`, and `JSON.stringify` of `rowsOf`'s rows.
 * Generated records over many column types (64-bit integers beyond 2^53, nulls, non-ASCII and
 * escaped text, values as strings, dates, lists) and malformed ones are run through both.
 */
import assert from "node:assert/strict";
import { Schema } from "apache-arrow";
import { RowDecoder, rowEncoder } from "../../runtime/connectors/_kafka_json.ts";
import {
  coerce,
  rawRowsOf,
  rowsOf,
  tableFromRows,
  toArrowField,
} from "../../runtime/connectors/mod.ts";
import type { ArrowType } from "../../compiler/modules/mod.ts";

const p = (name: string) => ({ kind: "primitive", name }) as ArrowType;

const schema = new Schema([
  toArrowField({ name: "id", type: p("int64"), nullable: false }),
  toArrowField({ name: "small", type: p("int8"), nullable: true }),
  toArrowField({ name: "count", type: p("int32"), nullable: true }),
  toArrowField({ name: "big", type: p("uint64"), nullable: true }),
  toArrowField({ name: "amount", type: p("float64"), nullable: false }),
  toArrowField({ name: "ratio", type: p("float32"), nullable: true }),
  toArrowField({ name: "ok", type: p("bool"), nullable: true }),
  toArrowField({ name: "name", type: p("utf8"), nullable: true }),
  toArrowField({ name: "day", type: p("date32"), nullable: true }),
  toArrowField({ name: "at", type: { kind: "timestamp", unit: "ms", tz: null }, nullable: true }),
  toArrowField({
    name: "tags",
    type: { kind: "list", element: { name: "item", type: p("utf8"), nullable: true } },
    nullable: true,
  }),
]);

/** A deterministic generator, so a failure can be reproduced. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}

const texts = [
  "plain",
  "naïve café",
  "日本語",
  'quote " and \\ backslash',
  "line\nbreak",
  "",
  "🙂",
];

function record(next: () => number, id: number): string {
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)];
  const maybe = <T>(v: T) => (next() < 0.15 ? pick([null, undefined]) : v);
  const value: Record<string, unknown> = {
    id: pick([id, String(id), -id]),
    small: maybe(pick([-128, 127, 5, "12"])),
    count: maybe(pick([2147483647, -3, 0, "40"])),
    big: maybe(pick([0, 2 ** 53 - 1, "18446744073709551615", "9007199254740993"])),
    amount: pick([0.1, -0, 1e300, 5e-324, 42, "1.5", id / 7]),
    ratio: maybe(pick([0.5, 1 / 3, -2.25])),
    ok: maybe(pick([true, false, "true", "0"])),
    name: maybe(pick([...texts, 12, { nested: true }])),
    day: maybe(pick(["2024-02-29", "1970-01-01"])),
    at: maybe(pick(["2026-12-07T18:00:00.123Z", 0, 1700000000000])),
    tags: maybe(pick([["a", "ü"], [], ["x", null]])),
  };
  for (const k of Object.keys(value)) if (value[k] === undefined) delete value[k];
  return JSON.stringify(value);
}

const malformed = [
  "not json",
  "[1, 2]",
  '"a string"',
  "null",
  '{"amount": 1}',
  '{"id": 1.5, "amount": 1}',
  '{"id": 1, "amount": "many"}',
  '{"id": 1, "amount": 1, "small": 300}',
  '{"id": 1, "amount": 1, "count": 2147483648}',
  '{"id": 1, "amount": 1, "big": -1}',
  '{"id": 1, "amount": 1, "ok": "maybe"}',
  '{"id": 1, "amount": 1, "day": "not a day"}',
  '{"id": 1e21, "amount": 1}',
];

/** The generic path: a coerced row object per record, then `tableFromRows`. */
function reference(values: string[]) {
  const rows: Record<string, unknown>[] = [];
  const rejected: { why: string; column?: string }[] = [];
  for (const text of values) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      rejected.push({ why: "invalid JSON" });
      continue;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      rejected.push({ why: "expected a JSON object" });
      continue;
    }
    const row: Record<string, unknown> = {};
    let failed: { why: string; column?: string } | null = null;
    for (const f of schema.fields) {
      try {
        row[f.name] = coerce((value as Record<string, unknown>)[f.name], f.type, f.name);
      } catch (e) {
        failed = { why: (e as Error).message, column: f.name };
        break;
      }
      if (row[f.name] === null && !f.nullable) {
        failed = { why: `column \`${f.name}\`: missing value`, column: f.name };
        break;
      }
    }
    if (failed) rejected.push(failed);
    else rows.push(row);
  }
  return { table: tableFromRows(schema, rows), rejected };
}

Deno.test("the Kafka column decoder gives the generic path's rows and row errors", () => {
  const next = random(11);
  const values = Array.from({ length: 600 }, (_, i) => record(next, i));
  values.splice(100, 0, ...malformed);
  const want = reference(values);
  const decoder = new RowDecoder(schema);
  const rejected: { why: string; column?: string }[] = [];
  for (const text of values) {
    const r = decoder.add(text);
    if (r) rejected.push({ why: r.why, ...(r.column ? { column: r.column } : {}) });
  }
  const got = decoder.finish();
  assert.equal(got.numRows, want.table.numRows);
  // Values as JSON-safe values (list cells are Arrow vectors whose buffers may be laid out
  // differently), and 64-bit integers as they are.
  assert.deepEqual(rowsOf(got), rowsOf(want.table));
  assert.deepEqual(
    rawRowsOf(got).map((r) => [r.id, r.big]),
    rawRowsOf(want.table).map((r) => [r.id, r.big]),
  );
  for (const f of schema.fields) {
    assert.equal(got.getChild(f.name)!.nullCount, want.table.getChild(f.name)!.nullCount, f.name);
  }
  assert.equal(rejected.length, malformed.length);
  // The JSON parser's own words differ between the two; what the rows say must not.
  assert.deepEqual(
    rejected.map((r) => (r.why.startsWith("invalid JSON") ? { why: "invalid JSON" } : r)),
    want.rejected,
  );
  // The decoder starts empty again after finish().
  assert.equal(decoder.finish().numRows, 0);
});

Deno.test("the Kafka row encoder writes exactly JSON.stringify of rowsOf, sliced tables included", () => {
  const next = random(29);
  const { table } = reference(Array.from({ length: 500 }, (_, i) => record(next, i)));
  const encode = rowEncoder(table.schema);
  assert.deepEqual(encode(table), rowsOf(table).map((r) => JSON.stringify(r)));
  const slice = table.slice(37, 311);
  assert.deepEqual(encode(slice), rowsOf(slice).map((r) => JSON.stringify(r)));
  const empty = table.slice(0, 0);
  assert.deepEqual(encode(empty), []);
});
