/**
 * Issue 15's attack, replayed as the unprivileged user `nobody` with only curl against a
 * `heddle local` run by root: before, nobody deployed a program that copied a 0600 root
 * file, ran a plugin of their own as root, and registered a rogue worker. Now every call is
 * UNAUTHENTICATED, the token cannot be read, and nothing the attacker asked for happened.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import { asNobody, canSwitchUser, curlGrpc, grpcBody, startDaemon } from "./_fixtures.ts";

const CONTROL = "/heddle.control.v1.ControlPlane";
const WORKER = "/heddle.control.v1.Worker";

Deno.test("nobody can neither read the daemon's token nor get any call through", async () => {
  if (!canSwitchUser("the nobody attack")) return;
  const tmp = await Deno.makeTempDir();
  // Everything below is reachable by others unless Heddle's own modes protect it.
  Deno.chmodSync(tmp, 0o755);
  await Deno.writeTextFile(`${tmp}/secret.txt`, "root-only-secret\n", { mode: 0o600 });
  const loot = `${tmp}/loot`;
  await Deno.mkdir(loot, { mode: 0o777 });
  Deno.chmodSync(loot, 0o777);
  const pwned = `${loot}/pwned`;
  await Deno.mkdir(`${loot}/evil`, { mode: 0o777 });
  await Deno.writeTextFile(
    `${loot}/evil/heddle.manifest.json`,
    JSON.stringify({
      heddle_manifest: 1,
      runtime: "python",
      entry: ["/bin/sh", "-c", `id > ${pwned}`],
      modules: { "evil/steps": { steps: {} } },
    }),
  );
  const program = 'import "fhub/file" file\nimport "evil/steps" evil\nworkflow Steal {\n' +
    `  file.read { path: "${tmp}/secret.txt", format: "csv" }\n` +
    `  | file.write { path: "${loot}/copy.csv", format: "csv" }\n}\n`;
  const bodies = {
    deploy: grpcBody([[1, `${loot}/steal.he`], [2, program]]),
    register: grpcBody([[1, "rogue"], [2, "127.0.0.1:9"], [3, "attacker"]]),
    execute: grpcBody([[1, "run"], [2, "Steal"], [3, "{}"], [4, loot]]),
    empty: grpcBody([]),
  };
  for (const [name, bytes] of Object.entries(bodies)) {
    await Deno.writeFile(`${loot}/${name}.bin`, bytes, { mode: 0o644 });
  }
  const state = `${tmp}/state`;
  const daemon = await startDaemon(state);
  try {
    const stolen = await asNobody(["cat", `${state}/token`]);
    assert.notEqual(stolen.code, 0, "nobody must not read the token");
    assert.match(stolen.stderr, /Permission denied/);
    assert.notEqual((await asNobody(["ls", state])).code, 0);

    const guessed = "authorization: Bearer " + "0".repeat(64);
    const calls: [string, string, string][] = [
      [daemon.address, `${CONTROL}/Deploy`, "deploy"],
      [daemon.address, `${CONTROL}/RegisterWorker`, "register"],
      [daemon.address, `${CONTROL}/ListWorkflows`, "empty"],
      [daemon.address, `${CONTROL}/ListRuns`, "empty"],
      [daemon.worker, `${WORKER}/Execute`, "execute"],
      [daemon.worker, `${WORKER}/Health`, "empty"],
    ];
    for (const [address, method, body] of calls) {
      for (const headers of [[], [guessed]]) {
        const status = await curlGrpc(asNobody, address, method, `${loot}/${body}.bin`, headers);
        assert.equal(status, 16, `${method} ${headers.length ? "with a guessed token" : ""}`);
      }
    }

    // Nothing happened: no workflow, no copy, no plugin ran, no rogue worker took runs.
    const owner = ["--server", daemon.address, "--state", state];
    const list = await heddle(["workflow", "list", ...owner]);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout, "");
    for (const path of [pwned, `${loot}/copy.csv`]) {
      await assert.rejects(() => Deno.stat(path), Deno.errors.NotFound, path);
    }
  } finally {
    await daemon.stop();
    await Deno.remove(tmp, { recursive: true });
  }
});
