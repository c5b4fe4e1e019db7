/**
 * Issue 15, "private by default, authenticated always": a daemon makes its own token on
 * first start in a private state directory, its owner's CLI finds it there, and every call
 * to the control plane or the worker without that token (or, with TLS, without a trusted
 * certificate) is refused with UNAUTHENTICATED before it does anything. Before, both
 * services answered anyone: a local user deployed programs and registered a rogue worker.
 */
import assert from "node:assert/strict";
import { heddle, spawnHeddle, waitForLine } from "../_cli.ts";
import {
  checkListen,
  connectControlPlane,
  connectWorker,
  ControlError,
  type Credentials,
  isLoopback,
  ListenRefused,
  serveWorker,
  type WorkerApi,
} from "../../runtime/protocol/mod.ts";
import { makeCerts, modeOf, startDaemon } from "./_fixtures.ts";

/** A program whose single workflow copies `in.csv` to `out.jsonl`, both in `dir`. */
async function copyProgram(dir: string): Promise<string> {
  await Deno.writeTextFile(`${dir}/in.csv`, "n\n1\n2\n3\n");
  const file = `${dir}/copy.he`;
  await Deno.writeTextFile(
    file,
    'import "fhub/file" file\n' +
      "workflow Copy {\n" +
      `  file.read { path: "${dir}/in.csv", format: "csv" } : { n: int64 }\n` +
      `  | file.write { path: "${dir}/out.jsonl", format: "jsonl" }\n` +
      "}\n",
  );
  return file;
}

async function unauthenticated(call: () => Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(call, (e: unknown) => {
    assert.ok(e instanceof ControlError, `${what}: ${e}`);
    assert.equal(e.code, "unauthenticated", `${what}: ${e.message}`);
    return true;
  });
}

Deno.test("a daemon's first start makes a private state directory and token, and its owner's CLI just works", async () => {
  const tmp = await Deno.makeTempDir();
  const state = `${tmp}/nested/state`;
  const daemon = await startDaemon(state);
  try {
    assert.equal(modeOf(state), 0o700);
    assert.equal(modeOf(`${state}/token`), 0o600);
    assert.equal(modeOf(`${state}/control.db`), 0o600);
    assert.match(Deno.readTextFileSync(`${state}/token`), /^[0-9a-f]{64}\n$/);
    const viaFlag = await heddle([
      "workflow",
      "list",
      "--server",
      daemon.address,
      "--state",
      state,
    ]);
    assert.equal(viaFlag.code, 0, viaFlag.stderr);
    const viaEnv = await heddle(["workflow", "list", "--server", daemon.address], {
      env: { HEDDLE_STATE_DIR: state },
    });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
  } finally {
    await daemon.stop();
  }
  // A restart keeps the same token: clients configured once keep working.
  const token = Deno.readTextFileSync(`${state}/token`);
  Deno.chmodSync(state, 0o755);
  const again = await startDaemon(state);
  try {
    assert.equal(Deno.readTextFileSync(`${state}/token`), token);
    assert.equal(modeOf(state), 0o700, "a state directory opened to others is made private");
  } finally {
    await again.stop();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("every control-plane and worker call without the right token is UNAUTHENTICATED and does nothing", async () => {
  const dir = await Deno.makeTempDir();
  const file = await copyProgram(dir);
  const daemon = await startDaemon(`${dir}/state`, ["--allow-path", dir]);
  // A fake worker an attacker would register: it answers every run with a failure.
  const rogueRuns: string[] = [];
  const rogue: WorkerApi = {
    execute: (r) => {
      rogueRuns.push(r.irJson);
      return Promise.reject(new Error("rogue"));
    },
    cancel: () => Promise.resolve(false),
    health: () =>
      Promise.resolve({
        status: "serving",
        activeRuns: 0,
        registryMemoryBytes: 0,
        registrySpillBytes: 0,
        plugins: [],
      }),
  };
  const rogueToken = "f".repeat(64);
  const rogueServer = await serveWorker(rogue, "127.0.0.1:0", { token: rogueToken, tls: null });
  try {
    for (const token of [null, "0".repeat(64)]) {
      const credentials: Credentials = { token, tls: null };
      const control = connectControlPlane(daemon.address, credentials);
      const worker = connectWorker(daemon.worker, credentials);
      try {
        const source = Deno.readTextFileSync(file);
        await unauthenticated(() => control.deploy({ file, source, overrides: [] }), "Deploy");
        await unauthenticated(() => control.listWorkflows(), "ListWorkflows");
        await unauthenticated(() => control.startRun("Copy"), "StartRun");
        await unauthenticated(() => control.getRun("x"), "GetRun");
        await unauthenticated(() => control.listRuns(), "ListRuns");
        await unauthenticated(() => control.stopRun("x"), "StopRun");
        await unauthenticated(
          () => control.registerWorker({ id: "rogue", address: rogueServer.address, host: "x" }),
          "RegisterWorker",
        );
        // The daemon's own worker: refused, it stays where runs are placed (see below).
        const own = `${Deno.hostname()}-${daemon.child.pid}`;
        await unauthenticated(() => control.leaveWorker(own), "LeaveWorker");
        await unauthenticated(() => worker.health(), "Health");
        await unauthenticated(() => worker.cancel("x"), "Cancel");
        await unauthenticated(
          () =>
            worker.execute(
              { runId: "r", workflow: "Copy", irJson: "{}", baseDir: "/" },
              () => {},
            ),
          "Execute",
        );
      } finally {
        control.close();
        worker.close();
      }
    }
    // Nothing the refused calls asked for happened: no workflow, no rogue worker, the real
    // worker still there, so every run of the owner's deploy lands on it and succeeds.
    const owner = ["--server", daemon.address, "--state", daemon.state];
    assert.equal((await heddle(["workflow", "list", ...owner])).stdout, "");
    const deployed = await heddle(["workflow", "deploy", ...owner, file]);
    assert.equal(deployed.code, 0, deployed.stderr);
    for (let i = 0; i < 3; i++) {
      const run = await heddle(["workflow", "start", "--wait", ...owner, "Copy"]);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, / succeeded /);
    }
    assert.deepEqual(rogueRuns, [], "no run (nor its IR) reached the rogue worker");
  } finally {
    await rogueServer.close();
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the CLI without the daemon's token gets one line and exit 1", async () => {
  const tmp = await Deno.makeTempDir();
  const daemon = await startDaemon(`${tmp}/state`);
  try {
    const r = await heddle(["workflow", "list", "--server", daemon.address, "--state", tmp]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /a valid token is required/);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    // A token file other users can read is refused before any call.
    await Deno.writeTextFile(`${tmp}/shared-token`, "a".repeat(64), { mode: 0o644 });
    Deno.chmodSync(`${tmp}/shared-token`, 0o644);
    const shared = await heddle([
      "workflow",
      "list",
      "--server",
      daemon.address,
      "--token-file",
      `${tmp}/shared-token`,
    ]);
    assert.equal(shared.code, 1);
    assert.match(shared.stderr, /can be read by other users \(mode 644\)/);
  } finally {
    await daemon.stop();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a worker registers only with the control plane's token", async () => {
  const tmp = await Deno.makeTempDir();
  const daemon = await startDaemon(`${tmp}/state`);
  const join = ["cluster", "--worker", "--join", daemon.address, "--worker-listen", "127.0.0.1:0"];
  try {
    const none = await heddle([...join, "--state", `${tmp}/empty`]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no token: give --token-file/);
    await Deno.writeTextFile(`${tmp}/wrong`, "b".repeat(64), { mode: 0o600 });
    const wrong = await heddle([...join, "--token-file", `${tmp}/wrong`]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /cannot register with the control plane .*a valid token/);
    const right = spawnHeddle([...join, "--token-file", `${daemon.state}/token`]);
    await waitForLine(right.stderr, /worker listening on/);
    right.kill("SIGTERM");
    assert.equal((await right.status).code, 0);
    await right.stdout.cancel();
    await right.stderr.cancel().catch(() => {});
  } finally {
    await daemon.stop();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("listening beyond loopback without TLS is refused unless --insecure, which warns", async () => {
  const tmp = await Deno.makeTempDir();
  const r = await heddle(["local", "--listen", "0.0.0.0:0", "--state", `${tmp}/state`]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0:0 without TLS/);
  const plain: Credentials = { token: "t".repeat(32), tls: null };
  assert.throws(() => checkListen("10.1.2.3:7447", plain, false), ListenRefused);
  assert.match(checkListen("10.1.2.3:7447", plain, true) ?? "", /without TLS \(--insecure\)/);
  assert.equal(checkListen("127.0.0.1:7447", plain, false), null);
  for (const a of ["127.0.0.1:1", "localhost:1", "[::1]:1", "unix:/tmp/x"]) {
    assert.ok(isLoopback(a), a);
  }
  for (const a of ["0.0.0.0:1", "[::]:1", "10.0.0.1:1", "example.com:1"]) {
    assert.ok(!isLoopback(a), a);
  }
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("with mutual TLS only a client holding a certificate of the daemon's CA and the token gets in", async () => {
  const certs = await makeCerts();
  const dir = await Deno.makeTempDir();
  const file = await copyProgram(dir);
  const tls = ["--tls-cert", certs.cert, "--tls-key", certs.key, "--tls-ca", certs.ca];
  const daemon = await startDaemon(`${dir}/state`, [...tls, "--allow-path", dir]);
  const server = ["--server", daemon.address];
  const token = ["--state", daemon.state];
  try {
    const deployed = await heddle(["workflow", "deploy", ...server, ...token, ...tls, file]);
    assert.equal(deployed.code, 0, deployed.stderr);
    // The control plane reaches its worker over TLS as well: the run goes through.
    const run = await heddle(["workflow", "start", "--wait", ...server, ...token, ...tls, "Copy"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(Deno.readTextFileSync(`${dir}/out.jsonl`), '{"n":1}\n{"n":2}\n{"n":3}\n');

    const plaintext = await heddle(["workflow", "list", ...server, ...token]);
    assert.equal(plaintext.code, 1);
    assert.match(plaintext.stderr, /unreachable/);
    const rogue = await heddle([
      "workflow",
      "list",
      ...server,
      ...token,
      "--tls-cert",
      certs.rogueCert,
      "--tls-key",
      certs.rogueKey,
      "--tls-ca",
      certs.ca,
    ]);
    assert.equal(rogue.code, 1, "a certificate from another CA is refused");
    const noToken = await heddle(["workflow", "list", ...server, "--state", certs.dir, ...tls]);
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /a valid token is required/);
    const partial = await heddle(["workflow", "list", ...server, "--tls-ca", certs.ca]);
    assert.equal(partial.code, 1);
    assert.match(partial.stderr, /TLS needs --tls-cert, --tls-key and --tls-ca together/);
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(certs.dir, { recursive: true });
  }
});
