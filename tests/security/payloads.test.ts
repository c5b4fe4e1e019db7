/**
 * Issue 15, "row data reaches the control plane": error messages carried up to 120
 * characters of the raw record, travelled in events and were stored with attempts, although
 * the control plane must never see a payload. Bad rows with planted markers (a CSV cell, a
 * JSONL value, an invalid JSON line and an unknown key, a plugin's row error and a plugin
 * that throws on a row, a PRQL overflow) run on a daemon; no marker may appear in what
 * `workflow start --wait` streams, in `workflow status`, in `control.db` or in the daemon's
 * log, while the handler's rows still say exactly what was wrong, record text included.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { Field, Int64, Schema } from "apache-arrow";
import { rejectionOf } from "../../runtime/connectors/kafka.ts";
import { heddle } from "../_cli.ts";
import { examples, ownerOf, startAndWait, startDaemon } from "./_fixtures.ts";

/** Markers only the data holds: they must not be anywhere in `control.db`'s bytes. */
const IN_DATA = ["PLANTEDCSVCELL", "PLANTEDJSONVALUE", "PLANTEDBADJSON", "PLANTEDKEY"];
/** Values the plugin rejects: its config names them, so the stored source holds them too. */
const REJECTED = "4242424242";
const THROWN = "5353535353";

const PROGRAM = `import "fhub/file" file
import "faulty/steps" faulty

handler csv_failed {
  *
  | file.write { path: "csv_failed.jsonl", format: "jsonl" }
}

handler jsonl_failed {
  *
  | file.write { path: "jsonl_failed.jsonl", format: "jsonl" }
}

workflow Csv ? csv_failed {
  file.read { path: "in.csv", format: "csv" } : { n: int64, s: utf8 }
  | faulty.double { fail_n: [${REJECTED}], throw_n: [${THROWN}] }
  | (
    from input
    derive { twice = n + n }
  )
  | file.write { path: "out.jsonl", format: "jsonl" }
}

workflow Jsonl ? jsonl_failed {
  file.read { path: "in.jsonl", format: "jsonl" } : { n: int64, s: utf8 }
  | file.write { path: "out2.jsonl", format: "jsonl" }
}
`;

const CSV = [
  "n,s",
  "1,fine",
  "PLANTEDCSVCELL,bad int",
  `${REJECTED},rejected by the plugin`,
  `${THROWN},the plugin throws`,
  "9000000000000000000,beyond what PRQL computes exactly",
  "2,fine",
].join("\n") + "\n";

const JSONL = [
  '{"n": 1, "s": "fine"}',
  '{"n": "PLANTEDJSONVALUE", "s": "bad int"}',
  '{"n": 2, PLANTEDBADJSON}',
  '{"n": 3, "s": "x", "PLANTEDKEY": 1}',
  '{"n": 4, "s": "fine"}',
].join("\n") + "\n";

/** Writes the program and its data into `dir`. */
async function writeProgram(dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/p.he`, PROGRAM);
  await Deno.writeTextFile(`${dir}/in.csv`, CSV);
  await Deno.writeTextFile(`${dir}/in.jsonl`, JSONL);
}

function assertNoMarker(what: string, text: string, markers: string[]): void {
  for (const m of markers) assert.ok(!text.includes(m), `${m} in ${what}:\n${text}`);
}

Deno.test("no row text reaches events, run status, control.db or the daemon's log", async () => {
  const dir = await Deno.makeTempDir();
  await writeProgram(dir);
  const all = [...IN_DATA, REJECTED, THROWN];
  const daemon = await startDaemon(`${dir}/state`, ["--allow-path", dir]);
  let log = "";
  try {
    const owner = ownerOf(daemon);
    const deployed = await heddle(["workflow", "deploy", ...owner, `${dir}/p.he`]);
    assert.equal(deployed.code, 0, deployed.stderr);
    for (const workflow of ["Csv", "Jsonl"]) {
      const run = await startAndWait(owner, workflow);
      assert.equal(run.code, 0, run.stderr);
      const id = JSON.parse(run.stdout).runs[0].id;
      const status = await heddle(["workflow", "status", "--output", "json", ...owner, id]);
      assert.equal(JSON.parse(status.stdout).status, "succeeded", status.stdout);
      assert.ok(JSON.parse(JSON.parse(status.stdout).summaryJson).quarantined > 0);
      assertNoMarker(`${workflow}'s run`, run.stdout + run.stderr + status.stdout, all);
    }
  } finally {
    log = await daemon.stop();
  }
  assertNoMarker("the daemon's log", log, all);
  const db = new DatabaseSync(`${daemon.state}/control.db`, { readOnly: true });
  try {
    // Every table but the deploys' (their source names the values the plugin rejects).
    const tables = db.prepare("select name from sqlite_master where type = 'table'").all()
      .map((t) => String(t.name)).filter((t) => !t.startsWith("deploy"));
    assert.ok(tables.includes("attempts") && tables.includes("logs"), tables.join());
    const rows = JSON.stringify(tables.map((t) => db.prepare(`select * from ${t}`).all()));
    assertNoMarker(`control.db's ${tables.join(", ")}`, rows, all);
    assert.match(rows, /plugin step .*faulty.* failed/, "a stored attempt says what failed");
  } finally {
    db.close();
  }
  for (const entry of Deno.readDirSync(daemon.state)) {
    if (!entry.name.startsWith("control.db")) continue;
    const bytes = new TextDecoder("latin1").decode(
      Deno.readFileSync(`${daemon.state}/${entry.name}`),
    );
    assertNoMarker(entry.name, bytes, IN_DATA);
  }

  // The handler's rows keep the whole story, record text included.
  const messages = ["csv_failed", "jsonl_failed"].flatMap((name) =>
    Deno.readTextFileSync(`${dir}/${name}.jsonl`).trim().split("\n")
      .map((l) => String(JSON.parse(l)._error_message))
  );
  const has = (pattern: RegExp) =>
    assert.ok(messages.some((m) => pattern.test(m)), `${pattern} in ${messages.join("\n")}`);
  has(/record 2: column `n`: expected Int64, found text: PLANTEDCSVCELL,bad int/);
  has(new RegExp(`n = ${REJECTED} fails on purpose`));
  has(new RegExp(`n = ${THROWN} throws on purpose`));
  has(/PRQL block failed: column `n` holds an integer beyond/);
  has(/record 2: column `n`: expected Int64, found text: .*PLANTEDJSONVALUE/);
  has(/record 3: invalid JSON at character 10: .*PLANTEDBADJSON/);
  assert.equal(messages.length, 6);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("heddle run's events describe bad rows without quoting them", async () => {
  const dir = await Deno.makeTempDir();
  await writeProgram(dir);
  const all = [...IN_DATA, REJECTED, THROWN];
  try {
    for (const workflow of ["Csv", "Jsonl"]) {
      const r = await heddle(["run", "--output", "json", "--workflow", workflow, `${dir}/p.he`], {
        env: { HEDDLE_PATH: `${examples}plugins` },
      });
      assert.equal(r.code, 0, r.stderr);
      const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      const quarantined = events.filter((e) => e.kind === "rows-quarantined");
      assert.ok(quarantined.length > 0, r.stdout);
      for (const e of quarantined) {
        assert.equal(e.error.stage, e.stage);
        assert.equal(typeof e.error.message, "string");
      }
      assertNoMarker(`${workflow}'s events`, r.stdout + r.stderr, all);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a Kafka message that does not fit its row type is rejected without quoting it", () => {
  const schema = new Schema([new Field("n", new Int64(), false)]);
  for (const text of ['{"n": "PLANTEDKAFKA"}', '{"n": PLANTEDKAFKA}', '"PLANTEDKAFKA"']) {
    const rejected = rejectionOf(schema, text);
    assert.ok(rejected, text);
    assert.ok(!rejected.why.includes("PLANTEDKAFKA"), rejected.why);
  }
});
