/**
 * Stopping a run on request (SIGINT/SIGTERM on `heddle run`, `heddle workflow stop`) drains
 * it and ends it as `stopped`, never `succeeded`: a file output is all or nothing, so the
 * partial file is not published and the previous one stays; the exit code says so (3) and
 * stderr says what was written where. Real processes, real files, real shared memory.
 */
import assert from "node:assert/strict";
import { heddle, spawnHeddle, StreamText } from "../_cli.ts";
import {
  EXAMPLE_PLUGINS,
  freePort,
  HANGING_STEP,
  segmentsOf,
  startLocal,
  writeCopyProgram,
  writeNumbers,
} from "./_fixtures.ts";

/** A program copying `rows` numbers through a PRQL block, with a previous `out.csv`. */
async function copyProgram(rows: number): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "heddle-stop-" });
  await writeNumbers(dir, rows);
  await Deno.writeTextFile(`${dir}/out.csv`, "previous\n");
  await writeCopyProgram(
    dir,
    "copy.he",
    "Copy",
    "(\n    from input\n    derive { twice = n * 2 }\n  )",
  );
  return dir;
}

/** Files in `dir` other than the program, its input and its output. */
function strayFiles(dir: string): string[] {
  const expected = new Set(["copy.he", "numbers.csv", "out.csv"]);
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => !expected.has(n));
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal} on heddle run: stopped, exit 3, the partial file is not published`, async () => {
    const dir = await copyProgram(2_000_000);
    const child = spawnHeddle(["run", "--batch-rows", "500", `${dir}/copy.he`]);
    const stderr = new StreamText(child.stderr);
    await stderr.waitFor(/file\.write: \d+ in/);
    child.kill(signal);
    const status = await child.status;
    await stderr.done;
    await child.stdout.cancel();
    assert.equal(status.code, 3, stderr.text);
    assert.match(stderr.text, /stopping: draining/);
    assert.match(
      stderr.text,
      new RegExp(
        `Copy\\.2 fhub/file\\.write: nothing published to ${dir}/out\\.csv \\(the run stopped; \\d+ rows discarded`,
      ),
    );
    assert.match(stderr.text, /\nrun stopped\n$/);
    assert.equal(await Deno.readTextFile(`${dir}/out.csv`), "previous\n", "the old file stays");
    assert.deepEqual(strayFiles(dir), [], "no hidden partial output is left behind");
    assert.deepEqual(segmentsOf(child.pid), []);
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("a second Ctrl-C aborts a draining run at once with exit 130", async () => {
  const dir = await copyProgram(10);
  // The plugin hangs, so draining waits for its attempt: only the second signal ends it.
  await writeCopyProgram(dir, "copy.he", "Copy", HANGING_STEP);
  const child = spawnHeddle(["run", `${dir}/copy.he`], { env: { HEDDLE_PATH: EXAMPLE_PLUGINS } });
  const stderr = new StreamText(child.stderr);
  await stderr.waitFor(/file\.read: \d+ in/);
  child.kill("SIGINT");
  await stderr.waitFor(/stopping: draining/);
  child.kill("SIGINT");
  const status = await child.status;
  await stderr.done;
  await child.stdout.cancel();
  assert.equal(status.code, 130, stderr.text);
  assert.match(stderr.text, /aborted\n$/);
  assert.equal(await Deno.readTextFile(`${dir}/out.csv`), "previous\n");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a run that completes publishes its file whole, exit 0", async () => {
  const dir = await copyProgram(1000);
  const result = await heddle(["run", `${dir}/copy.he`]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /run succeeded/);
  const out = (await Deno.readTextFile(`${dir}/out.csv`)).trim().split("\n");
  assert.equal(out.length, 1001);
  out.slice(1).forEach((line, i) => assert.equal(line, `${i},${2 * i}`));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("heddle workflow stop: the run is `stopped`, not `succeeded`, and its file is not published", async () => {
  const dir = await copyProgram(200_000);
  // A slow step holds the source back (bounded queues), so the stop always comes before the
  // source has ended, however fast the machine reads the file.
  await writeCopyProgram(dir, "copy.he", "Copy", "faulty.run { sleep_ms: 200 }");
  const state = await Deno.makeTempDir();
  const port = freePort();
  const server = ["--server", `127.0.0.1:${port}`, "--state", state];
  const local = await startLocal(state, port, dir, { HEDDLE_PATH: EXAMPLE_PLUGINS });
  try {
    const deployed = await heddle(["workflow", "deploy", ...server, `${dir}/copy.he`]);
    assert.equal(deployed.code, 0, deployed.stderr);
    const started = await heddle(["workflow", "start", "--output", "json", ...server, "Copy"]);
    assert.equal(started.code, 0, started.stderr);
    const id = JSON.parse(started.stdout).runs[0].id;
    const status = async () => {
      const shown = await heddle(["workflow", "status", "--output", "json", ...server, id]);
      return JSON.parse(shown.stdout) as { status: string; summaryJson: string };
    };
    await new Promise((r) => setTimeout(r, 1000));
    const stopped = await heddle(["workflow", "stop", ...server, id]);
    assert.equal(stopped.code, 0, stopped.stderr);
    let run = await status();
    while (["running", "draining", "pending"].includes(run.status)) {
      await new Promise((r) => setTimeout(r, 100));
      run = await status();
    }
    assert.equal(run.status, "stopped");
    assert.equal(await Deno.readTextFile(`${dir}/out.csv`), "previous\n");
    assert.deepEqual(strayFiles(dir), []);
  } finally {
    local.kill("SIGTERM");
    await local.status;
    await local.stdout.cancel();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(state, { recursive: true });
  }
});
