/**
 * The leader lease of a PostgreSQL state database: several control planes may be started
 * on one database, one leads and the others stand by, and a standby takes over when the
 * leader stops renewing. The lease is a row (`heddle_leader`) with a holder and an expiry
 * in the database's clock, renewed by the leader every third of its length on a
 * connection of its own. A row survives what an advisory lock does not: a leader killed
 * with -9 or cut off by a partition keeps a session lock until the server notices the
 * connection is dead (TCP keepalive, minutes), while its row simply expires. The same row
 * fences writes (`_store_pg.ts`): once it names another holder or has expired, a deposed
 * leader's statements are refused, however late they arrive.
 */
import type pg from "pg";
import {
  CONNECT_TIMEOUT_MS,
  describeDatabase,
  openPostgres,
  pgReason,
  STATE_HOLDER,
  StateStoreError,
} from "./_store_pg.ts";
import type { StateDb } from "./_store.ts";

/** How long a lease lasts without renewal, by default (`--leader-lease`). */
export const DEFAULT_LEASE_MS = 10_000;

/** Who leads now, as a standby sees it. */
export interface Leader {
  holder: string;
  /** The leader's control-plane address. */
  address: string;
  /** Milliseconds until its lease expires (negative: expired). */
  remainingMs: number;
}

export class LeaderLease {
  #client: pg.Client;
  /** The stores' connection, opened first: it makes the tables, the lease's among them. */
  #tables: StateDb;
  #where: string;
  #leaseMs: number;
  #address = "";
  #renewer: ReturnType<typeof setInterval> | null = null;
  /** When the last renewal succeeded (this process's clock). */
  #renewedAt = 0;
  #closed = false;

  private constructor(client: pg.Client, tables: StateDb, where: string, leaseMs: number) {
    this.#client = client;
    this.#tables = tables;
    this.#where = where;
    this.#leaseMs = leaseMs;
  }

  /**
   * Connects to the state database at `url`, making its tables if needed. Throws
   * `StateStoreError` naming the database, never its password.
   */
  static async open(url: string, leaseMs = DEFAULT_LEASE_MS): Promise<LeaderLease> {
    const where = describeDatabase(url);
    const tables = openPostgres(url);
    // Imported here: a process without a PostgreSQL state never pays for loading `pg`.
    const { default: { Client } } = await import("pg");
    const client = new Client({
      connectionString: url,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: Math.max(1000, Math.floor(leaseMs / 3)),
      application_name: "heddle leader lease",
    });
    client.on("error", () => {});
    try {
      await client.connect();
    } catch (e) {
      await client.end().catch(() => {});
      tables.close();
      throw new StateStoreError(
        `cannot use the state database ${where}: ${pgReason(String((e as Error).message))}`,
        String((e as { code?: string }).code ?? ""),
      );
    }
    return new LeaderLease(client, tables, where, leaseMs);
  }

  /** This process's holder id (the fence's subject). */
  get holder(): string {
    return STATE_HOLDER;
  }

  /** Takes the lease if it is free or expired; true when this process now leads. */
  async tryAcquire(address: string): Promise<boolean> {
    this.#address = address;
    const { rows } = await this.#client.query(
      "insert into heddle_leader (id, holder, address, epoch, expires_at) " +
        "values (1, $1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond') " +
        "on conflict (id) do update set holder = excluded.holder, address = excluded.address, " +
        "epoch = heddle_leader.epoch + 1, expires_at = excluded.expires_at " +
        "where heddle_leader.expires_at < clock_timestamp() " +
        "or heddle_leader.holder = excluded.holder returning epoch",
      [STATE_HOLDER, address, this.#leaseMs],
    );
    if (rows.length === 0) return false;
    this.#renewedAt = Date.now();
    return true;
  }

  /** The current leader, or null when nobody ever led. */
  async leader(): Promise<Leader | null> {
    const { rows } = await this.#client.query(
      "select holder, address, " +
        "extract(epoch from (expires_at - clock_timestamp())) * 1000 as remaining " +
        "from heddle_leader where id = 1",
    );
    const row = rows[0];
    return row
      ? { holder: row.holder, address: row.address, remainingMs: Number(row.remaining) }
      : null;
  }

  /**
   * Waits until this process leads, trying every third of the lease; `standby` is told who
   * leads meanwhile. Ends early (false) when `stop` settles first.
   */
  async waitForLeadership(
    address: string,
    stop: Promise<unknown>,
    standby: (leader: Leader | null) => void,
  ): Promise<boolean> {
    let stopped = false;
    stop.then(() => stopped = true);
    while (!stopped) {
      try {
        if (await this.tryAcquire(address)) return true;
        standby(await this.leader());
      } catch {
        standby(null); // the database is away: try again at the next turn
      }
      await Promise.race([stop, new Promise((r) => setTimeout(r, this.#leaseMs / 3))]);
    }
    return false;
  }

  /**
   * Renews the lease every third of its length. `lost` is called once, with the reason,
   * when another holder took it or no renewal succeeded for a whole lease: from then on
   * the fence refuses this process's writes, and it must stop acting as the leader.
   */
  startRenewing(lost: (reason: string) => void): void {
    let renewing = false;
    this.#renewer = setInterval(async () => {
      if (renewing || this.#closed) return;
      renewing = true;
      try {
        const { rows } = await this.#client.query(
          "update heddle_leader set expires_at = clock_timestamp() + $2 * interval " +
            "'1 millisecond' where id = 1 and holder = $1 returning epoch",
          [STATE_HOLDER, this.#leaseMs],
        );
        if (rows.length === 1) {
          this.#renewedAt = Date.now();
        } else {
          const now = await this.leader().catch(() => null);
          this.#stop();
          lost(
            `another control plane${now ? ` (${now.address})` : ""} took the leader lease of ` +
              `the state database ${this.#where}`,
          );
        }
      } catch (e) {
        if (Date.now() - this.#renewedAt >= this.#leaseMs) {
          this.#stop();
          lost(
            `the leader lease of the state database ${this.#where} could not be renewed for ` +
              `${this.#leaseMs / 1000} s: ${pgReason(String((e as Error).message))}`,
          );
        }
      } finally {
        renewing = false;
      }
    }, this.#leaseMs / 3);
  }

  /** Gives the lease up (a leader stopping), so that a standby takes over at once. */
  async release(): Promise<void> {
    this.#stop();
    await this.#client.query(
      "update heddle_leader set expires_at = clock_timestamp() where id = 1 and holder = $1",
      [STATE_HOLDER],
    ).catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop();
    await this.#client.end().catch(() => {});
    this.#tables.close();
  }

  #stop(): void {
    if (this.#renewer !== null) clearInterval(this.#renewer);
    this.#renewer = null;
  }
}
