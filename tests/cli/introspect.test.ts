/**
 * `heddle check --introspect` on the real process against the real services: it writes the
 * schema snapshot the seed program commits, reports database failures as diagnostics (never
 * a trace), connects only when asked, and no command ever shows a `secret(...)` value.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import { serviceConfig, serviceTest } from "../services/mod.ts";
import { withClickhouse, withPostgres } from "../connectors/_databases.ts";

const repo = new URL("../../", import.meta.url).pathname;
const env = { HEDDLE_PATH: `${repo}examples/plugins` };
const USERS = "CREATE TABLE users (id bigint PRIMARY KEY, country text)";
const RISK = "CREATE TABLE risk_metrics (user_id Int64, velocity_score Float64) ENGINE = Memory";

/** Runs `fn` with a copy of the seed program in a temp dir, removed afterwards. */
async function withSeedCopy(fn: (program: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "heddle_introspect_" });
  try {
    await Deno.copyFile(`${repo}examples/fraud_detection.he`, `${dir}/fraud_detection.he`);
    await fn(`${dir}/fraud_detection.he`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `--set` flags pointing the seed's resources at the test services. */
function sets(pgDatabase: string, chDatabase: string, pgPort = serviceConfig.postgres.port) {
  const p = serviceConfig.postgres;
  const c = serviceConfig.clickhouse;
  return [
    ...[`host=${p.host}`, `port=${pgPort}`, `user=${p.user}`, `password=${p.password}`]
      .flatMap((kv) => ["--set", `pg_db.${kv}`]),
    ...["--set", `pg_db.database=${pgDatabase}`],
    ...[`host=${c.host}`, `port=${c.port}`, `database=${chDatabase}`]
      .flatMap((kv) => ["--set", `ch_db.${kv}`]),
  ];
}

function assertNoTrace(text: string) {
  assert.doesNotMatch(text, /^\s+at .*:\d+:\d+\)?$/m, "a stack trace was printed");
  assert.doesNotMatch(text, /internal error/);
}

serviceTest("check --introspect writes the snapshot the seed program commits", [
  "postgres",
  "clickhouse",
], async () => {
  await withPostgres(
    [USERS],
    (pgDb) =>
      withClickhouse([RISK], (chDb) =>
        withSeedCopy(async (program) => {
          const snapshot = program.replace(/\.he$/, ".schema.json");
          const r = await heddle(["check", "--introspect", ...sets(pgDb, chDb), program], { env });
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stderr, /0 errors, 0 warnings/);
          const written = await Deno.readTextFile(snapshot);
          const committed = await Deno.readTextFile(`${repo}examples/fraud_detection.schema.json`);
          assert.deepEqual(JSON.parse(written), JSON.parse(committed));
          const keys = Object.keys(JSON.parse(written).queries[0]);
          assert.deepEqual(keys, [...keys].sort(), "keys are sorted");

          // The same overrides from an env file: the refresh must not change a byte.
          const envFile = program.replace(/\.he$/, ".env");
          const lines = sets(pgDb, chDb).filter((a) => a !== "--set");
          await Deno.writeTextFile(envFile, `# test services\n${lines.join("\n")}\n`);
          const again = await heddle(["check", "--introspect", "--env-file", envFile, program], {
            env,
          });
          assert.equal(again.code, 0, again.stderr);
          assert.equal(await Deno.readTextFile(snapshot), written, "a refresh is byte-stable");
        })),
  );
});

serviceTest("a query on a missing table is a diagnostic at the query, exit 1", [
  "postgres",
  "clickhouse",
], async () => {
  await withPostgres(
    [],
    (pgDb) =>
      withClickhouse([RISK], (chDb) =>
        withSeedCopy(async (program) => {
          const r = await heddle([
            "check",
            "--introspect",
            "--output",
            "json",
            ...sets(pgDb, chDb),
            program,
          ], { env });
          assert.equal(r.code, 1, r.stderr);
          const { diagnostics } = JSON.parse(r.stdout);
          assert.equal(diagnostics.length, 1, r.stdout);
          const [d] = diagnostics;
          assert.equal(d.code, "HE0307");
          assert.match(d.message, /relation "users" does not exist/);
          const line = (await Deno.readTextFile(program)).split("\n")[d.line - 1];
          assert.match(line, /query: "SELECT id AS user_id, country FROM users/);
          assertNoTrace(r.stderr);
          const written = await Deno.stat(program.replace(/\.he$/, ".schema.json")).then(
            () => true,
            () => false,
          );
          assert.equal(written, false, "a failed introspection writes no snapshot");
        })),
  );
});

serviceTest("an unreachable database is a diagnostic naming host and port", [
  "clickhouse",
], async () => {
  await withClickhouse([RISK], (chDb) =>
    withSeedCopy(async (program) => {
      const r = await heddle(["check", "--introspect", ...sets("heddle", chDb, 1), program], {
        env,
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /error\[HE0307\]: cannot introspect the query on `pg_db`/);
      assert.match(r.stderr, /127\.0\.0\.1:1\b/);
      assertNoTrace(r.stderr);
    }));
});

Deno.test("check without --introspect connects to nothing and writes nothing", () =>
  withSeedCopy(async (program) => {
    // The seed's hosts (pg.internal, ch.internal) do not resolve: any connection would fail.
    const r = await heddle(["check", program], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /HE0301/);
    const files = [...Deno.readDirSync(program.slice(0, program.lastIndexOf("/")))];
    assert.deepEqual(files.map((f) => f.name), ["fraud_detection.he"]);
  }));

Deno.test("check --introspect refuses standard input with a usage error", async () => {
  const r = await heddle(["check", "--introspect", "-"], { stdin: "" });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /name a file, not -/);
});

const SECRET = "Wr0ng-S3cret-zq81-heddle-test";

/** A program whose only outside service is PostgreSQL, with the password as a secret. */
function secretProgram(): string {
  const p = serviceConfig.postgres;
  return `import "fhub/file" file
import "fhub/postgresql" pg

resource pg_db = pg.connection {
  host: "${p.host}"
  port: ${p.port}
  user: "${p.user}"
  database: "${p.database}"
  password: secret("PG_PASSWORD")
}

step lookup_user = <connection=pg_db> pg.query {
  query: "SELECT id AS user_id, country AS home FROM users WHERE id = @user_id"
}

handler rejected {
  *
  | file.write { path: "out/rejected.jsonl", format: "jsonl" }
}

workflow Secrets ? rejected {
  file.read { path: "users.jsonl", format: "jsonl" }
  | (
    from input
    join lookup_user (==user_id)
  )
  | file.write { path: "out/joined.jsonl", format: "jsonl" }
}
`;
}

serviceTest("a secret's value never shows in inspect, run events, errors or outputs", [
  "postgres",
], async () => {
  const dir = await Deno.makeTempDir({ prefix: "heddle_secret_" });
  await Deno.writeTextFile(`${dir}/s.he`, secretProgram());
  await Deno.copyFile(`${repo}examples/data/users.jsonl`, `${dir}/users.jsonl`);
  try {
    await secretsStayHidden(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function secretsStayHidden(dir: string) {
  const options = { env: { ...env, PG_PASSWORD: SECRET }, cwd: dir };
  const runs = {
    "inspect --ir": await heddle(["inspect", "--ir", "s.he"], options),
    "inspect --ir --output json": await heddle(
      ["inspect", "--ir", "--output", "json", "s.he"],
      options,
    ),
    "run --output json": await heddle(["run", "--output", "json", "s.he"], options),
    "check --introspect": await heddle(["check", "--introspect", "s.he"], options),
  };
  for (const [what, r] of Object.entries(runs)) {
    assert.ok(!r.stdout.includes(SECRET), `${what} printed the secret on stdout`);
    assert.ok(!r.stderr.includes(SECRET), `${what} printed the secret on stderr`);
    assertNoTrace(r.stderr);
  }
  // Each output is shown to be about the secret, so the checks above are not vacuous.
  assert.match(runs["inspect --ir"].stdout, /lookup lookup_user/);
  assert.match(runs["inspect --ir --output json"].stdout, /PG_PASSWORD/);
  assert.match(runs["run --output json"].stdout, /"kind":"run-finished"/);
  assert.match(runs["check --introspect"].stderr, /password authentication failed/);
  // An authentication failure is fatal (docs/executor.md, "Error classes"): the run fails
  // at once with the cause, which must not carry the secret either; no row is quarantined.
  assert.match(
    runs["run --output json"].stdout,
    /"kind":"summary".*"status":"failed","error":"[^"]*password authentication failed/,
  );
  assert.equal(runs["run --output json"].code, 1);
  assert.ok(!(await Deno.stat(`${dir}/out/rejected.jsonl`).then(() => true, () => false)));
}
