/**
 * `--state postgres://…`: the control plane keeps its deploys, runs, logs, schedules and
 * workers in the services' PostgreSQL instead of SQLite, so a daemon started again on the
 * same database knows everything its predecessor did. Each test uses a database of its own.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import { quickstartCopy, quickstartEnv } from "../_quickstart.ts";
import { freePort } from "../e2e/_fixtures.ts";
import { serviceConfig, serviceTest } from "../services/mod.ts";
import { startNode, stateDatabase } from "./_fixtures.ts";

serviceTest(
  "heddle local --state postgres:// runs the quickstart and a restarted daemon still lists it",
  ["postgres"],
  async () => {
    await using db = await stateDatabase();
    const dir = await quickstartCopy();
    const home = await Deno.makeTempDir();
    // The password in $PGPASSWORD, as docs/cluster.md advises: not on the command line.
    const { password } = serviceConfig.postgres;
    const url = db.url.replace(`:${encodeURIComponent(password)}@`, "@");
    assert.notEqual(url, db.url);
    const env = { ...quickstartEnv, HEDDLE_STATE_DIR: home, PGPASSWORD: password };
    const port = freePort();
    const args = [
      "local",
      "--listen",
      `127.0.0.1:${port}`,
      "--state",
      url,
      "--allow-path",
      dir,
      "--ui-listen",
      "off",
    ];
    const server = ["--server", `127.0.0.1:${port}`, "--state", home];
    const ask = (a: string[]) => heddle(a, { env });
    let local = await startNode(args, /worker listening on/, env);
    try {
      assert.match(local.stderr.text, /leading the state database postgres:\/\/heddle@/);
      const deployed = await ask(["workflow", "deploy", ...server, `${dir}/quickstart.he`]);
      assert.equal(deployed.code, 0, deployed.stderr);
      const started = await ask([
        "workflow",
        "start",
        "--wait",
        "--output",
        "json",
        ...server,
        "Quickstart",
      ]);
      assert.equal(started.code, 0, started.stderr);
      const run = JSON.parse(started.stdout).runs[0];
      assert.equal(run.status, "succeeded");
      const every = await ask(["workflow", "schedule", ...server, "Quickstart", "--every", "1h"]);
      assert.equal(every.code, 0, every.stderr);
      assert.equal((await local.stop()).code, 0, local.stderr.text);

      // Nothing was written to a SQLite file: the home directory holds the token only.
      assert.equal(await Deno.stat(`${home}/control.db`).then(() => true, () => false), false);

      local = await startNode(args, /worker listening on/, env);
      const runs = await ask(["workflow", "runs", "--output", "json", ...server]);
      assert.deepEqual(
        JSON.parse(runs.stdout).runs.map((r: { id: string; status: string }) => [r.id, r.status]),
        [[run.id, "succeeded"]],
      );
      // Read straight from the database, as `heddle workflow runs --state DIR` reads SQLite.
      const direct = await ask(["workflow", "runs", "--output", "json", "--state", url]);
      assert.equal(direct.code, 0, direct.stderr);
      assert.equal(JSON.parse(direct.stdout).runs[0].id, run.id);
      const status = await ask(["workflow", "status", ...server, run.id]);
      assert.match(status.stdout, /Quickstart\.0 fhub\/file\.read: \d+ rows in/);
      // Its attempts and quarantined rows, kept in PostgreSQL too.
      assert.match(
        status.stdout,
        /\n {2}attempts: [1-9]\d*, none failed\n {2}quarantined rows: 2\n/,
      );
      const logs = await ask(["workflow", "logs", ...server, run.id]);
      assert.match(logs.stdout, /run succeeded/);
      const list = await ask(["workflow", "list", ...server]);
      assert.match(list.stdout, /^Quickstart v1 /);
      const schedules = await ask(["workflow", "schedule", "list", ...server]);
      assert.match(schedules.stdout, /Quickstart/);
      // The restarted daemon runs the deploy it found in the database.
      const again = await ask(["workflow", "start", "--wait", ...server, "Quickstart"]);
      assert.equal(again.code, 0, again.stderr);
    } finally {
      await local.stop();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(home, { recursive: true });
    }
  },
);

serviceTest(
  "a state database that refuses the login or does not answer is one line naming it, exit 1",
  ["postgres"],
  async () => {
    const { host, port, user } = serviceConfig.postgres;
    const home = await Deno.makeTempDir();
    const env = { HEDDLE_STATE_DIR: home };
    try {
      for (
        const [url, why] of [
          [`postgres://${user}:not-the-password@${host}:${port}/heddle`, /password authentication/],
          [`postgres://${user}:not-the-password@${host}:1/heddle`, /ECONNREFUSED/],
        ] as const
      ) {
        for (
          const args of [
            ["local", "--listen", `127.0.0.1:${freePort()}`, "--state", url],
            ["workflow", "runs", "--state", url],
          ]
        ) {
          const r = await heddle(args, { env });
          assert.equal(r.code, 1, r.stderr);
          const where = url.replace(":not-the-password", "").replace(/^postgres:\/\//, "");
          assert.match(r.stderr, new RegExp(`^heddle: cannot use the state database postgres://`));
          assert.ok(r.stderr.includes(where), r.stderr);
          assert.match(r.stderr, why);
          assert.ok(!r.stderr.includes("not-the-password"), r.stderr);
          assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
          assert.equal(r.stdout, "");
        }
      }
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
);
