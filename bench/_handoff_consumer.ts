/**
 * The TypeScript consumer process of the handoff benchmark: long-lived, so process start-up
 * is never measured. It serves the three transports at once: JSON rows POSTed over HTTP,
 * Heddle handles over a Unix socket (mapped zero-copy with the registry's `openHandle`), and
 * Arrow IPC bytes over the same socket. It answers with the checksum of every value it read,
 * never with anything it did not compute from the data it received.
 */
import { tableFromIPC } from "apache-arrow";
import { openHandle } from "../runtime/registry/mod.ts";
import { checksumRows, checksumTable, type TxRow } from "./_transactions.ts";
import { readFrame, writeAll } from "./_wire.ts";

const socketPath = Deno.args[0];
const encoder = new TextEncoder();

async function serveSocket(conn: Deno.Conn): Promise<void> {
  for (let frame = await readFrame(conn); frame; frame = await readFrame(conn)) {
    let reply: unknown;
    if (frame.kind === "A") {
      reply = checksumTable(tableFromIPC(frame.payload));
    } else {
      // A handle: map the segment; with `R`, also read every value before replying.
      using lease = openHandle(JSON.parse(new TextDecoder().decode(frame.payload)));
      reply = frame.kind === "R" ? checksumTable(lease.table) : { rows: lease.table.numRows };
    }
    await writeAll(conn, encoder.encode(JSON.stringify(reply) + "\n"));
  }
  conn.close();
}

const listener = Deno.listen({ transport: "unix", path: socketPath });
const http = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  async (req) => Response.json(checksumRows(await req.json() as TxRow[])),
);
console.log(JSON.stringify({ http: http.addr.port }));
for await (const conn of listener) serveSocket(conn);
