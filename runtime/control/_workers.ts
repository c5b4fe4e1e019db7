/**
 * The control plane's workers: who registered, how to reach them, and whether they are
 * alive. A remote worker re-registers every few seconds (its heartbeat); one not heard
 * from for `timeoutMs` is declared dead, its client closed, and the control plane told,
 * so that its runs are placed again. Registered workers are kept in the state database,
 * so a restarted control plane reconnects to them at once (they also re-register by
 * themselves). A worker attached in-process never times out.
 */
import type { WorkerApi, WorkerInfo } from "../protocol/mod.ts";
import { openDatabase, type Row, type StateDb } from "./_store.ts";

/** How long a worker may stay silent before it is declared dead, by default. */
export const DEFAULT_WORKER_TIMEOUT_MS = 10_000;
/** How often a cluster worker re-registers (its heartbeat). */
export const HEARTBEAT_MS = 2_000;

export interface WorkerEntry {
  info: WorkerInfo;
  api: WorkerApi;
  /** The gRPC client of a remote worker; null for one attached in-process. */
  client: { close(): void } | null;
  /** When it last registered (ms since the epoch). */
  lastSeen: number;
  /** Known from the state database only: it has not registered with this process yet. */
  restored: boolean;
}

export interface RosterOptions {
  /** The state database (`:memory:`: nothing kept). */
  database: string;
  connect?: (info: WorkerInfo) => WorkerApi & { close(): void };
  timeoutMs: number;
  /** Called once for each worker declared dead, after it left the roster. */
  onDead: (id: string, reason: string) => void;
  /** Called once for each worker that left by itself (`leave`), after it left the roster. */
  onLeft?: (id: string) => void;
}

const schema = `
create table if not exists workers (
  id text primary key, info_json text not null, registered_at text not null);
`;

export class WorkerRoster {
  #entries = new Map<string, WorkerEntry>();
  #db: StateDb | null;
  #options: RosterOptions;
  #timer: ReturnType<typeof setInterval>;

  constructor(options: RosterOptions) {
    this.#options = options;
    this.#db = options.database === ":memory:" ? null : openDatabase(options.database);
    if (this.#db?.dialect === "sqlite") this.#db.exec(schema);
    if (options.connect) {
      const rows = (this.#db?.prepare("select info_json from workers").all() ?? []) as Row[];
      for (const row of rows) {
        this.#connect(JSON.parse(String(row.info_json)) as WorkerInfo, true);
      }
    }
    this.#timer = setInterval(() => this.#sweep(), Math.min(1000, options.timeoutMs / 2));
    Deno.unrefTimer(this.#timer);
  }

  /** A worker reached in-process (`heddle run`) or through a client the caller owns. */
  attach(info: WorkerInfo, api: WorkerApi): void {
    this.#entries.set(info.id, { info, api, client: null, lastSeen: Infinity, restored: false });
  }

  /** A remote worker registers or heartbeats: connects once, then only notes the time. */
  register(info: WorkerInfo): void {
    const known = this.#entries.get(info.id);
    if (known?.client && JSON.stringify(known.info) === JSON.stringify(info)) {
      known.lastSeen = Date.now();
      known.restored = false;
      return;
    }
    this.#connect(info, false);
    this.#db?.prepare(
      "insert into workers (id, info_json, registered_at) values (?, ?, ?) " +
        "on conflict(id) do update set info_json = excluded.info_json, " +
        "registered_at = excluded.registered_at",
    ).run(info.id, JSON.stringify(info), new Date().toISOString());
  }

  get(id: string): WorkerEntry | undefined {
    return this.#entries.get(id);
  }

  /**
   * Whether worker `id` is live and has registered with this process (a worker only known
   * from the state database may have died while the control plane was away).
   */
  heard(id: string): boolean {
    const entry = this.#entries.get(id);
    return entry !== undefined && !entry.restored;
  }

  /** Live workers, in the order they registered. */
  list(): WorkerInfo[] {
    return [...this.#entries.values()].map((e) => e.info);
  }

  /**
   * The workers that registered with this process: what runs are placed on. A worker known
   * only from the state database may be gone (a `heddle local` restarted on the same state
   * finds its predecessor's worker there); a live one heartbeats within seconds.
   */
  registered(): WorkerInfo[] {
    return [...this.#entries.values()].filter((e) => !e.restored).map((e) => e.info);
  }

  /** Declares a remote worker dead now (its run's stream broke), as if it timed out. */
  lost(id: string, reason: string): void {
    const entry = this.#entries.get(id);
    if (!entry?.client) return;
    this.#remove(id, entry);
    this.#options.onDead(id, reason);
  }

  /**
   * A remote worker is stopping: it is forgotten at once and its client closed, before its
   * servers go away (a server's GOAWAY on a live client can crash Deno's node:http2, see
   * `ControlPlane.disconnect`). False when it was not known.
   */
  leave(id: string): boolean {
    const entry = this.#entries.get(id);
    if (!entry?.client) return false;
    this.#remove(id, entry);
    this.#options.onLeft?.(id);
    return true;
  }

  /** Closes every client (before the node's servers stop: see `ControlPlane.disconnect`). */
  disconnect(): void {
    clearInterval(this.#timer);
    for (const entry of this.#entries.values()) entry.client?.close();
    this.#entries.clear();
  }

  close(): void {
    this.disconnect();
    this.#db?.close();
  }

  #connect(info: WorkerInfo, restored: boolean): void {
    const client = this.#options.connect!(info);
    this.#entries.get(info.id)?.client?.close();
    this.#entries.set(info.id, { info, api: client, client, lastSeen: Date.now(), restored });
  }

  #remove(id: string, entry: WorkerEntry): void {
    this.#entries.delete(id);
    entry.client?.close();
    this.#db?.prepare("delete from workers where id = ?").run(id);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, entry] of [...this.#entries]) {
      if (entry.client && now - entry.lastSeen > this.#options.timeoutMs) {
        this.#remove(id, entry);
        this.#options.onDead(
          id,
          `worker ${id} (${entry.info.address}) sent no heartbeat for ` +
            `${Math.round((now - entry.lastSeen) / 1000)} s (--worker-timeout)`,
        );
      }
    }
  }
}
