/**
 * Issue 15's trust model (docs/security.md), enforced: a deploy carries the program's text
 * and the files it needs, never a path for the daemon to open; a deployed program's file
 * steps read and write only under the operator's `--allow-path` directories, with `..` and
 * symbolic links resolved first; plugins come from the operator's module path only. Before,
 * the deployer's directory was the base and plugin root, and any path was accepted.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";
import { connectControlPlane } from "../../runtime/protocol/mod.ts";
import { examples, ownerOf, startDaemon } from "./_fixtures.ts";

const plugins = `${examples}plugins/`;

function workflow(name: string, from: string, to: string): string {
  return `workflow ${name} {\n` +
    `  file.read { path: "${from}", format: "csv" } : { n: int64 }\n` +
    `  | file.write { path: "${to}", format: "csv" }\n}\n`;
}

Deno.test("a deployed program's file steps stay inside the allowed directories", async () => {
  const tmp = await Deno.makeTempDir();
  const work = `${tmp}/work`;
  const outside = `${tmp}/outside`;
  await Deno.mkdir(work);
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${outside}/secret.csv`, "n\n42\n");
  await Deno.writeTextFile(`${work}/in.csv`, "n\n1\n");
  Deno.symlinkSync(`${outside}/secret.csv`, `${work}/link.csv`);
  Deno.symlinkSync(outside, `${work}/dir`);
  Deno.symlinkSync(`${outside}/planted.csv`, `${work}/dangling.csv`);
  const escapes: Record<string, [string, string]> = {
    Absolute: [`${outside}/secret.csv`, "copy1.csv"],
    DotDot: ["../outside/secret.csv", "copy2.csv"],
    LinkedFile: ["link.csv", "copy3.csv"],
    WriteThroughLinkedDir: ["in.csv", "dir/planted.csv"],
    WriteThroughDanglingLink: ["in.csv", "dangling.csv"],
    DotDotAfterMissingDir: ["in.csv", "missing/../../outside/planted.csv"],
  };
  const program = 'import "fhub/file" file\n' + workflow("Inside", "in.csv", "sub/out.csv") +
    Object.entries(escapes).map(([name, [from, to]]) => workflow(name, from, to)).join("");
  await Deno.writeTextFile(`${tmp}/escape.he`, program);
  const daemon = await startDaemon(`${tmp}/state`, ["--allow-path", work]);
  const owner = ["--server", daemon.address, "--state", daemon.state];
  try {
    const deployed = await heddle(["workflow", "deploy", ...owner, `${tmp}/escape.he`]);
    assert.equal(deployed.code, 0, deployed.stderr);
    const inside = await heddle(["workflow", "start", "--wait", ...owner, "Inside"]);
    assert.equal(inside.code, 0, inside.stdout);
    assert.equal(Deno.readTextFileSync(`${work}/sub/out.csv`), "n\n1\n");
    for (const name of Object.keys(escapes)) {
      const run = await heddle(["workflow", "start", "--wait", ...owner, name]);
      assert.equal(run.code, 1, `${name}: ${run.stdout}`);
      assert.match(run.stdout, /outside the directories this node allows/, name);
    }
    assert.deepEqual([...Deno.readDirSync(outside)].map((e) => e.name), ["secret.csv"]);
    for (const copy of ["copy1.csv", "copy2.csv", "copy3.csv"]) {
      await assert.rejects(() => Deno.stat(`${work}/${copy}`), Deno.errors.NotFound);
    }
  } finally {
    await daemon.stop();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a daemon takes plugins from its module path only, never from the deployer's directory", async () => {
  const tmp = await Deno.makeTempDir();
  const pwned = `${tmp}/pwned`;
  // A valid manifest (the faulty example's contract) whose entry would run `id`.
  const manifest = JSON.parse(Deno.readTextFileSync(`${plugins}faulty/heddle.manifest.json`));
  manifest.package = "evil";
  manifest.entry = ["/bin/sh", "-c", `id > ${pwned}`];
  manifest.modules = { "evil/steps": manifest.modules["faulty/steps"] };
  for (const dir of [`${tmp}/evil`, `${tmp}/plugins/evil`]) {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/heddle.manifest.json`, JSON.stringify(manifest));
  }
  await Deno.writeTextFile(
    `${tmp}/evil.he`,
    'import "evil/steps" evil\nimport "fhub/file" file\nworkflow W {\n' +
      '  file.read { path: "in.csv", format: "csv" } : { n: int64 }\n  | evil.run\n' +
      '  | file.write { path: "out.csv", format: "csv" }\n}\n',
  );
  const daemon = await startDaemon(`${tmp}/state`);
  const owner = ["--server", daemon.address, "--state", daemon.state];
  try {
    const deployed = await heddle(["workflow", "deploy", ...owner, `${tmp}/evil.he`]);
    assert.equal(deployed.code, 1);
    assert.match(deployed.stderr, /cannot find module `evil\/steps`/);
    await assert.rejects(() => Deno.stat(pwned), Deno.errors.NotFound);
    // The manifest itself is valid: the user's own `heddle check` finds it next to the program.
    const own = await heddle(["check", `${tmp}/evil.he`]);
    assert.equal(own.code, 0, own.stderr);
  } finally {
    await daemon.stop();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a deploy carries the program and its snapshot; the daemon opens no path of the deployer's", async () => {
  const tmp = await Deno.makeTempDir();
  const daemon = await startDaemon(`${tmp}/state`);
  const source = Deno.readTextFileSync(`${examples}fraud_detection.he`);
  const snapshot = Deno.readTextFileSync(`${examples}fraud_detection.schema.json`);
  const control = connectControlPlane(daemon.address, {
    token: Deno.readTextFileSync(`${daemon.state}/token`).trim(),
    tls: null,
  });
  try {
    // The named file does not exist on the daemon's machine: only what was sent counts.
    const file = "/nonexistent/fraud_detection.he";
    const sent = await control.deploy({
      file,
      source,
      overrides: [],
      files: [{ name: "fraud_detection.schema.json", content: snapshot }],
    });
    assert.equal(sent.ok, true, JSON.stringify(sent.diagnostics));
    assert.deepEqual(sent.diagnostics, []);
    // Without it, the daemon has no snapshot: it did not go looking next to `file`.
    const without = await control.deploy({ file, source, overrides: [] });
    assert.ok(without.diagnostics.length > 0, "warnings about the missing snapshot");
    assert.ok(without.diagnostics.every((d) => d.severity === "warning"));
    await assert.rejects(
      () => control.deploy({ file, source, overrides: [], files: [{ name: "../x", content: "" }] }),
      /relative path without `\.\.`/,
    );
    // The CLI sends the snapshot next to the program by itself.
    const dir = `${tmp}/deployer`;
    await Deno.mkdir(dir);
    await Deno.writeTextFile(`${dir}/fraud_detection.he`, source);
    await Deno.writeTextFile(`${dir}/fraud_detection.schema.json`, snapshot);
    const cli = await heddle([
      "workflow",
      "deploy",
      ...ownerOf(daemon),
      `${dir}/fraud_detection.he`,
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stderr, "", "no warning: the snapshot went with the program");
  } finally {
    control.close();
    await daemon.stop();
    await Deno.remove(tmp, { recursive: true });
  }
});
