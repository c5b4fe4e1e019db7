/**
 * Two control planes on one PostgreSQL state database: one leads, the other stands by and
 * refuses calls with the leader's address; when the leader is killed with -9 the standby
 * takes the lease once it expires and resumes the run the dead leader left running, a worker
 * given both addresses follows it, and runs go on (tests/cluster/takeover.test.ts follows a
 * resumed run to its end on several hosts). And the fence: a control plane whose lease another one took can no longer write.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { heddle } from "../_cli.ts";
import { quickstartCopy, quickstartEnv } from "../_quickstart.ts";
import { freePort } from "../e2e/_fixtures.ts";
import { serviceConfig, serviceTest } from "../services/mod.ts";
import { startNode, stateDatabase } from "./_fixtures.ts";
import { type RunJson, writeSlowProgram } from "../history/_fixtures.ts";
import { LeaderLease, StateStoreError } from "../../runtime/control/mod.ts";
import { connectControlPlane } from "../../runtime/protocol/mod.ts";
import { Store } from "../../runtime/control/_store.ts";
import { ScheduleStore } from "../../runtime/control/_schedule_store.ts";

serviceTest(
  "kill -9 of the leading control plane: the standby takes over, the worker follows, runs go on",
  ["postgres"],
  async () => {
    await using db = await stateDatabase();
    const dir = await quickstartCopy();
    const token = `${dir}/token`;
    await Deno.writeTextFile(token, "f".repeat(64), { mode: 0o600 });
    const env = { ...quickstartEnv, HEDDLE_STATE_DIR: `${dir}/home` };
    const [a, b] = [`127.0.0.1:${freePort()}`, `127.0.0.1:${freePort()}`];
    const controlPlane = (listen: string, ready: RegExp) =>
      startNode(
        [
          "cluster",
          "--control-plane",
          "--listen",
          listen,
          "--state",
          db.url,
          "--token-file",
          token,
          "--leader-lease",
          "3",
          "--worker-timeout",
          "6",
          "--ui-listen",
          "off",
        ],
        ready,
        env,
      );
    const leader = await controlPlane(a, /leading the state database/);
    const standby = await controlPlane(b, /standby: the leader is at /);
    const worker = await startNode(
      [
        "cluster",
        "--worker",
        "--join",
        `${a},${b}`,
        "--token-file",
        token,
        "--allow-path",
        dir,
      ],
      /worker listening on/,
      env,
    );
    const ask = (server: string, args: string[]) =>
      heddle([...args.slice(0, 2), "--server", server, "--token-file", token, ...args.slice(2)], {
        env,
      });
    const startQuickstart = (server: string) =>
      ask(server, ["workflow", "start", "--wait", "--output", "json", "Quickstart"]);
    // A client given the standby first: it follows the standby's refusal to the leader.
    const both = `${b},${a}`;
    const direct = connectControlPlane(b, { token: "f".repeat(64), tls: null });
    try {
      assert.match(standby.stderr.text, new RegExp(`standby: the leader is at ${a}`));
      await assert.rejects(direct.listWorkflows(), {
        code: "not-leader",
        message: `this control plane is a standby: the leader is at ${a}`,
      });

      const deployed = await ask(both, ["workflow", "deploy", `${dir}/quickstart.he`]);
      assert.equal(deployed.code, 0, deployed.stderr);
      const first = await startQuickstart(both);
      assert.equal(first.code, 0, first.stderr + first.stdout);
      const firstRun = JSON.parse(first.stdout).runs[0];
      // A run still going when the leader dies (each batch waits a minute in its plugin).
      const slow = await writeSlowProgram(dir, 3000, 60_000);
      assert.equal((await ask(a, ["workflow", "deploy", slow])).code, 0);
      const cut = await ask(a, ["workflow", "start", "--output", "json", "Slow"]);
      assert.equal(cut.code, 0, cut.stderr);
      const cutRun = JSON.parse(cut.stdout).runs[0];
      assert.equal(cutRun.status, "running");

      const killed = Date.now();
      await leader.stop("SIGKILL");
      await standby.stderr.waitFor(/leading the state database/);
      const tookOverMs = Date.now() - killed;
      console.log(`the standby led ${tookOverMs} ms after the leader was killed (lease 3 s)`);
      // Within the lease and one try of the standby (a third of it), with room for a loaded
      // machine: never "whenever the old leader's connection times out".
      assert.ok(tookOverMs < 15_000, `took over after ${tookOverMs} ms`);

      // Past the worker timeout: the worker is still known only if it registers with the
      // new leader by itself.
      await new Promise((r) => setTimeout(r, 8_000));
      // The same client command reaches the new leader.
      const runs = await ask(both, ["workflow", "runs", "--output", "json"]);
      assert.equal(runs.code, 0, runs.stderr);
      // The cut run is not failed: the new leader placed it again on the worker.
      assert.deepEqual(
        JSON.parse(runs.stdout).runs.map((r: RunJson) => [r.id, r.status, r.error]),
        [
          [cutRun.id, "running", ""],
          [firstRun.id, "succeeded", ""],
        ],
      );
      const logs = await ask(b, ["workflow", "logs", cutRun.id]);
      assert.match(logs.stdout, /resumed after a control plane restart/);
      // And one given the dead leader first goes on to the next address.
      const second = await startQuickstart(`${a},${b}`);
      assert.equal(second.code, 0, second.stderr);
      const secondRun = JSON.parse(second.stdout).runs[0];
      assert.equal(secondRun.status, "succeeded");
      assert.equal(secondRun.worker, firstRun.worker);
      for (const node of [standby, worker]) {
        assert.ok(!node.stderr.text.includes(`:${serviceConfig.postgres.password}@`));
      }
    } finally {
      direct.close();
      await worker.stop("SIGKILL"); // it may still run the cut run's minute-long batch
      await standby.stop();
      await leader.stop("SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
);

serviceTest(
  "a control plane whose lease another one took cannot write, and is told it lost the lease",
  ["postgres"],
  async () => {
    await using db = await stateDatabase();
    const lease = await LeaderLease.open(db.url, 600);
    const store = new Store(db.url);
    const schedules = new ScheduleStore(db.url);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const deploy = { file: "a.he", source: "", irJson: "{}", baseDir: "/" };
    try {
      // Nobody leads yet: nobody may write.
      assert.throws(() => store.saveDeploy(deploy, ["A"]), fenced);
      assert.equal(await lease.tryAcquire("127.0.0.1:1"), true);
      assert.equal(store.saveDeploy(deploy, ["A"]), 1);
      const schedule = { cron: "", everyMs: 60_000, allowOverlap: false, createdAt: 0, nextAt: 1 };
      schedules.save({ workflow: "A", ...schedule });
      const lost = new Promise<string>((resolve) => lease.startRenewing(resolve));
      // Another control plane takes the lease (as if this one had been paused past it).
      await admin.query(
        "update heddle_leader set holder = 'elsewhere', address = '10.0.0.9:7447', " +
          "epoch = epoch + 1, expires_at = now() + interval '1 minute'",
      );
      assert.throws(() => store.saveDeploy(deploy, ["B"]), fenced);
      // A write nobody waits for (it is only posted) is refused too, and the next statement
      // that waits reports it.
      schedules.recordOutcome("A", "started run R");
      assert.throws(() => schedules.list(), fenced);
      assert.equal(schedules.list()[0].lastOutcome, "");
      assert.match(await lost, /another control plane \(10\.0\.0\.9:7447\) took the leader lease/);
      assert.deepEqual(store.workflows().map((w) => w.name), ["A"]);
      // An expired lease of its own does not let it write either.
      await admin.query(
        "update heddle_leader set holder = $1, expires_at = now() - interval '1 second'",
        [lease.holder],
      );
      assert.throws(() => store.saveDeploy(deploy, ["C"]), fenced);
      assert.deepEqual(store.workflows().map((w) => w.name), ["A"]);
    } finally {
      await admin.end();
      store.close();
      schedules.close();
      await lease.close();
    }
  },
);

serviceTest(
  "a leading control plane whose lease another one took stops with exit 1 and says so",
  ["postgres"],
  async () => {
    await using db = await stateDatabase();
    const home = await Deno.makeTempDir();
    const leader = await startNode(
      [
        "cluster",
        "--control-plane",
        "--listen",
        `127.0.0.1:${freePort()}`,
        "--state",
        db.url,
        "--leader-lease",
        "3",
        "--ui-listen",
        "off",
      ],
      /leading the state database/,
      { HEDDLE_STATE_DIR: home },
    );
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await admin.query(
        "update heddle_leader set holder = 'elsewhere', address = '10.0.0.9:7447', " +
          "expires_at = now() + interval '1 minute'",
      );
      assert.equal((await leader.child.status).code, 1);
      await leader.stderr.done;
      assert.match(
        leader.stderr.text,
        /heddle: another control plane \(10\.0\.0\.9:7447\) took the leader lease of the state database postgres:\/\/heddle@[^ ]+: stopping, this control plane no longer leads\n$/,
      );
    } finally {
      await admin.end();
      await leader.stop("SIGKILL");
      await Deno.remove(home, { recursive: true });
    }
  },
);

serviceTest(
  "a client none of whose control planes leads gets one line naming every address tried, exit 1",
  ["postgres"],
  async () => {
    await using db = await stateDatabase();
    // The tables, and a lease held for minutes by a control plane nothing answers for.
    await (await LeaderLease.open(db.url)).close();
    const gone = `127.0.0.1:${freePort()}`;
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query(
      "insert into heddle_leader (id, holder, address, epoch, expires_at) values " +
        "(1, 'elsewhere', $1, 1, clock_timestamp() + interval '10 minutes')",
      [gone],
    ).finally(() => admin.end());
    const home = await Deno.makeTempDir();
    const token = `${home}/token`;
    await Deno.writeTextFile(token, "f".repeat(64), { mode: 0o600 });
    const at = `127.0.0.1:${freePort()}`;
    const standby = await startNode(
      [
        "cluster",
        "--control-plane",
        "--listen",
        at,
        "--state",
        db.url,
        "--token-file",
        token,
        "--ui-listen",
        "off",
      ],
      /standby: the leader is at /,
      { HEDDLE_STATE_DIR: home },
    );
    try {
      const down = `127.0.0.1:${freePort()}`;
      const r = await heddle([
        "workflow",
        "list",
        "--server",
        `${down},${at}`,
        "--token-file",
        token,
      ]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, "");
      const unreachable = "the server is unreachable: [^;\n]*";
      assert.match(
        r.stderr,
        new RegExp(
          `^heddle: no control plane that leads answered \\(tried ${down}: ${unreachable}; ` +
            `${at}: this control plane is a standby: the leader is at ${gone}; ` +
            `${gone}: ${unreachable}\\)\n$`,
        ),
      );
    } finally {
      await standby.stop();
      await Deno.remove(home, { recursive: true });
    }
  },
);

function fenced(e: unknown): boolean {
  assert.ok(e instanceof StateStoreError);
  assert.match(e.message, /does not hold the leader lease/);
  return true;
}
