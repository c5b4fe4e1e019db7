/**
 * The TypeScript consumer process of the handoff benchmark: long-lived, so process start-up
 * is never measured. It serves the three transports at once: JSON rows POSTed over HTTP,
 * Heddle handles over a Unix socket (mapped zero-copy with the registry's `openHandle`), and
 * Arrow IPC bytes over the same socket. It answers with the checksum of every value it read,
 * never with anything it did not compute from the data it received. After each reply it
 * collects its garbage (the producer starts it with `--expose-gc`), so that freeing one
 * measurement's buffers (a 1 GB socket payload) is never charged to the next measurement.
 */
import { tableFromIPC } from "apache-arrow";
import { openHandle } from "../runtime/registry/mod.ts";
import { checksumRows, checksumTable, type TxRow } from "./_transactions.ts";
import { readFrame, writeAll } from "./_wire.ts";

const socketPath = Deno.args[0];
const encoder = new TextEncoder();
const collectGarbage = (globalThis as { gc?: () => void }).gc ?? (() => {});

/** Maps a handle (and with `R` reads every value), timing each part inside this process. */
function serveHandle(kind: "M" | "R", payload: Uint8Array): Record<string, unknown> {
  const handle = JSON.parse(new TextDecoder().decode(payload));
  const t0 = performance.now(); // the handle has arrived: the transport's decoding is done
  const lease = openHandle(handle);
  const t1 = performance.now();
  let sum;
  try {
    sum = kind === "R" ? checksumTable(lease.table) : { rows: lease.table.numRows };
  } finally {
    lease.release();
  }
  return { ...sum, mapMs: t1 - t0, readMs: performance.now() - t1 };
}

async function serveSocket(conn: Deno.Conn): Promise<void> {
  for (let frame = await readFrame(conn); frame; frame = await readFrame(conn)) {
    const t0 = performance.now();
    let reply: Record<string, unknown>;
    if (frame.kind === "A" || frame.kind === "B") {
      const table = tableFromIPC(frame.payload);
      reply = frame.kind === "A" ? { ...checksumTable(table) } : { rows: table.numRows };
    } else {
      reply = serveHandle(frame.kind, frame.payload);
    }
    // Everything from the frame's arrival to the reply, lease release included.
    reply.serveMs = performance.now() - t0;
    await writeAll(conn, encoder.encode(JSON.stringify(reply) + "\n"));
    frame = null;
    collectGarbage();
  }
  conn.close();
}

const listener = Deno.listen({ transport: "unix", path: socketPath });
const http = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  async (req) => {
    const rows = await req.json() as TxRow[];
    const read = new URL(req.url).searchParams.get("read") === "1";
    const reply = Response.json(read ? checksumRows(rows) : { rows: rows.length });
    setTimeout(collectGarbage, 0);
    return reply;
  },
);
console.log(JSON.stringify({ http: http.addr.port }));
for await (const conn of listener) serveSocket(conn);
