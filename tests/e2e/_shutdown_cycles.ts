/**
 * For shutdown.test.ts: runs a node's whole life `cycles` times in one process, the way
 * `heddle local` does (cli/commands/node.ts, `runNode`): a control plane that reaches its
 * worker through gRPC, one run of a TypeScript plugin step, then the shutdown in runNode's
 * order (drain the worker, close the control plane's clients, stop the servers, close
 * SQLite). Before issue 16's fix the servers' GOAWAY reached the control plane's live client
 * session and could kill the process in nghttp2 (exit 134 or 139); it is a race, so only
 * many cycles make it likely (measured: one crash in six runs of ten cycles). Prints
 * `cycle <n> <wal bytes>`.
 *
 * Usage: deno run -A _shutdown_cycles.ts <dir> <cycles>
 */
import { ControlPlane } from "../../runtime/control/mod.ts";
import { Worker } from "../../runtime/worker/mod.ts";
import { connectWorker, serveControlPlane, serveWorker } from "../../runtime/protocol/mod.ts";

const [dir, cycles] = Deno.args;
const credentials = { token: crypto.randomUUID(), tls: null };
const plugins = new URL("../../examples/plugins", import.meta.url).pathname;
Deno.writeTextFileSync(`${dir}/numbers.csv`, "n\n1\n2\n3\n");
const source = [
  'import "fhub/file" file',
  'import "faulty/steps" faulty',
  "workflow Numbers {",
  '  file.read { path: "numbers.csv", format: "csv" } : { n: int64 }',
  "  | faulty.run { fail_rows: [] }",
  '  | file.write { path: "out.jsonl", format: "jsonl" }',
  "}",
  "",
].join("\n");

for (let cycle = 1; cycle <= Number(cycles); cycle++) {
  const database = `${dir}/control-${cycle}.db`;
  const control = new ControlPlane({
    database,
    connect: (info) => connectWorker(info.address, credentials),
    heddlePath: plugins,
  });
  const worker = new Worker({ id: `w${cycle}`, heddlePath: plugins });
  const servers = [await serveControlPlane(control, "127.0.0.1:0", credentials)];
  servers.push(await serveWorker(worker, "127.0.0.1:0", credentials));
  await control.registerWorker({ id: worker.id, address: servers[1].address, host: "here" });
  const deployed = await control.deploy({ file: `${dir}/numbers.he`, source, overrides: [] });
  if (!deployed.ok) throw new Error(JSON.stringify(deployed.diagnostics));
  // Several runs: the crash needed closed streams on the session, one per run.
  for (let n = 0; n < 2; n++) {
    const done = await control.watch((await control.startRun("Numbers")).id, () => {});
    if (done.status !== "succeeded") throw new Error(`run ${done.status}`);
  }
  // A daemon sits idle before it is stopped; the crash needed an idle session.
  await new Promise((resolve) => setTimeout(resolve, 300));
  // runNode's order.
  await worker.close();
  control.disconnect();
  for (const server of servers) await server.close();
  control.close();
  let wal = 0;
  try {
    wal = Deno.statSync(`${database}-wal`).size;
  } catch {
    // No WAL file: merged and removed, as SQLite does on the last clean close.
  }
  console.log(`cycle ${cycle} ${wal}`);
}
