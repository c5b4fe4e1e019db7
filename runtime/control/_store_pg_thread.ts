/**
 * The thread behind `PgDatabase` (`_store_pg.ts`): it owns the PostgreSQL connection (npm
 * `pg`, the client the connector uses) and answers one statement at a time. The control
 * plane's thread posts a statement and waits on a shared flag with `Atomics.wait`; this
 * thread runs the statement on its own event loop, posts the answer on a `MessagePort`
 * the caller reads with `receiveMessageOnPort`, then raises the flag. So the store's
 * callers stay synchronous, as they are with SQLite, and pg's asynchronous client still
 * does the talking.
 */
/// <reference lib="deno.worker" />
import pg from "pg";
import type { MessagePort } from "node:worker_threads";
import { type Answer, CONNECT_TIMEOUT_MS, QUERY_TIMEOUT_MS, type Request } from "./_store_pg.ts";

let client: pg.Client | null = null;
/** How to connect again after the connection broke (the database restarted, a timeout). */
let connection: { url: string; holder: string } | null = null;
let port: MessagePort;
let flag: Int32Array;
let queue: Promise<void> = Promise.resolve();

function answer(a: Answer): void {
  port.postMessage(a);
  Atomics.add(flag, 0, 1);
  Atomics.notify(flag, 0);
}

function failure(e: unknown): Answer {
  const err = e as { message?: string; code?: string };
  return { ok: false, message: String(err?.message ?? e), code: String(err?.code ?? "") };
}

async function handle(request: Request): Promise<void> {
  try {
    if (request.kind === "open") {
      port = request.port;
      flag = new Int32Array(request.flag);
      connection = { url: request.url, holder: request.holder };
      await connect();
      return answer({ ok: true, rows: [], changes: 0 });
    }
    if (!client) await connect();
    const result = request.kind === "exec"
      ? await client.query(request.sql)
      : await client.query(request.sql, request.params);
    const last = Array.isArray(result) ? result.at(-1) : result;
    answer({ ok: true, rows: last?.rows ?? [], changes: last?.rowCount ?? 0 });
  } catch (e) {
    answer(failure(e));
  }
}

async function connect(): Promise<void> {
  if (!connection) throw new Error("the state database is not open");
  const c = new pg.Client({
    connectionString: connection.url,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    application_name: "heddle control plane",
  });
  // A connection that breaks fails the statement in flight; the next one connects again.
  const broken = () => {
    if (client === c) client = null;
    c.end().catch(() => {});
  };
  c.on("error", broken);
  c.on("end", broken);
  try {
    await c.connect();
    // The fence (`_store_pg.ts`) compares this with the lease's holder.
    await c.query("select set_config('heddle.holder', $1, false)", [connection.holder]);
  } catch (e) {
    broken();
    throw e;
  }
  client = c;
}

self.onmessage = (event: MessageEvent<Request>) => {
  queue = queue.then(() => handle(event.data));
};
