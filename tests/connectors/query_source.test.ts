/**
 * A query without `@params` at the start of a pipeline is a source (issue 11.5): PostgreSQL
 * streams it through a server-side cursor and ClickHouse as a stream of JSON rows, both cut
 * into batches of the run's batch size, so a result of any size is read in bounded memory.
 * Checked against the real servers, directly and through `heddle run`: every row arrives
 * once with its exact values (int64 beyond 2^53, non-ASCII text, nulls), and a query the
 * server rejects fails the run with the server's reason, not a trace.
 */
import assert from "node:assert/strict";
import { builtinConnectors, rowsOf, type Source } from "../../runtime/connectors/mod.ts";
import { serviceConfig, serviceTest } from "../services/mod.ts";
import { heddle } from "../_cli.ts";
import { withClickhouse, withPostgres } from "./_databases.ts";
import { context, resources } from "./_fixtures.ts";

const ROWS = 2_500;
const BIG = 9_007_199_254_740_993n; // 2^53 + 1: a float64 would round it

async function openSource(
  name: string,
  query: string,
  connection: Record<string, unknown>,
  batchRows: number,
): Promise<Source> {
  const f = builtinConnectors().get(name);
  assert.ok(f?.role === "lookup" && f.openSource, `${name} can start a pipeline`);
  return await f.openSource(context({ query }, { connection }, null, batchRows));
}

/** Every batch the source yields, read to its end (`rowsOf` gives int64 beyond 2^53 as exact text). */
async function drain(source: Source): Promise<Record<string, unknown>[][]> {
  const batches: Record<string, unknown>[][] = [];
  try {
    for await (const b of source.batches(new AbortController().signal)) {
      assert.deepEqual(b.errors, []);
      assert.ok(b.table.schema.fields.every((f, i) => f.name === source.schema.fields[i].name));
      batches.push(rowsOf(b.table));
    }
  } finally {
    await source.close();
  }
  return batches;
}

const PEOPLE = [
  "CREATE TABLE people (id bigint PRIMARY KEY, name text, score double precision)",
  `INSERT INTO people SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'Zoë-' || g END, g / 4.0
     FROM generate_series(1, ${ROWS}) g`,
  `INSERT INTO people VALUES (${BIG}, 'big', 0)`,
];

serviceTest("postgresql.query without @params streams its result through a cursor in batches", [
  "postgres",
], async () => {
  await withPostgres(PEOPLE, async (database) => {
    const source = await openSource(
      "fhub/postgresql.query",
      "SELECT id, name, score FROM people ORDER BY id;",
      { ...resources.postgres, database },
      1000,
    );
    assert.equal(source.bounded, true);
    assert.deepEqual(source.schema.fields.map((f) => `${f.name}:${f.type}`), [
      "id:Int64",
      "name:Utf8",
      "score:Float64",
    ]);
    const batches = await drain(source);
    assert.deepEqual(batches.map((b) => b.length), [1000, 1000, 501]);
    const rows = batches.flat();
    assert.deepEqual(rows[6], { id: 7, name: null, score: 1.75 });
    assert.deepEqual(rows[7], { id: 8, name: "Zoë-8", score: 2 });
    assert.deepEqual(rows.at(-1), { id: String(BIG), name: "big", score: 0 });
    assert.equal(new Set(rows.map((r) => r.id)).size, ROWS + 1);
  });
});

serviceTest("clickhouse.query without @params streams its result in batches", [
  "clickhouse",
], async () => {
  await withClickhouse([
    "CREATE TABLE events (id UInt64, kind Nullable(String), amount Float64) ENGINE = Memory",
    `INSERT INTO events SELECT number + 1, if(number % 5 = 0, NULL, concat('käse-', toString(number))),
       number / 4 FROM numbers(${ROWS})`,
    `INSERT INTO events VALUES (${BIG}, 'big', 0)`,
  ], async (database) => {
    const source = await openSource(
      "fhub/clickhouse.query",
      "SELECT id, kind, amount FROM events ORDER BY id",
      { ...resources.clickhouse, database },
      1000,
    );
    assert.deepEqual(source.schema.fields.map((f) => `${f.name}:${f.type}`), [
      "id:Int64",
      "kind:Utf8",
      "amount:Float64",
    ]);
    const batches = await drain(source);
    assert.deepEqual(batches.map((b) => b.length), [1000, 1000, 501]);
    const rows = batches.flat();
    assert.deepEqual(rows[0], { id: 1, kind: null, amount: 0 });
    assert.deepEqual(rows[1], { id: 2, kind: "käse-1", amount: 0.25 });
    assert.deepEqual(rows.at(-1), { id: String(BIG), kind: "big", amount: 0 });
  });
});

serviceTest("a query with @params cannot be opened as a source", ["postgres"], async () => {
  const f = builtinConnectors().get("fhub/postgresql.query");
  assert.ok(f?.role === "lookup" && f.openSource);
  await assert.rejects(
    f.openSource(context({ query: "SELECT 1 WHERE 1 = @x" }, { connection: resources.postgres })),
    /cannot have `@` parameters/,
  );
});

const PROGRAM = `import "fhub/postgresql" pg
import "fhub/file" file
resource db = pg.connection { host: "localhost" }
step people = <connection=db> pg.query { query: "SELECT id, name, score FROM people WHERE id <= 100000 ORDER BY id" }
workflow Export {
  people
  | (
    from input
    filter score >= 100
  )
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`;

/** `--set` flags pointing resource `db` at the test server's `database`. */
function pgSets(database: string): string[] {
  const p = serviceConfig.postgres;
  return [`host=${p.host}`, `port=${p.port}`, `user=${p.user}`, `password=${p.password}`]
    .concat(`database=${database}`)
    .flatMap((kv) => ["--set", `db.${kv}`]);
}

serviceTest("heddle run starts a pipeline with a PostgreSQL query and writes every row", [
  "postgres",
], async () => {
  const dir = await Deno.makeTempDir({ prefix: "heddle_query_source_" });
  try {
    await Deno.writeTextFile(`${dir}/export.he`, PROGRAM);
    await withPostgres(PEOPLE, async (database) => {
      const r = await heddle(["run", ...pgSets(database), `${dir}/export.he`]);
      assert.equal(r.code, 0, r.stderr);
      const lines = (await Deno.readTextFile(`${dir}/out.jsonl`)).trim().split("\n");
      // score = id / 4 >= 100 from id 400 on; the big id has score 0.
      assert.equal(lines.length, ROWS - 399);
      assert.deepEqual(JSON.parse(lines[0]), { id: 400, name: "Zoë-400", score: 100 });

      const missing = await heddle([
        "run",
        ...pgSets(database),
        "--set",
        "db.database=no_such_database",
        `${dir}/export.he`,
      ]);
      assert.equal(missing.code, 1, missing.stderr);
      assert.match(missing.stderr, /postgresql .*no_such_database/);
      assert.match(missing.stderr, /does not exist/);
      assert.doesNotMatch(missing.stderr, /^\s+at .*:\d+:\d+\)?$/m, "no stack trace");
      assert.doesNotMatch(missing.stderr, new RegExp(serviceConfig.postgres.password));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
