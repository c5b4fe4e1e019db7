/**
 * Issue 15, "one bad program poisons a long-lived process" and "the daemon answered nothing
 * while it compiled": a daemon compiles deploys on their own thread, within
 * `--compile-timeout`, so it keeps answering other calls during a long compile and refuses
 * a compile past its limit with one line and exit 1 (a compile over 30 s ended in exit 70);
 * and after the 25-parenthesis PRQL block that broke prql-js for the rest of the process,
 * the same daemon still deploys and runs the quickstart, and the same language server shows
 * no false error on the next document.
 */
import assert from "node:assert/strict";
import { LspClient } from "../../cli/framing.ts";
import { connectControlPlane } from "../../runtime/protocol/mod.ts";
import { heddle } from "../_cli.ts";
import { bad } from "../_prql_crash.ts";
import { quickstartCopy } from "../_quickstart.ts";
import { examples, manyWorkflows, ownerOf, startAndWait, startDaemon } from "./_fixtures.ts";

Deno.test("a daemon answers other calls while a long deploy compiles", async () => {
  const dir = await Deno.makeTempDir();
  const daemon = await startDaemon(`${dir}/state`, [
    "--max-source-size",
    "16MiB",
    "--max-workflows",
    "100000",
  ]);
  const control = connectControlPlane(daemon.address, {
    token: Deno.readTextFileSync(`${daemon.state}/token`).trim(),
    tls: null,
  });
  try {
    // Seconds of compiling (20,000 workflows take about 8 s of one core).
    const source = manyWorkflows(20_000);
    let deployed = false;
    const deploy = control.deploy({ file: `${dir}/many.he`, source, overrides: [] })
      .finally(() => deployed = true);
    // Time for the program to arrive: calls made before would be answered anyway.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(deployed, false, "the compile ended before the calls were made");
    // Every call made while it compiles is answered before the compile ends.
    for (let i = 0; i < 3; i++) {
      await control.listRuns();
      await control.listWorkflows();
      assert.equal(deployed, false, `call ${i} was answered only after the compile`);
    }
    const response = await deploy;
    assert.equal(response.ok, true);
    assert.equal(response.workflows.length, 20_000);
  } finally {
    control.close();
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a compile past --compile-timeout is refused with exit 1; the bad PRQL block too; the quickstart then deploys and runs", async () => {
  const dir = await quickstartCopy();
  await Deno.writeTextFile(`${dir}/many.he`, manyWorkflows(40_000));
  await Deno.writeTextFile(`${dir}/bad.he`, bad);
  const daemon = await startDaemon(`${dir}/state`, [
    "--compile-timeout",
    "2s",
    "--max-source-size",
    "16MiB",
    "--max-workflows",
    "100000",
    "--allow-path",
    dir,
  ]);
  const owner = ownerOf(daemon);
  let log = "";
  try {
    // About 15 s of compiling at least: far past 2 s.
    const slow = await heddle(["workflow", "deploy", ...owner, `${dir}/many.he`]);
    assert.equal(slow.code, 1, slow.stderr);
    assert.match(slow.stderr, /compiling the program took longer than 2 s.*--compile-timeout/);
    assert.equal(slow.stderr.trim().split("\n").length, 1, slow.stderr);

    const bad = await heddle(["workflow", "deploy", ...owner, `${dir}/bad.he`]);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /error\[HE0208\]/);

    const good = await heddle(["workflow", "deploy", ...owner, `${dir}/quickstart.he`]);
    assert.equal(good.code, 0, good.stderr);
    const run = await startAndWait(owner, "Quickstart");
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).runs[0].status, "succeeded");
    const settled = Deno.readTextFileSync(`${dir}/data/out/settled.jsonl`).trim().split("\n");
    assert.ok(settled.length > 0);
  } finally {
    log = await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
  assert.doesNotMatch(log, /memory access out of bounds|RuntimeError/);
});

Deno.test("after the bad PRQL block, the same language server shows no error on the quickstart", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/lsp.ts", "--stdio"],
    cwd: new URL("../../", import.meta.url).pathname,
    env: { HEDDLE_PATH: `${examples}plugins` },
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const client = new LspClient(child);
  const errorsOf = async (uri: string, text: string) => {
    await client.notify("textDocument/didOpen", {
      textDocument: { uri, languageId: "heddle", version: 1, text },
    });
    const published = await client.notification((m) =>
      m.method === "textDocument/publishDiagnostics" && m.params?.uri === uri
    );
    return (published.params!.diagnostics as { code: string; severity: number }[])
      .filter((d) => d.severity === 1).map((d) => d.code);
  };
  try {
    await client.request("initialize", { processId: null, rootUri: null, capabilities: {} });
    await client.notify("initialized", {});
    assert.deepEqual(await errorsOf(`file://${examples}bad.he`, bad), ["HE0208"]);
    const quickstart = Deno.readTextFileSync(`${examples}quickstart.he`);
    assert.deepEqual(await errorsOf(`file://${examples}quickstart.he`, quickstart), []);
    // Another block, so that no cached result can answer it.
    const changed = quickstart.replace("amount > 0.0", "amount > 0.5");
    assert.deepEqual(await errorsOf(`file://${examples}changed.he`, changed), []);
    await client.request("shutdown", null);
    await client.notify("exit", null);
  } finally {
    await client.close();
    await client.done;
  }
  assert.equal((await child.status).code, 0);
});
