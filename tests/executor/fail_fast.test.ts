/**
 * Errors that no retry can fix fail the run at its first attempt, with the cause, instead of
 * being retried row by row and quarantined; transient ones are still retried and split; and
 * once an attempt timed out, the split halves share one deadline. Real plugin processes
 * (examples/plugins/faulty, and packages written here that cannot start or break their
 * declared schema), real shared memory.
 */
import assert from "node:assert/strict";
import { ConnectorError } from "../../runtime/connectors/mod.ts";
import { PluginHost } from "../../runtime/plugins/mod.ts";
import { Registry } from "../../runtime/registry/mod.ts";
import { type RunEvent, type RunSummary, runWorkflow } from "../../runtime/executor/mod.ts";
import {
  compile,
  CountingSource,
  EXAMPLE_PLUGINS,
  KAFKA_PRELUDE,
  ownSegments,
  RecordingSink,
  ScriptedTransform,
  testConnectors,
} from "./_fixtures.ts";

const REPO = new URL("../../", import.meta.url).pathname;

function readJsonl(path: string): Record<string, unknown>[] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter((l) => l).map((l) => JSON.parse(l));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

// deno-lint-ignore no-explicit-any -- a manifest as JSON, edited freely by each test
type Manifest = Record<string, any>;

/** A copy of the faulty plugin's manifest under `root/<name>`, changed by `edit`. */
function pluginCopy(root: string, name: string, edit: (manifest: Manifest) => void) {
  const manifest = JSON.parse(
    Deno.readTextFileSync(`${EXAMPLE_PLUGINS}/faulty/heddle.manifest.json`),
  );
  manifest.package = name;
  manifest.modules = { [`${name}/steps`]: manifest.modules["faulty/steps"] };
  edit(manifest);
  Deno.mkdirSync(`${root}/${name}`, { recursive: true });
  Deno.writeTextFileSync(`${root}/${name}/heddle.manifest.json`, JSON.stringify(manifest));
}

interface Ran {
  summary: RunSummary;
  events: RunEvent[];
  dir: string;
  attempts: number;
}

/**
 * Runs `body` (the workflow `W` reading 20 numbers `n` through `step`, with a handler that
 * writes `rejected.jsonl`) with the real plugin host; plugins are found in `roots`.
 */
async function runNumbers(
  step: string,
  imports: string,
  roots: string[],
  check: (ran: Ran) => void | Promise<void>,
) {
  const dir = Deno.makeTempDirSync({ prefix: "heddle-failfast-" });
  const registry = new Registry();
  const plugins = new PluginHost({ registry, search: { programDir: dir, modulePath: roots } });
  try {
    Deno.writeTextFileSync(
      `${dir}/numbers.csv`,
      ["n", ...Array.from({ length: 20 }, (_, i) => String(i))].join("\n") + "\n",
    );
    const ir = compile(
      `import "fhub/file" file
${imports}
handler rejected {
  *
  | file.write { path: "rejected.jsonl", format: "jsonl" }
}
workflow W ? rejected {
  file.read { path: "numbers.csv", format: "csv" } : { n: int64 }
  | ${step}
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`,
      dir,
      roots,
    );
    const events: RunEvent[] = [];
    const summary = await runWorkflow(ir, { registry, plugins, onEvent: (e) => events.push(e) });
    const attempts = events.filter((e) => e.type === "attempt-started" && e.stage === "W.1");
    await check({ summary, events, dir, attempts: attempts.length });
    assert.deepEqual(ownSegments(), [], "registry segments left after the run");
  } finally {
    await plugins.close();
    registry.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

function assertFailedAtOnce({ summary, events, dir, attempts }: Ran, cause: RegExp) {
  assert.equal(summary.status, "failed");
  assert.match(summary.error?.message ?? "", cause);
  assert.equal(summary.error?.stage, "W.1");
  assert.equal(attempts, 1, "one attempt: the error is not retried or split");
  assert.deepEqual(events.filter((e) => e.type === "rows-quarantined"), []);
  assert.deepEqual(readJsonl(`${dir}/rejected.jsonl`), [], "no row reaches the handler");
  assert.equal(summary.rowsQuarantined, 0);
}

const CANNOT_START = [
  {
    why: "an unresolvable import",
    entry: ["deno", "run", "-A", "main.ts"],
    file: "main.ts",
    code: 'import "./does_not_exist.ts";\n',
    said: /Module not found "[^"]*does_not_exist\.ts"/,
  },
  {
    why: "a build failure (a syntax error)",
    entry: ["deno", "run", "-A", "main.ts"],
    file: "main.ts",
    code: "export const broken = ;\n",
    said: /main\.ts/,
  },
  {
    why: "a missing Python module",
    entry: ["python3", "main.py"],
    file: "main.py",
    code: "import heddle_module_that_does_not_exist\n",
    said: /ModuleNotFoundError: No module named 'heddle_module_that_does_not_exist'/,
  },
];

for (const c of CANNOT_START) {
  Deno.test(`a plugin that cannot start (${c.why}) fails the run at its first attempt`, async () => {
    const root = Deno.makeTempDirSync({ prefix: "heddle-broken-" });
    pluginCopy(root, "broken", (m) => m.entry = c.entry);
    Deno.writeTextFileSync(`${root}/broken/${c.file}`, c.code);
    try {
      await runNumbers("broken.run { }", 'import "broken/steps" broken', [root], (ran) => {
        assertFailedAtOnce(ran, /plugin `[^`]*broken` exited before it listened/);
        // The plugin's own words say why; colour codes are stripped from them.
        assert.match(ran.summary.error!.message, c.said);
        assert.ok(!ran.summary.error!.message.includes("\x1b["), ran.summary.error!.message);
      });
    } finally {
      Deno.removeSync(root, { recursive: true });
    }
  });
}

Deno.test("a plugin whose output breaks its declared schema fails the run at its first attempt", async () => {
  const root = Deno.makeTempDirSync({ prefix: "heddle-stale-" });
  // A stale manifest: it declares `ok` as int32 while the plugin produces bool.
  pluginCopy(root, "faulty", (m) => {
    m.modules["faulty/steps"].steps.run.output.fields[0].type = "int32";
    m.entry = [
      "deno",
      "run",
      "-A",
      "--config",
      `${REPO}deno.json`,
      `${EXAMPLE_PLUGINS}/faulty/main.ts`,
    ];
  });
  try {
    await runNumbers("faulty.run { }", 'import "faulty/steps" faulty', [root], (ran) => {
      assertFailedAtOnce(ran, /breaks its declared schema: column `ok` is bool, but int32/);
    });
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("a hung plugin: once an attempt timed out, the split halves share one deadline", async () => {
  await runNumbers(
    "faulty.run { hang: true } retry { attempts: 2, backoff: 1ms, timeout: 400ms }",
    'import "faulty/steps" faulty',
    [EXAMPLE_PLUGINS],
    ({ summary, events, dir, attempts }) => {
      assert.equal(summary.status, "completed", summary.error?.message);
      const rejected = readJsonl(`${dir}/rejected.jsonl`);
      assert.deepEqual(rejected.map((r) => Number(r.n)).sort((a, b) => a - b), [
        ...Array(20).keys(),
      ]);
      // The whole batch twice, then the split spends one more timeout in all; each row on
      // its own would be 2 more attempts per row (about 60 in all, and 60 timeouts of time).
      assert.ok(attempts <= 4, `${attempts} attempts`);
      const timeouts = events.filter((e) =>
        e.type === "attempt-failed" && /timed out|within/.test(e.error.message)
      );
      assert.equal(timeouts.length, attempts, "every attempt ended by its timeout");
      assert.ok(rejected.some((r) => /shared deadline \(400 ms\)/.test(String(r._error_message))));
    },
  );
});

Deno.test("a plugin that starts slower than the step's timeout is not killed while starting", async () => {
  const root = Deno.makeTempDirSync({ prefix: "heddle-slow-" });
  const faulty = `${EXAMPLE_PLUGINS}/faulty/main.ts`;
  pluginCopy(root, "faulty", (m) => {
    m.entry = ["sh", "-c", `sleep 1 && exec deno run -A --config ${REPO}deno.json ${faulty}`];
  });
  try {
    await runNumbers(
      "faulty.run { } retry { attempts: 30, backoff: 300ms, max_backoff: 300ms, timeout: 500ms }",
      'import "faulty/steps" faulty',
      [root],
      ({ summary, dir }) => {
        assert.equal(summary.status, "completed", summary.error?.message);
        assert.equal(summary.rowsQuarantined, 0, "a later attempt found the process started");
        assert.equal(readJsonl(`${dir}/out.jsonl`).length, 20);
      },
    );
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("an authentication failure (a connector `config` error) fails the run; a 503 is retried", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "heddle-failfast-" });
  const registry = new Registry();
  try {
    const ir = compile(
      `${KAFKA_PRELUDE}
handler failed {
  *
  | kafka.produce <broker=broker> { topic: "failed" }
}
workflow Enrich ? failed {
  kafka.consume <broker=broker> { topic: "in" }
  | llm.prompt { system: "s" } retry { attempts: 3, backoff: 1ms }
  | kafka.produce <broker=broker> { topic: "out" }
}
`,
      dir,
    );
    const run = async (error: Error) => {
      const transform = new ScriptedTransform(() => Promise.reject(error));
      const sinks = { out: new RecordingSink(), failed: new RecordingSink() };
      const events: RunEvent[] = [];
      const summary = await runWorkflow(ir, {
        registry,
        connectors: testConnectors({ source: new CountingSource(1, 4), sinks, transform }),
        onEvent: (e) => events.push(e),
      });
      return { summary, calls: transform.calls, failed: sinks.failed.rows.length, events };
    };
    const auth = await run(new ConnectorError("config", "llm: 401 invalid api key"));
    assert.equal(auth.summary.status, "failed");
    assert.match(auth.summary.error?.message ?? "", /401 invalid api key/);
    assert.equal(auth.calls, 1);
    assert.equal(auth.failed, 0);
    const busy = await run(new ConnectorError("unavailable", "llm: 503 overloaded"));
    assert.equal(busy.summary.status, "completed", busy.summary.error?.message);
    assert.equal(busy.failed, 4, "the rows that kept failing went to the handler");
    assert.ok(busy.calls > 3, `${busy.calls} calls: retried, then split`);
  } finally {
    registry.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
