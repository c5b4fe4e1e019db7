/**
 * `heddle run` fails at once, with the cause on stderr and exit 1, when retrying cannot help:
 * a plugin that cannot start, and a full /dev/shm (a real 1 MiB tmpfs mounted over /dev/shm
 * in a private mount namespace). Before, the first was retried row by row and every row sent
 * to the handler (exit 0), and the second was retried for minutes.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import { EXAMPLE_PLUGINS as plugins, writeNumbers } from "./_fixtures.ts";

const main = new URL("../../cli/main.ts", import.meta.url).pathname;

/** A program reading `rows` numbers through `step`, with a handler writing `rejected.jsonl`. */
async function program(rows: number, imports: string, step: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "heddle-failfast-" });
  await writeNumbers(dir, rows);
  await Deno.writeTextFile(
    `${dir}/main.he`,
    [
      'import "fhub/file" file',
      imports,
      "handler rejected {",
      "  *",
      '  | file.write { path: "rejected.jsonl", format: "jsonl" }',
      "}",
      "workflow W ? rejected {",
      '  file.read { path: "numbers.csv", format: "csv" } : { n: int64 }',
      `  | ${step}`,
      '  | file.write { path: "out.jsonl", format: "jsonl" }',
      "}",
      "",
    ].join("\n"),
  );
  return dir;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("a plugin that cannot start fails the run at once: exit 1, the cause on stderr, no row to the handler", async () => {
  const dir = await program(200, 'import "broken/steps" broken', "broken.run { }");
  const manifest = JSON.parse(
    await Deno.readTextFile(`${plugins}/faulty/heddle.manifest.json`),
  );
  manifest.package = "broken";
  manifest.modules = { "broken/steps": manifest.modules["faulty/steps"] };
  await Deno.mkdir(`${dir}/plugins/broken`, { recursive: true });
  await Deno.writeTextFile(`${dir}/plugins/broken/heddle.manifest.json`, JSON.stringify(manifest));
  await Deno.writeTextFile(`${dir}/plugins/broken/main.ts`, 'import "./does_not_exist.ts";\n');
  const result = await heddle(["run", `${dir}/main.he`], {
    env: { HEDDLE_PATH: `${dir}/plugins` },
  });
  assert.equal(result.code, 1, result.stderr);
  assert.match(
    result.stderr,
    /run failed: stage `broken\/steps.run` \(W\.1\): plugin `[^`]*broken` exited before it listened/,
  );
  assert.match(result.stderr, /does_not_exist\.ts/);
  assert.doesNotMatch(result.stderr, /attempt \d+ failed|sent to handler/);
  assert.ok(!(await exists(`${dir}/rejected.jsonl`)), "no row reached the handler");
  assert.ok(!(await exists(`${dir}/out.jsonl`)), "no output was published");
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "a full /dev/shm (ENOSPC) fails the run clearly instead of retrying row by row",
  // Mounting a tmpfs needs root (CI runs as root); elsewhere the test cannot set itself up.
  ignore: Deno.uid() !== 0,
  async fn() {
    const dir = await program(
      200_000,
      'import "faulty/steps" faulty',
      "faulty.run { } retry { attempts: 2, backoff: 10ms }\n  | (\n    from input\n    sort {-n}\n  )",
    );
    const run = [Deno.execPath(), "run", "-A", main, "run", `${dir}/main.he`].join(" ");
    const child = await new Deno.Command("unshare", {
      args: ["--mount", "sh", "-c", `mount -t tmpfs -o size=1M tmpfs /dev/shm && exec ${run}`],
      env: { NO_COLOR: "1", HEDDLE_PATH: plugins },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(child.stderr);
    assert.equal(child.code, 1, stderr);
    assert.match(stderr, /run failed: .*(No space left on device|no space left in \/dev\/shm)/);
    assert.doesNotMatch(stderr, /sent to handler/);
    assert.ok(!(await exists(`${dir}/rejected.jsonl`)), "no row reached the handler");
    assert.ok(!(await exists(`${dir}/out.jsonl`)), "no output was published");
    await Deno.remove(dir, { recursive: true });
  },
});
