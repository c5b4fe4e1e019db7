/**
 * Faults in compiled plugins, for each of the Go and Rust SDKs (tests/plugins/faulty-go and
 * faulty-rust): a step that panics is a `step-failed` answer and the process stays warm; a
 * step that returns the wrong schema is refused; a process that dies mid-invocation is
 * `crashed` and the next call starts a new one; no output segment is left behind. Through a
 * whole run, the row that kills the plugin is retried, isolated and quarantined while every
 * other row reaches the output. Only handles cross the socket, and a plugin whose worker
 * is gone exits by itself.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { heddle } from "../_cli.ts";
import { provision } from "../../runtime/plugins/_build.ts";
import { assertSocketBytesFlat, numbers, rig, segmentsStartingWith } from "./_fixtures.ts";

const HERE = new URL(".", import.meta.url).pathname;
const available = async (tool: string, arg: string) =>
  await new Deno.Command(tool, { args: [arg] }).output().then((o) => o.success, () => false);
const SDKS = [
  { lang: "go", pkg: "faulty-go", ok: await available("go", "version") },
  { lang: "rust", pkg: "faulty-rust", ok: await available("cargo", "--version") },
];
/** The first call builds the plugin; on a cold cache that takes minutes. */
const BUILD_TIMEOUT_MS = 900_000;

for (const { lang, pkg, ok: toolchain } of SDKS) {
  Deno.test({
    name: `${lang}: a panic is a step failure, a wrong schema is refused, a death is a crash`,
    ignore: !toolchain,
    async fn() {
      await using r = rig({ roots: [HERE] });
      const call = (step: string, rows = 5) =>
        r.host.invoke(`${pkg}/steps.${step}`, { bad: 3 }, r.registry.put(numbers(rows), 1), {
          timeoutMs: BUILD_TIMEOUT_MS,
        });
      const fine = await call("explode", 3);
      ok(fine.ok, fine.ok ? "" : fine.error.message);
      r.registry.release(fine.output.id);
      const pid = r.host.plugins()[0].pid;

      const panicked = await call("explode");
      ok(!panicked.ok);
      equal(panicked.error.code, "step-failed");
      equal(panicked.error.details.stepCode, "USER_CODE");
      ok(panicked.error.message.includes("exploded on the bad row"), panicked.error.message);
      equal(r.host.plugins()[0].pid, pid, "a panic must not cost the process");

      const wrong = await call("wrong");
      ok(!wrong.ok);
      equal(wrong.error.details.stepCode, "BAD_OUTPUT");
      equal(wrong.error.column, "twice");

      const died = await call("die");
      ok(!died.ok);
      equal(died.error.code, "crashed");
      const again = await call("explode", 3);
      ok(again.ok, again.ok ? "" : again.error.message);
      r.registry.release(again.output.id);
      ok(r.host.plugins()[0].pid !== pid, "a crashed process must be replaced");
      // The failed calls left no output segment behind (the good ones were released above).
      deepEqual(segmentsStartingWith(`heddletest-${Deno.pid}-plugin_${pkg.replace("-", "_")}`), []);
    },
  });
}

Deno.test({
  name: "a run retries the row that kills a Go plugin, quarantines it and delivers the rest",
  ignore: !SDKS[0].ok,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "heddle-compiled-faults-" });
    try {
      const rows = Array.from({ length: 20 }, (_, i) => i);
      await Deno.writeTextFile(`${dir}/in.csv`, `n\n${rows.join("\n")}\n`);
      await Deno.writeTextFile(
        `${dir}/main.he`,
        `import "fhub/file" file
import "faulty-go/steps" faulty

handler rejected {
  *
  | file.write { path: "rejected.jsonl", format: "jsonl" }
}

step die = faulty.die { bad: 7 } retry { attempts: 2, backoff: 10ms, timeout: 60s }

workflow W ? rejected {
  file.read { path: "in.csv", format: "csv" }
  | die
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`,
      );
      const r = await heddle(["run", `${dir}/main.he`], { env: { HEDDLE_PATH: HERE } });
      equal(r.code, 0, r.stderr);
      const read = async (f: string) =>
        (await Deno.readTextFile(`${dir}/${f}`)).trim().split("\n").map((l) => JSON.parse(l));
      const out = await read("out.jsonl");
      deepEqual(out.map((row) => row.n).sort((a, b) => a - b), rows.filter((n) => n !== 7));
      ok(out.every((row) => row.twice === row.n * 2));
      const rejected = await read("rejected.jsonl");
      deepEqual(rejected.map((row) => row.n), [7]);
      equal(rejected[0]._error_step, "die");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** The built binary of a test plugin, from the same cache the worker uses. */
async function binaryOf(pkg: string): Promise<string> {
  const dir = `${HERE}${pkg}`;
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/heddle.manifest.json`));
  const built = await provision({ dir, name: pkg, build: manifest.build, entry: manifest.entry });
  ok(built.ok, built.ok ? "" : built.message);
  return built.binary;
}

for (const { lang, pkg, ok: toolchain } of SDKS) {
  Deno.test({
    name: `${lang}: the bytes on the plugin socket stay small and constant as the batch grows`,
    ignore: !toolchain,
    async fn() {
      await assertSocketBytesFlat({
        command: [await binaryOf(pkg)],
        cwd: `${HERE}${pkg}`,
        env: {},
        step: `${pkg}/steps.explode`,
        configJson: '{"bad":-1}',
        table: numbers,
      });
    },
  });

  Deno.test({
    name: `${lang}: a plugin exits by itself once its worker is gone`,
    ignore: !toolchain,
    async fn() {
      const binary = await binaryOf(pkg);
      const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "heddle-orphan-" });
      const worker = new Deno.Command("sleep", { args: ["1"] }).spawn();
      const plugin = new Deno.Command(binary, {
        env: { HEDDLE_PLUGIN_SOCKET: `${dir}/p.sock`, HEDDLE_WORKER_PID: String(worker.pid) },
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        await worker.status;
        const gone = await Promise.race([
          plugin.status.then(() => true),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 15_000)),
        ]);
        ok(gone, "the plugin outlived its worker by 15 s");
      } finally {
        try {
          plugin.kill("SIGKILL");
        } catch {
          // Already gone, as it should be.
        }
        await plugin.status;
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
