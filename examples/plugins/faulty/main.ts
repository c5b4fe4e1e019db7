/**
 * `faulty/steps`: a plugin that misbehaves on request, for the plugin host's fault tests. Step
 * `run` appends `ok: bool` to each row and, depending on its config, fails chosen rows, crashes
 * the process, hangs, or answers with a corrupt handle. Step `double` appends `doubled = 2n`
 * and fails or throws on chosen values of `n`: chained after `run`, it shows which row of the
 * original input a later step's error refers to. It is served through the protocol
 * layer directly (not `serve`) so that it can lie about its output as a broken plugin in
 * another language might. It must never be used outside tests.
 */

import { Bool, Field, Int64, RecordBatch, Schema, vectorFromArray } from "apache-arrow";
import {
  definePlugin,
  defineStep,
  inputPlus,
  invokeStep,
  manifestOf,
  openRow,
  type RowError,
} from "@heddle/sdk";
import { ENV, servePlugin, untilStopped } from "../../../runtime/plugins/protocol/mod.ts";

const input = new Schema([new Field("n", new Int64(), true)]);
const added = new Schema([new Field("ok", new Bool(), true)]);
const doubled = new Schema([new Field("doubled", new Int64(), true)]);

export const runStep = defineStep({
  name: "run",
  doc: "Appends `ok`; fails, crashes, hangs or dawdles as its config says.",
  input: openRow(input),
  output: inputPlus(added),
  config: {
    fail_rows: { type: "list", doc: "Row indices that fail with a row error." },
    crash: { type: "bool", doc: "Exit the process in the middle of the invocation." },
    hang: { type: "bool", doc: "Never answer." },
    sleep_ms: { type: "int", doc: "Wait this long before answering each batch (a slow step)." },
    wait_for: {
      type: "string",
      doc: "Wait until this file exists before answering each batch (a step its test holds).",
    },
    corrupt: { type: { enum: ["length", "segment"] }, doc: "Answer with a broken handle." },
  },
  async run(batch, config) {
    if (config.crash) Deno.exit(3);
    if (config.hang) await new Promise(() => {});
    const sleep = Number(config.sleep_ms ?? 0);
    if (sleep > 0) await new Promise((resolve) => setTimeout(resolve, sleep));
    while (config.wait_for && !(await exists(String(config.wait_for)))) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const failRows = new Set((config.fail_rows as number[] | undefined) ?? []);
    const errors: RowError[] = [...failRows].map((row) => ({
      row,
      message: `row ${row} fails on purpose`,
    }));
    const ok = vectorFromArray(
      Array.from({ length: batch.numRows }, (_, i) => !failRows.has(i)),
      new Bool(),
    );
    return { batch: new RecordBatch({ ok: ok.data[0] }), errors };
  },
});

export const doubleStep = defineStep({
  name: "double",
  doc: "Appends `doubled = 2n`; rejects rows whose `n` is in `fail_n`, throws on `throw_n`.",
  input: openRow(input),
  output: inputPlus(doubled),
  config: {
    fail_n: { type: "list", doc: "Values of `n` whose rows fail with a row error." },
    throw_n: { type: "list", doc: "Values of `n` that make the whole batch throw." },
  },
  run(batch, config) {
    const values = [...batch.getChild("n")!].map((v) => v === null ? null : Number(v));
    const failN = new Set((config.fail_n as number[] | undefined) ?? []);
    const throwN = new Set((config.throw_n as number[] | undefined) ?? []);
    const thrown = values.find((v) => v !== null && throwN.has(v));
    if (thrown !== undefined) throw new Error(`n = ${thrown} throws on purpose`);
    const errors: RowError[] = values.flatMap((v, row) =>
      v !== null && failN.has(v) ? [{ row, message: `n = ${v} fails on purpose` }] : []
    );
    const out = vectorFromArray(values.map((v) => v === null ? null : BigInt(v * 2)), new Int64());
    return { batch: new RecordBatch({ doubled: out.data[0] }), errors };
  },
});

/** Whether `path` exists. */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

export const plugin = definePlugin({
  name: "faulty",
  entry: "main.ts",
  modules: { steps: [runStep, doubleStep] },
});

if (import.meta.main) {
  const manifestJson = JSON.stringify(manifestOf(plugin));
  const server = await servePlugin(Deno.env.get(ENV.socket)!, {
    describe: () => ({ manifestJson, sdk: "faulty" }),
    health: () => ({ status: "SERVING", pid: Deno.pid }),
    async invoke(request) {
      const response = await invokeStep(plugin, request);
      const corrupt = JSON.parse(request.configJson).corrupt;
      if (response.result !== "ok" || !response.ok.output || !corrupt) return response;
      const output = corrupt === "length"
        ? { ...response.ok.output, length: response.ok.output.length + 4096 }
        : { ...response.ok.output, segment: `${response.ok.output.segment}-elsewhere` };
      return { result: "ok", ok: { ...response.ok, output } };
    },
  });
  await untilStopped();
  server.forceShutdown();
  Deno.exit(0);
}
