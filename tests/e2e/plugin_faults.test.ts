/**
 * A plugin that crashes or hangs inside a real run: the worker survives, the plugin is
 * restarted, the batch is retried as the policy says, and rows that keep failing reach
 * the handler with the cause, while the run itself completes.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";

const plugins = new URL("../../examples/plugins", import.meta.url).pathname;

async function runFaulty(config: string, retry: string) {
  const dir = await Deno.makeTempDir({ prefix: "heddle-faults-" });
  await Deno.writeTextFile(`${dir}/numbers.csv`, "n\n1\n2\n3\n");
  await Deno.writeTextFile(
    `${dir}/faults.he`,
    [
      'import "fhub/file" file',
      'import "faulty/steps" faulty',
      "handler rejected {",
      "  *",
      '  | file.write { path: "rejected.jsonl", format: "jsonl" }',
      "}",
      "workflow Faults ? rejected {",
      '  file.read { path: "numbers.csv", format: "csv" } : { n: int64 }',
      `  | faulty.run { ${config} } retry { ${retry} }`,
      '  | file.write { path: "out.jsonl", format: "jsonl" }',
      "}",
      "",
    ].join("\n"),
  );
  const result = await heddle(["run", `${dir}/faults.he`], { env: { HEDDLE_PATH: plugins } });
  const read = async (f: string) =>
    (await Deno.readTextFile(`${dir}/${f}`)).trim().split("\n").filter(Boolean).map((l) =>
      JSON.parse(l)
    );
  return { result, dir, read };
}

Deno.test("a plugin that crashes on every invocation: retried, then its rows are quarantined", async () => {
  const { result, dir, read } = await runFaulty("crash: true", "attempts: 2, backoff: 10ms");
  assert.equal(result.code, 0, result.stderr);
  // The host sees either the dropped connection or the exit first; both name the plugin.
  const crashed = /plugin `[^`]*faulty` (broke off|exited \(code 3\) during) `faulty\/steps.run`/;
  assert.match(result.stderr, /attempt 1 failed on 3 rows: plugin/);
  assert.match(result.stderr, /run succeeded, 3 rows to handlers/);
  const rejected = await read("rejected.jsonl");
  assert.deepEqual(rejected.map((r) => r.n).sort(), [1, 2, 3]);
  for (const r of rejected) {
    assert.equal(r._error_step, "faulty/steps.run");
    assert.match(r._error_message, crashed);
    assert.equal(r._error_attempt, 2);
  }
  assert.deepEqual(await read("out.jsonl"), []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a plugin that hangs past its timeout: the attempt is abandoned and rows quarantined", async () => {
  const { result, dir, read } = await runFaulty("hang: true", "attempts: 1, timeout: 300ms");
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /timed out|timeout/i);
  const rejected = await read("rejected.jsonl");
  assert.deepEqual(rejected.map((r) => r.n).sort(), [1, 2, 3]);
  await Deno.remove(dir, { recursive: true });
});
