/**
 * The command line's conventions, checked on the real process: exit codes (0, 1, 2),
 * stdout for data and stderr for messages, `--output json`, NO_COLOR, and that user
 * errors are one line, never a stack trace.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";

const seed = new URL("../../examples/fraud_detection.he", import.meta.url).pathname;
const broken = 'import "fhub/kafka" kafka\nresource k = kafka.connection { broker: }\n';

Deno.test("--help lists every subcommand and exits 0", async () => {
  const r = await heddle(["--help"]);
  assert.equal(r.code, 0);
  for (const c of ["run", "local", "cluster", "dev", "inspect", "workflow", "check", "fmt"]) {
    assert.match(r.stdout, new RegExp(`^  ${c}\\b`, "m"), `missing ${c}`);
  }
});

Deno.test("every subcommand's --help has a description and an example", async () => {
  for (const c of ["run", "local", "cluster", "dev", "inspect", "workflow", "check", "fmt"]) {
    const r = await heddle([c, "--help"]);
    assert.equal(r.code, 0, c);
    assert.ok(r.stdout.includes("Example:\n  $ heddle "), c);
  }
});

Deno.test("an unknown command or option is a usage error with exit 2", async () => {
  const command = await heddle(["frobnicate"]);
  assert.equal(command.code, 2);
  assert.match(command.stderr, /unknown command 'frobnicate'/);
  const option = await heddle(["check", "--bogus", seed]);
  assert.equal(option.code, 2);
  assert.equal(option.stdout, "");
});

Deno.test("check exits 0 on the seed program and 1 on a broken one", async () => {
  const ok = await heddle(["check", seed]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /checked 1 file: 0 errors/);
  const bad = await heddle(["check", "-"], { stdin: broken });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /error\[HE\d{4}\]/);
  assert.match(bad.stderr, /--> <stdin>:2:/);
  assert.ok(!bad.stderr.includes("\x1b["), "NO_COLOR is honoured");
});

Deno.test("check --output json prints diagnostics with 1-based positions on stdout", async () => {
  const r = await heddle(["check", "--output", "json", "-"], { stdin: broken });
  assert.equal(r.code, 1);
  const { diagnostics } = JSON.parse(r.stdout);
  assert.ok(diagnostics.length >= 1);
  const d = diagnostics[0];
  assert.deepEqual(Object.keys(d).sort(), [
    "code",
    "column",
    "endColumn",
    "endLine",
    "file",
    "line",
    "message",
    "severity",
  ]);
  assert.equal(d.line, 2);
  assert.equal(d.file, "<stdin>");
});

Deno.test("a missing file is a usage error in one line, without a stack trace", async () => {
  const r = await heddle(["check", "does/not/exist.he"]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "heddle: cannot read `does/not/exist.he`: no such file\n");
});

Deno.test("fmt - formats standard input to standard output", async () => {
  const r = await heddle(["fmt", "-"], {
    stdin:
      'import "fhub/file"   file\nworkflow W {\nfile.read {path: "a", format: "csv"} | file.write {path: "b", format: "csv"}\n}\n',
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^import "fhub\/file" file\n/);
  const again = await heddle(["fmt", "-"], { stdin: r.stdout });
  assert.equal(again.stdout, r.stdout, "formatting is idempotent");
});

Deno.test("fmt --check lists unformatted files, exits 1 and changes nothing", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/messy.he`;
  const messy = 'import "fhub/file"    file\n';
  await Deno.writeTextFile(file, messy);
  const r = await heddle(["fmt", "--check", dir]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, `${file}\n`);
  assert.equal(await Deno.readTextFile(file), messy);
  const fixed = await heddle(["fmt", file]);
  assert.equal(fixed.code, 0);
  assert.equal((await heddle(["fmt", "--check", file])).code, 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("fmt refuses to rewrite a file with syntax errors", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/broken.he`;
  await Deno.writeTextFile(file, broken);
  const r = await heddle(["fmt", file]);
  assert.equal(r.code, 1);
  assert.equal(await Deno.readTextFile(file), broken);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("inspect --ast --output json prints the tree on stdout", async () => {
  const r = await heddle(["inspect", "--ast", "--output", "json", seed]);
  assert.equal(r.code, 0, r.stderr);
  const { ast } = JSON.parse(r.stdout);
  assert.equal(ast.kind, "Program");
  assert.deepEqual(
    ast.items.map((i: { kind: string }) => i.kind).filter((k: string) => k === "Workflow"),
    ["Workflow"],
  );
});

Deno.test("inspect --ir shows the batched lookups of the seed program", async () => {
  const text = await heddle(["inspect", "--ir", seed]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /lookup-batching/);
  assert.match(text.stdout, /ANY\(@user_id\)/);
  const mermaid = await heddle(["inspect", "--ir", "--graph", "mermaid", seed]);
  assert.match(mermaid.stdout, /^graph LR/);
  const dot = await heddle(["inspect", "--ir", "--graph", "dot", seed]);
  assert.match(dot.stdout, /^digraph heddle \{/);
});

Deno.test("run --set rejects an override of an undeclared config key", async () => {
  const r = await heddle(["run", "--set", "pg_db.hots=127.0.0.1", seed]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /has no config key `hots`/);
  const unknown = await heddle(["run", "--set", "nope.host=x", seed]);
  assert.match(unknown.stderr, /resource `nope`, which the program does not declare/);
});

Deno.test("workflow commands say clearly when no control plane is running", async () => {
  const r = await heddle(["workflow", "list", "--server", "127.0.0.1:9"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is `heddle local` running at 127.0.0.1:9\?/);
  assert.equal(r.stderr.split("\n").filter(Boolean).length, 1, "one line");
});

Deno.test("check validates --set overrides against the resource's contract", async () => {
  const r = await heddle(["check", "--set", "pg_db.port=abc", seed]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[HE0501\]: override `pg_db.port` expects int, found `abc`/);
  assert.match(r.stderr, /\nchecked 1 file: 1 error/, "the summary starts its own line");
});
