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
    if (frame.kind === "A" || frame.kind === "B") {
      const table = tableFromIPC(frame.payload);
      reply = frame.kind === "A" ? checksumTable(table) : { rows: table.numRows };
    } else {
      // A handle: map the segment; with `R`, also read every value before replying.
      // Timed here too, so the report can split the round trip into map and read.
      const t0 = performance.now();
      using lease = openHandle(JSON.parse(new TextDecoder().decode(frame.payload)));
      const t1 = performance.now();
      const sum = frame.kind === "R" ? checksumTable(lease.table) : { rows: lease.table.numRows };
      reply = { ...sum, mapMs: t1 - t0, readMs: performance.now() - t1 };
    }
    await writeAll(conn, encoder.encode(JSON.stringify(reply) + "\n"));
  }
  conn.close();
}

const listener = Deno.listen({ transport: "unix", path: socketPath });
const http = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  async (req) => {
    const rows = await req.json() as TxRow[];
    const read = new URL(req.url).searchParams.get("read") === "1";
    return Response.json(read ? checksumRows(rows) : { rows: rows.length });
  },
);
console.log(JSON.stringify({ http: http.addr.port }));
for await (const conn of listener) serveSocket(conn);
