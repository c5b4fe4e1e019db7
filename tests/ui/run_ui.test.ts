/**
 * `heddle run --ui` serves a one-off run: it prints the UI's address (with a token made for
 * this process) on stderr, the run shows there with its row counts, and after the run the
 * UI stays up until a signal, when the process exits with the run's own exit code.
 */
import assert from "node:assert/strict";
import { spawnHeddle, StreamText } from "../_cli.ts";
import { quickstartCopy, quickstartEnv } from "../_quickstart.ts";
import type { FrontPage } from "../../runtime/ui/mod.ts";

Deno.test("heddle run --ui prints the UI's address and serves the run until Ctrl-C", async () => {
  const dir = await quickstartCopy();
  const child = spawnHeddle(["run", "--ui", `${dir}/quickstart.he`], { env: quickstartEnv });
  const stderr = new StreamText(child.stderr);
  try {
    const [, url] = await stderr.waitFor(
      /ui listening on (http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64})\n/,
    );
    await stderr.waitFor(/the UI stays up at/);
    const { origin, searchParams } = new URL(url);
    const response = await fetch(`${origin}/api/front`, {
      headers: { authorization: `Bearer ${searchParams.get("token")}` },
    });
    const front = await response.json() as FrontPage;
    assert.deepEqual(front.workflows.map((w) => w.name), ["Quickstart"]);
    assert.equal(front.runs.length, 1);
    const [run] = front.runs;
    assert.equal(run.status, "succeeded");
    const lines = async (file: string) =>
      (await Deno.readTextFile(`${dir}/data/out/${file}`)).trim().split("\n").length;
    const written = await lines("settled.jsonl") + await lines("totals_by_user.csv") - 1 +
      await lines("paying_users.csv") - 1;
    assert.equal(run.rowsOut, written);
    assert.equal(run.quarantined, await lines("rejected.jsonl"));
  } finally {
    child.kill("SIGINT");
  }
  const status = await child.status;
  await stderr.done;
  await child.stdout.cancel();
  assert.equal(status.code, 0, stderr.text);
  await Deno.remove(dir, { recursive: true });
});
