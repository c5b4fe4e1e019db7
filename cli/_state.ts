/**
 * Where a daemon keeps its state: `--state DIR` (the SQLite database `DIR/control.db`, the
 * token and the workspace), or `--state postgres://…`, a PostgreSQL database shared by
 * several control planes, one leading and the others standing by (`runtime/control`'s
 * `LeaderLease`); its token and workspace then live in the default state directory. This
 * module opens the lease, waits to lead and keeps the lease, so that `node.ts` only calls
 * it.
 */
import { defaultStateDir } from "../runtime/protocol/mod.ts";
import {
  describeDatabase,
  isPostgresUrl,
  LeaderLease,
  StandbyGate,
  StateStoreError,
} from "../runtime/control/mod.ts";
import { CliError, ExitCode, type Terminal } from "./_terminal.ts";
import { historyPath } from "./_history.ts";

/** The state directory (token, workspace) and the state database of `--state`. */
export interface StateStore {
  dir: string;
  /** A SQLite path or a `postgres://` connection string. */
  database: string;
  postgres: boolean;
}

export function stateStoreOf(state: string): StateStore {
  if (isPostgresUrl(state)) return { dir: defaultStateDir(), database: state, postgres: true };
  return { dir: state, database: historyPath(state), postgres: false };
}

/** A PostgreSQL state database's refusal as one line and exit 1. */
export function stateError(e: unknown): never {
  if (e instanceof StateStoreError) throw new CliError(e.message, ExitCode.failure);
  throw e;
}

/** What a control plane on a PostgreSQL state database holds while it runs. */
export interface Leadership {
  gate: StandbyGate;
  /** Waits until this process leads; false when `stop` came first. */
  lead(address: string): Promise<boolean>;
  /** Gives the lease up and disconnects. */
  close(): Promise<void>;
}

/**
 * Opens the lease of the state database at `url`: `lead` stands by (the gate refusing
 * calls with the leader's address) until the lease is free, takes it and renews it (the
 * control plane made then adopts the runs a former leader left running and places them
 * again, runtime/control/_recovery.ts); losing it ends the process with exit 1, since the
 * database refuses a deposed leader's writes from then on.
 */
export async function openLeadership(
  term: Terminal,
  url: string,
  leaseMs: number,
  stop: Promise<unknown>,
): Promise<Leadership> {
  const lease = await LeaderLease.open(url, leaseMs).catch(stateError);
  const gate = new StandbyGate();
  let leading = false;
  return {
    gate,
    lead: async (address) => {
      let told = "";
      const ok = await lease.waitForLeadership(address, stop, (leader) => {
        gate.standby(leader);
        const now = gate.refusal();
        if (now !== told) term.err(`heddle: ${now}\n`);
        told = now;
      });
      if (!ok) return false;
      leading = true;
      term.err(`heddle: leading the state database ${describeDatabase(url)}\n`);
      lease.startRenewing((reason) => {
        term.err(`heddle: ${reason}: stopping, this control plane no longer leads\n`);
        Deno.exit(ExitCode.failure);
      });
      return true;
    },
    close: async () => {
      if (leading) await lease.release();
      await lease.close();
    },
  };
}
