/**
 * `heddle dev --dap` end to end: a real adapter process runs the quickstart, spoken to over
 * stdio as VS Code speaks to it. Breakpoints sit on lines of the `.he` file; what the tests
 * read back (rows, schemas, evaluated PRQL) is checked against the program's own data.
 */
import assert from "node:assert/strict";
import { quickstartCopy, quickstartEnv } from "../_quickstart.ts";
import { DapClient, type DapMessage } from "./_client.ts";

/** The 1-based line of the first line of `program` that includes `text`. */
function lineOf(program: string, text: string): number {
  return program.split("\n").findIndex((l) => l.includes(text)) + 1;
}

interface Var {
  name: string;
  value: string;
  variablesReference: number;
}

async function variables(client: DapClient, ref: number): Promise<Var[]> {
  return (await client.call("variables", { variablesReference: ref })).variables;
}

function named(vars: Var[], name: string): Var {
  const v = vars.find((x) => x.name === name);
  assert.ok(v, `no variable ${name} in ${JSON.stringify(vars)}`);
  return v;
}

/** Starts a session on a copy of the quickstart; stops once configured. */
async function launch(
  /** Each breakpoint goes on the first line that includes `at`. */
  breakpoints: Array<{ at: string; condition?: string }>,
  batchRows = 20,
) {
  const dir = await quickstartCopy();
  const program = `${dir}/quickstart.he`;
  const text = await Deno.readTextFile(program);
  const client = new DapClient(quickstartEnv);
  const caps = await client.call("initialize", { adapterID: "heddle", linesStartAt1: true });
  assert.equal(caps.supportsConditionalBreakpoints, true);
  await client.call("launch", { program, batchRows });
  await client.event("initialized");
  const set = await client.call("setBreakpoints", {
    source: { path: program },
    breakpoints: breakpoints.map((b) => ({ line: lineOf(text, b.at), condition: b.condition })),
  });
  await client.call("configurationDone");
  return { client, dir, text, set: set.breakpoints as Array<{ verified: boolean }> };
}

/** The top frame and the Batch scope's variables of a stopped thread. */
async function inspect(client: DapClient, stopped: DapMessage) {
  const trace = await client.call("stackTrace", { threadId: stopped.body.threadId });
  const frame = trace.stackFrames[0];
  const scopes = await client.call("scopes", { frameId: frame.id });
  const batch = await variables(client, scopes.scopes[0].variablesReference);
  return {
    frame,
    scopes: scopes.scopes as Array<{ name: string; variablesReference: number }>,
    batch,
  };
}

Deno.test("a conditional breakpoint pauses the PRQL stage on a batch whose rows match", async () => {
  const { client, text, set } = await launch([
    { at: 'filter status == "settled"', condition: "amount > 1500" },
    { at: "// Rows that could not be read" },
  ]);
  assert.deepEqual(set.map((b) => b.verified), [true, false]);

  const stopped = await client.event("stopped");
  assert.equal(stopped.body.reason, "breakpoint");
  const { frame, batch, frame: { id: frameId } } = await inspect(client, stopped);
  assert.equal(frame.line, lineOf(text, "| ("));
  assert.match(frame.name, /^prql /);
  assert.match(named(batch, "schema").value, /status: Utf8/);
  const rows = Number(named(batch, "rows").value);
  assert.ok(rows > 0 && rows <= 20, `rows: ${rows}`);

  // The condition held for this batch: the console's PRQL finds the rows that made it hold.
  const big = await client.call("evaluate", {
    expression: "filter amount > 1500\nselect {tx_id, amount}",
    frameId,
    context: "repl",
  });
  assert.match(big.result, /^[1-9]\d* rows?; first: \{tx_id: .*, amount: /);
  const result = await variables(client, big.variablesReference);
  const firstRows = await variables(client, named(result, "first rows").variablesReference);
  for (const row of firstRows) {
    const amount = Number(/amount: ([\d.]+)/.exec(row.value)![1]);
    assert.ok(amount > 1500, row.value);
  }
  // Every shown row of the batch is a real row of the input file.
  const shown = await variables(client, named(batch, "first rows").variablesReference);
  const cells = await variables(client, shown[0].variablesReference);
  const txId = named(cells, "tx_id").value;
  assert.ok(text.length > 0 && /^\d+$/.test(txId), txId);

  const bad = await client.request("evaluate", { expression: "filter amout > 10", frameId });
  assert.equal(bad.success, false);
  assert.match(bad.message!, /amout/);

  // Threads are the run's stages, named after what they run and where.
  const threads = (await client.call("threads")).threads as Array<{ id: number; name: string }>;
  assert.ok(threads.some((t) => /to_cents/.test(t.name)), JSON.stringify(threads));
  assert.equal(threads.find((t) => t.id === stopped.body.threadId)!.name.includes("prql"), true);

  // Step: the same batch, filtered, stops where it goes next (the plugin step).
  await client.call("setBreakpoints", { source: { path: frame.source.path }, breakpoints: [] });
  await client.call("next", { threadId: stopped.body.threadId });
  const stepped = await client.event("stopped");
  assert.equal(stepped.body.reason, "step");
  const next = await inspect(client, stepped);
  assert.equal(next.frame.line, lineOf(text, "| to_cents"));
  assert.doesNotMatch(named(next.batch, "schema").value, /status/);
  assert.ok(Number(named(next.batch, "rows").value) <= rows);

  // Pause stops at the next batch anywhere; then stop drains the run and the adapter exits.
  await client.call("continue", { threadId: stepped.body.threadId });
  await client.call("pause", { threadId: stepped.body.threadId });
  const paused = await client.event("stopped");
  assert.equal(paused.body.reason, "pause");
  await client.call("disconnect", {});
  const exited = await client.event("exited");
  assert.equal(exited.body.exitCode, 0);
  const output = client.seen("output").map((m) => m.body.output).join("");
  assert.match(output, /run (stopped|completed)/);
  assert.equal(await client.close(), 0);
});

Deno.test("a paused stage holds its source through back-pressure, and stopping drains the run", async () => {
  const { client, text } = await launch([{ at: 'filter status == "settled"' }], 10);
  const stopped = await client.event("stopped");
  const { scopes } = await inspect(client, stopped);
  const run = scopes.find((s) => s.name === "Run")!;
  const sourceLine = `(line ${lineOf(text, "transactions.csv")})`;
  const read = async () => {
    const stages = await variables(client, run.variablesReference);
    const source = stages.find((v) => v.name.includes(sourceLine))!;
    return Number(/(\d+) rows out/.exec(source.value)![1]);
  };
  // The CSV has 322 rows, read 10 per batch; the paused stage's queue holds 4 batches, so the
  // source must wait after a handful of batches however long the pause lasts.
  await new Promise((r) => setTimeout(r, 1000));
  const rows = await read();
  assert.ok(rows >= 10 && rows <= 70, `the source read ${rows} rows while its consumer paused`);
  await client.call("disconnect", {});
  const output = client.seen("output").map((m) => m.body.output).join("");
  // Stopping drained the run: the source did not go on to read the whole file.
  const total = Number(/Quickstart\.0 fhub\/file\.read: (\d+) rows in/.exec(output)![1]);
  assert.ok(total < 322, output);
  assert.match(output, /run stopped/);
  assert.equal(await client.close(), 0);
});

Deno.test("a breakpoint on a handler's `*` shows the quarantined rows' _error_ fields", async () => {
  const { client, dir } = await launch([{ at: "  *" }]);
  const stopped = await client.event("stopped");
  const { scopes, batch } = await inspect(client, stopped);
  assert.equal(named(batch, "graph").value, "rejected");
  const quarantined = scopes.find((s) => s.name === "Quarantined rows");
  assert.ok(quarantined, JSON.stringify(scopes));
  const rows = await variables(client, quarantined.variablesReference);
  // The first malformed line of the CSV (`57b,7,12.50,Coffee Corner`), rejected by the reader.
  assert.equal(rows.length, 1);
  assert.match(rows[0].value, /record 58: expected 6 fields, found 4/);
  assert.match(rows[0].value, /^fhub\/file\.read: .+ \(attempt 1\)$/);
  const fields = await variables(client, rows[0].variablesReference);
  assert.deepEqual(fields.map((f) => f.name), ["_error_step", "_error_message", "_error_attempt"]);

  // Without breakpoints, continue runs to the end: the handler writes both malformed rows.
  await client.call("setBreakpoints", {
    source: { path: `${dir}/quickstart.he` },
    breakpoints: [],
  });
  await client.call("continue", { threadId: stopped.body.threadId });
  const exited = await client.event("exited");
  assert.equal(exited.body.exitCode, 0);
  await client.event("terminated");
  await client.call("disconnect", {});
  assert.equal(await client.close(), 0);
  const rejected = await Deno.readTextFile(`${dir}/data/out/rejected.jsonl`);
  assert.equal(rejected.trim().split("\n").length, 2);
  assert.match(rejected, /"_error_step":"fhub\/file.read"/);
});

Deno.test("a breakpoint condition that does not compile stops and says why", async () => {
  const { client } = await launch([{ at: 'filter status == "settled"', condition: "amout > 1" }]);
  const stopped = await client.event("stopped");
  assert.equal(stopped.body.reason, "breakpoint");
  assert.match(stopped.body.description, /condition `amout > 1` failed: .*amout/);
  await client.call("disconnect", {});
  assert.equal(await client.close(), 0);
});

Deno.test("launching a program with errors fails the launch with the diagnostics", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/bad.he`, "workflow W {\n  nothing.here\n}\n");
  const client = new DapClient({});
  await client.call("initialize", { adapterID: "heddle" });
  const r = await client.request("launch", { program: `${dir}/bad.he` });
  assert.equal(r.success, false);
  assert.match(r.message!, /bad\.he:2:3: error\[HE\d+\]/);
  await client.call("disconnect", {});
  assert.equal(await client.close(), 0);
});
