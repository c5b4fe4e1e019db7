/**
 * For shutdown.test.ts: one node's whole life in this process, the way `heddle local` lives
 * (cli/commands/node.ts, `runNode`): a control plane that reaches its worker through gRPC,
 * runs of a TypeScript plugin step, a moment idle, then the shutdown in runNode's order
 * (drain the worker, close the control plane's clients, stop the servers, close SQLite) and
 * `Deno.exit`, as cli/main.ts ends. Before issue 16's fix the servers' GOAWAY reached the
 * control plane's live client session and, as the process ended, could crash it in nghttp2
 * (exit 134 or 139). Prints the WAL's size after the database closed.
 *
 * Usage: deno run -A _shutdown_cycles.ts <dir> [old]   ("old": the order before the fix)
 */
import { ControlPlane } from "../../runtime/control/mod.ts";
import { Worker } from "../../runtime/worker/mod.ts";
import { connectWorker, serveControlPlane, serveWorker } from "../../runtime/protocol/mod.ts";

const [dir, order] = Deno.args;
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

const database = `${dir}/control.db`;
const control = new ControlPlane({
  database,
  connect: (info) => connectWorker(info.address, credentials),
  heddlePath: plugins,
});
const worker = new Worker({ id: "w", heddlePath: plugins });
const servers = [await serveControlPlane(control, "127.0.0.1:0", credentials)];
servers.push(await serveWorker(worker, "127.0.0.1:0", credentials));
await control.registerWorker({ id: worker.id, address: servers[1].address, host: "here" });
const deployed = await control.deploy({ file: `${dir}/numbers.he`, source, overrides: [] });
if (!deployed.ok) throw new Error(JSON.stringify(deployed.diagnostics));
for (let n = 0; n < 2; n++) {
  const done = await control.watch((await control.startRun("Numbers")).id, () => {});
  if (done.status !== "succeeded") throw new Error(`run ${done.status}`);
}
// A daemon sits idle before it is stopped.
await new Promise((resolve) => setTimeout(resolve, 300));
await worker.close();
if (order !== "old") control.disconnect();
for (const server of servers) await server.close();
control.close();
let wal = 0;
try {
  wal = Deno.statSync(`${database}-wal`).size;
} catch {
  // No WAL file: merged and removed, as SQLite does on the last clean close.
}
console.log(`wal ${wal}`);
Deno.exit(0);
