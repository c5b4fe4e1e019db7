/**
 * `faulty/steps`: a plugin that misbehaves on request, for the plugin host's fault tests. Step
 * `run` appends `ok: bool` to each row and, depending on its config, fails chosen rows, crashes
 * the process, hangs, or answers with a corrupt handle. It is served through the protocol
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
} from "../../../sdk/typescript/mod.ts";
import { ENV, servePlugin, untilStopped } from "../../../runtime/plugins/protocol/mod.ts";

const input = new Schema([new Field("n", new Int64(), true)]);
const added = new Schema([new Field("ok", new Bool(), true)]);

export const runStep = defineStep({
  name: "run",
  doc: "Appends `ok`; fails, crashes or hangs as its config says.",
  input: openRow(input),
  output: inputPlus(added),
  config: {
    fail_rows: { type: "list", doc: "Row indices that fail with a row error." },
    crash: { type: "bool", doc: "Exit the process in the middle of the invocation." },
    hang: { type: "bool", doc: "Never answer." },
    corrupt: { type: { enum: ["length", "segment"] }, doc: "Answer with a broken handle." },
  },
  async run(batch, config) {
    if (config.crash) Deno.exit(3);
    if (config.hang) await new Promise(() => {});
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

export const plugin = definePlugin({
  name: "faulty",
  entry: "main.ts",
  modules: { steps: [runStep] },
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
