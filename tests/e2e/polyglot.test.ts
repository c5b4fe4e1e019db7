/**
 * The polyglot chain TypeScript → Python → Go → Rust → TypeScript: `heddle run
 * examples/polyglot.he` as a process gives, row for row, what an independent computation
 * over the CSV says (rejected rows at the handler with the step that rejected them); and on
 * 1M rows through the plugin host the chain's output equals the same reference, computed
 * here in TypeScript from the input columns, while every hand-off is a shared-memory handle.
 */
import assert from "node:assert/strict";
import {
  Field,
  Float64,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Utf8,
} from "apache-arrow";
import { heddle } from "../_cli.ts";
import { rig } from "../plugins/_fixtures.ts";

const examples = new URL("../../examples/", import.meta.url).pathname;
const toolchains = await Promise.all(
  [["go", "version"], ["cargo", "--version"]].map(([tool, arg]) =>
    new Deno.Command(tool, { args: [arg] }).output().then((o) => o.success, () => false)
  ),
);
const ignore = !toolchains.every(Boolean);
/** Compiled plugins build on first use; on a cold cache that is minutes, not seconds. */
const BUILD_TIMEOUT_MS = 900_000;

const FOLD: Record<string, string> = { "é": "e", "ü": "u", "ô": "o", "à": "a" };

/** The Rust step's key, written again from its definition: lower case, accents off, words. */
function merchantKey(name: string): string {
  const folded = [...name.toLowerCase()].map((c) => FOLD[c] ?? c).join("");
  return folded.split(/[^\p{L}\p{N}]+/u).filter((w) => w).join(" ");
}

function fnv1a(text: string): bigint {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return BigInt.asIntN(64, hash);
}

function haversine(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const a = Math.sin((lat2 - lat1) * rad / 2) ** 2 +
    Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin((lon2 - lon1) * rad / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(a)));
}

function cents(amount: number): number {
  return Math.sign(amount) * Math.round(Math.abs(amount) * 100);
}

function risk(amountCents: number, km: number): number {
  return (amountCents >= 100_000 ? 0.5 : 0) + Math.min(km / 2000, 0.5);
}

Deno.test({
  name: "heddle run passes a table through TypeScript, Python, Go, Rust and TypeScript steps",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "heddle-polyglot-" });
    try {
      await Deno.mkdir(`${dir}/data`);
      await Deno.copyFile(`${examples}polyglot.he`, `${dir}/polyglot.he`);
      await Deno.copyFile(`${examples}data/card_events.csv`, `${dir}/data/card_events.csv`);
      const r = await heddle(["run", `${dir}/polyglot.he`], {
        env: { HEDDLE_PATH: `${examples}plugins` },
      });
      assert.equal(r.code, 0, r.stderr);

      const lines = (await Deno.readTextFile(`${dir}/data/card_events.csv`)).trim().split("\n");
      const expected = new Map<number, Record<string, unknown>>();
      const rejected = new Map<number, string>();
      for (const line of lines.slice(1)) {
        const [id, , amount, merchant, lat, lon, homeLat, homeLon] = line.split(",");
        const name = merchant.slice(1, -1);
        if (lat === "") rejected.set(Number(id), "geo/distance.haversine");
        else if (merchantKey(name) === "") rejected.set(Number(id), "text-norm/merchant.normalise");
        else {
          const km = haversine(+lat, +lon, +homeLat, +homeLon);
          expected.set(Number(id), {
            amount_cents: cents(+amount),
            is_large: cents(+amount) >= 100_000,
            km_from_home: km,
            merchant_key: merchantKey(name),
            merchant_hash: fnv1a(merchantKey(name)),
            risk: risk(cents(+amount), km),
          });
        }
      }
      // int64 values past 2^53 are exact in the file; JSON.parse would round them.
      const out = (await Deno.readTextFile(`${dir}/data/out/polyglot.jsonl`)).trim().split("\n")
        .map((l) => ({
          ...JSON.parse(l),
          merchant_hash: l.match(/"merchant_hash":\s*(-?\d+)/)![1],
        }));
      assert.equal(out.length, expected.size);
      for (const row of out) {
        const want = expected.get(row.event_id)!;
        assert.ok(want, `unexpected row ${row.event_id}`);
        assert.equal(row.amount_cents, want.amount_cents);
        assert.equal(row.is_large, want.is_large);
        assert.ok(Math.abs(row.km_from_home - (want.km_from_home as number)) < 1e-9);
        assert.equal(row.merchant_key, want.merchant_key);
        assert.equal(BigInt(row.merchant_hash), want.merchant_hash);
        assert.ok(Math.abs(row.risk - (want.risk as number)) < 1e-12);
      }
      const bad = (await Deno.readTextFile(`${dir}/data/out/polyglot_rejected.jsonl`)).trim()
        .split("\n").map((l) => JSON.parse(l));
      assert.deepEqual(
        new Map(bad.map((row) => [row.event_id, row._error_step])),
        rejected,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

function events(rows: number): Table {
  const columns = {
    amount: new Float64Array(rows),
    lat: new Float64Array(rows),
    lon: new Float64Array(rows),
    home_lat: new Float64Array(rows),
    home_lon: new Float64Array(rows),
  };
  const names = ["Café Zürich-Nord", "  GROCER  bio ", "Fnac Paris", "Hôtel de Ville"];
  const merchant: string[] = [];
  for (let i = 0; i < rows; i++) {
    columns.amount[i] = ((i * 7919) % 300_000) / 100;
    columns.lat[i] = ((i * 31) % 17_000) / 100 - 85;
    columns.lon[i] = ((i * 17) % 35_000) / 100 - 175;
    columns.home_lat[i] = ((i * 13) % 17_000) / 100 - 85;
    columns.home_lon[i] = ((i * 11) % 35_000) / 100 - 175;
    merchant.push(names[i % names.length]);
  }
  const ids = makeData({
    type: new Int64(),
    length: rows,
    data: BigInt64Array.from({ length: rows }, (_, i) => BigInt(i)),
  });
  const encoded = new TextEncoder();
  const offsets = new Int32Array(rows + 1);
  const bytes = merchant.map((m) => encoded.encode(m));
  for (let i = 0; i < rows; i++) offsets[i + 1] = offsets[i] + bytes[i].length;
  const text = new Uint8Array(offsets[rows]);
  bytes.forEach((b, i) => text.set(b, offsets[i]));
  const fields = [
    new Field("event_id", new Int64(), false),
    ...Object.keys(columns).map((n) => new Field(n, new Float64(), false)),
    new Field("merchant", new Utf8(), false),
  ];
  const children = [
    ids,
    ...Object.values(columns).map((data) => makeData({ type: new Float64(), length: rows, data })),
    makeData({ type: new Utf8(), length: rows, valueOffsets: offsets, data: text }),
  ];
  const schema = new Schema(fields);
  return new Table(
    schema,
    new RecordBatch(schema, makeData({ type: new Struct(fields), length: rows, children })),
  );
}

Deno.test({
  name: "a million rows through the four-language chain equal an independent reference",
  ignore,
  async fn() {
    const rows = 1_000_000;
    await using r = rig();
    let handle = r.registry.put(events(rows), 1);
    for (
      const [step, config] of [
        ["ts-enrich/enrich.cents", {}],
        ["py-flags/amounts.large", { cents: 100000 }],
        ["geo/distance.haversine", {}],
        ["text-norm/merchant.normalise", {}],
        ["ts-enrich/enrich.risk", {}],
      ] as const
    ) {
      const result = await r.host.invoke(step, config, handle, { timeoutMs: BUILD_TIMEOUT_MS });
      assert.ok(result.ok, result.ok ? "" : `${step}: ${result.error.message}`);
      assert.deepEqual(result.rowErrors, [], step);
      r.registry.release(handle.id);
      handle = result.output;
    }
    using lease = r.registry.open(handle);
    const t = lease.table;
    assert.equal(t.numRows, rows);
    const col = (n: string) => t.getChild(n)!;
    const [amount, lat, lon, hLat, hLon] = ["amount", "lat", "lon", "home_lat", "home_lon"]
      .map((n) => col(n).toArray() as Float64Array);
    const km = col("km_from_home").toArray() as Float64Array;
    const score = col("risk").toArray() as Float64Array;
    const hash = col("merchant_hash").toArray() as BigInt64Array;
    const key = col("merchant_key");
    const keys = new Map<string, bigint>();
    let mismatches = 0;
    for (let i = 0; i < rows; i++) {
      const d = haversine(lat[i], lon[i], hLat[i], hLon[i]);
      const c = cents(amount[i]);
      const k = key.get(i) as string;
      if (!keys.has(k)) keys.set(k, fnv1a(k));
      if (
        Math.abs(km[i] - d) > 1e-6 || Math.abs(score[i] - risk(c, d)) > 1e-9 ||
        hash[i] !== keys.get(k)
      ) mismatches++;
    }
    assert.equal(mismatches, 0);
    assert.deepEqual(
      [...keys.keys()].sort(),
      ["cafe zurich nord", "fnac paris", "grocer bio", "hotel de ville"],
    );
  },
});
