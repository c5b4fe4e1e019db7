/**
 * The executor with the real plugin host and the example plugins: per-row errors reported
 * by a plugin go to the handler without splitting, and the quickstart program runs end to
 * end on a copy of its data.
 */
import assert from "node:assert/strict";
import { check } from "../../compiler/mod.ts";
import { PluginHost } from "../../runtime/plugins/mod.ts";
import { Registry } from "../../runtime/registry/mod.ts";
import { type RunEvent, runWorkflow } from "../../runtime/executor/mod.ts";
import { compile, EXAMPLE_PLUGINS, ownSegments } from "./_fixtures.ts";

function readJsonl(path: string): Record<string, unknown>[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

async function withHost(
  body: (registry: Registry, host: PluginHost, dir: string) => Promise<void>,
) {
  const dir = Deno.makeTempDirSync({ prefix: "heddle-exec-plugin-" });
  const registry = new Registry();
  const host = new PluginHost({
    registry,
    search: { programDir: dir, modulePath: [EXAMPLE_PLUGINS] },
  });
  try {
    await body(registry, host, dir);
    assert.deepEqual(ownSegments(), [], "registry segments left after the run");
  } finally {
    await host.close();
    registry.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("rows a plugin reports as failed go to the handler without splitting the batch", async () => {
  await withHost(async (registry, plugins, dir) => {
    Deno.writeTextFileSync(
      `${dir}/in.jsonl`,
      Array.from({ length: 10 }, (_, n) => JSON.stringify({ n })).join("\n"),
    );
    const ir = compile(
      `import "fhub/file" file
import "faulty/steps" faulty

handler failed {
  *
  | file.write { path: "failed.jsonl", format: "jsonl" }
}

workflow RowErrors {
  file.read { path: "in.jsonl", format: "jsonl" }
  | faulty.run { fail_rows: [1, 3] } ? failed
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`,
      dir,
    );
    const events: RunEvent[] = [];
    const summary = await runWorkflow(ir, {
      registry,
      plugins,
      batchRows: 5,
      onEvent: (e) => events.push(e),
    });
    assert.equal(summary.status, "completed", summary.error?.message);
    const failed = readJsonl(`${dir}/failed.jsonl`);
    assert.deepEqual(failed.map((r) => r.n), [1, 3, 6, 8]);
    assert.ok(failed.every((r) => r._error_step === "faulty/steps.run" && r._error_attempt === 1));
    assert.match(String(failed[0]._error_message), /row 1 fails on purpose/);
    const starts = events.filter((e) => e.type === "attempt-started" && e.stage === "RowErrors.1");
    assert.equal(starts.length, 2, "one attempt per batch: row errors are not retried or split");
  });
});

Deno.test("the quickstart runs end to end with its TypeScript plugin", async () => {
  await withHost(async (registry, plugins, dir) => {
    const examples = new URL("../../examples/", import.meta.url).pathname;
    Deno.mkdirSync(`${dir}/data`);
    for (const f of ["transactions.csv", "users.jsonl"]) {
      Deno.copyFileSync(`${examples}data/${f}`, `${dir}/data/${f}`);
    }
    const source = Deno.readTextFileSync(`${examples}quickstart.he`);
    const checked = check(source, `${dir}/quickstart.he`, { modulePath: [EXAMPLE_PLUGINS] });
    assert.deepEqual(checked.diagnostics.filter((d) => d.severity === "error"), []);
    const summary = await runWorkflow(checked.value.optimised!, {
      registry,
      plugins,
      batchRows: 64,
    });
    assert.equal(summary.status, "completed", summary.error?.message);

    const lines = Deno.readTextFileSync(`${dir}/data/transactions.csv`).trim().split("\n").slice(1);
    const parsed = lines.map((l) => l.split(",")).filter((c) =>
      c.length === 6 && /^\d+$/.test(c[0]) && !Number.isNaN(Number(c[2]))
    );
    const settled = parsed.filter((c) => c[4] === "settled" && Number(c[2]) > 0);
    const out = readJsonl(`${dir}/data/out/settled.jsonl`);
    assert.deepEqual(out.map((r) => r.tx_id), settled.map((c) => Number(c[0])));
    assert.ok(out.every((r) => r.amount_cents === Math.round((r.amount as number) * 100)));
    assert.equal(readJsonl(`${dir}/data/out/rejected.jsonl`).length, lines.length - parsed.length);

    const totals = Deno.readTextFileSync(`${dir}/data/out/totals_by_user.csv`).trim().split("\n");
    const byUser = new Map<number, number>();
    for (const r of out) {
      byUser.set(
        r.user_id as number,
        (byUser.get(r.user_id as number) ?? 0) + (r.amount_cents as number),
      );
    }
    assert.equal(totals.length - 1, byUser.size);
    for (const line of totals.slice(1)) {
      const [user, , total] = line.split(",").map(Number);
      assert.equal(total, byUser.get(user));
    }
  });
});
