/**
 * Issue 15, "secrets at rest and in messages": planted secrets (a literal `api_key`, a
 * `--set` override of it, and a password inside an LLM `base_url`) must appear nowhere:
 * not in `control.db`, not in events, not in the daemon's or the CLI's output, not in the
 * rows handlers receive. Before, the database held the source and IR with every one of
 * them, and the URL's password reached stderr, events and `_error_message`.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import { freePort, startAndWait, startDaemon } from "./_fixtures.ts";

const PLANTED = ["PLANTEDURLPW", "PLANTEDKEY", "PLANTEDSET"];

/** A program whose LLM step cannot connect, so every row reaches the handler. */
async function program(dir: string): Promise<string> {
  await Deno.writeTextFile(`${dir}/in.csv`, "n\n1\n2\n");
  const file = `${dir}/ask.he`;
  await Deno.writeTextFile(
    file,
    `import "fhub/file" file
import "fhub/llm" llm

resource model = llm.connection {
  base_url: "http://user:PLANTEDURLPW@127.0.0.1:${freePort()}/v1",
  api_key: "PLANTEDKEY",
}

step ask = <connection=model> llm.prompt { system: "s", max_retries: 0, timeout: 2s }

handler failed {
  *
  | file.write { path: "failed.jsonl", format: "jsonl" }
}

workflow Ask ? failed {
  file.read { path: "in.csv", format: "csv" } : { n: int64 }
  | ask
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`,
  );
  return file;
}

function assertClean(what: string, text: string): void {
  for (const secret of PLANTED) assert.ok(!text.includes(secret), `${secret} in ${what}`);
}

/** The handler's rows: they say what failed, with the URL's password masked. */
function assertHandlerRows(dir: string): void {
  const rows = Deno.readTextFileSync(`${dir}/failed.jsonl`).trim().split("\n");
  assert.equal(rows.length, 2);
  for (const row of rows) {
    const parsed = JSON.parse(row);
    assert.match(parsed._error_message, /llm http:\/\/user:\*\*\*@127\.0\.0\.1/);
  }
  assertClean("handler rows", rows.join("\n"));
}

Deno.test("heddle run shows no planted secret in its events, messages or handler rows", async () => {
  const dir = await Deno.makeTempDir();
  const file = await program(dir);
  try {
    const r = await heddle(["run", "--output", "json", "--set", "model.api_key=PLANTEDSET", file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /"kind":"attempt-failed"/);
    assertClean("events (stdout)", r.stdout);
    assertClean("messages (stderr)", r.stderr);
    assertHandlerRows(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a daemon stores no planted secret, and after a restart asks for a new deploy", async () => {
  const dir = await Deno.makeTempDir();
  const file = await program(dir);
  const state = `${dir}/state`;
  let daemon = await startDaemon(state, ["--allow-path", dir]);
  const owner = () => ["--server", daemon.address, "--state", state];
  try {
    const deployed = await heddle([
      "workflow",
      "deploy",
      ...owner(),
      "--set",
      "model.api_key=PLANTEDSET",
      file,
    ]);
    assert.equal(deployed.code, 0, deployed.stderr);
    const run = await startAndWait(owner(), "Ask");
    assert.equal(run.code, 0, run.stderr);
    const id = JSON.parse(run.stdout).runs[0].id;
    const status = await heddle(["workflow", "status", "--output", "json", ...owner(), id]);
    assert.equal(JSON.parse(status.stdout).status, "succeeded");
    assert.equal(JSON.parse(JSON.parse(status.stdout).summaryJson).quarantined, 2);
    assertClean("run status", status.stdout + run.stdout);
    assertHandlerRows(dir);
  } finally {
    assertClean("the daemon's log", await daemon.stop());
  }
  const stored = [...Deno.readDirSync(state)].filter((e) => e.name.startsWith("control.db"));
  assert.ok(stored.length > 0);
  let all = "";
  for (const entry of stored) {
    const bytes = new TextDecoder("latin1").decode(Deno.readFileSync(`${state}/${entry.name}`));
    assertClean(entry.name, bytes);
    all += bytes;
  }
  assert.ok(all.includes('"$sealed":"model.api_key"'), "the database keeps the reference");
  daemon = await startDaemon(state, ["--allow-path", dir]);
  try {
    const again = await heddle(["workflow", "start", ...owner(), "Ask"]);
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /secret values in plain text \(.*model\.api_key.*\).*deploy it again/,
    );
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
