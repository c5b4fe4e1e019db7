/**
 * How a cluster worker stays registered: it registers with its control plane and again
 * every `HEARTBEAT_MS` (its heartbeat, which also makes a restarted control plane know it
 * again). Given several control planes on one PostgreSQL state database (`--join A,B`),
 * it registers with the one that leads: a call refused by a standby, or by a control plane
 * that is gone, moves it on to the next address at once.
 */
import { HEARTBEAT_MS } from "../runtime/control/mod.ts";
import {
  connectControlPlane,
  type ControlApi,
  type Credentials,
  type WorkerInfo,
} from "../runtime/protocol/mod.ts";
import { CliError } from "./_terminal.ts";

/** A worker's link to its control planes: `leader()` is the one that took the last heartbeat. */
export interface Joined {
  /**
   * The worker is stopping: heartbeats end, and the control plane that leads is told, so
   * that it closes its client to this worker before the worker's servers close (a server's
   * GOAWAY on the control plane's live client can crash it: docs/cluster.md, "Failures").
   * Waits for its answer at most `LEAVE_ANSWER_MS`; a control plane that is gone does not
   * hold the worker's shutdown. The worker's own clients stay open: closing one sends the
   * control plane's server a GOAWAY, which can crash it the same way, whereas the worker
   * process's exit drops the connections without one.
   */
  leave(): Promise<void>;
  /**
   * Closes the worker's clients. Only for a worker whose process also serves the control
   * plane (`heddle local`): there the servers close next, and a server's GOAWAY on a
   * client of its own process can crash it.
   */
  close(): void;
  leader(): ControlApi;
}

/** How long a stopping worker waits for its control plane to take its leave. */
const LEAVE_ANSWER_MS = 5_000;

/** Registers `info` with whichever of `addresses` accepts it. */
export async function joinControlPlane(
  addresses: string[],
  info: WorkerInfo,
  credentials: Credentials,
): Promise<Joined> {
  const clients = new Map<string, ReturnType<typeof connectControlPlane>>();
  const client = (address: string) => {
    let c = clients.get(address);
    if (!c) clients.set(address, c = connectControlPlane(address, credentials));
    return c;
  };
  let current = 0;
  /** Tries the address that took the last heartbeat first, then each other in turn. */
  const register = async () => {
    const refusals: string[] = [];
    for (let i = 0; i < addresses.length; i++) {
      const at = (current + i) % addresses.length;
      try {
        await client(addresses[at]).registerWorker(info);
        current = at;
        return;
      } catch (e) {
        refusals.push(`${addresses[at]}: ${(e as Error).message}`);
      }
    }
    throw new Error(refusals.join("; "));
  };
  try {
    await register();
  } catch (e) {
    const which = addresses.length === 1 ? `the control plane at` : "any control plane of";
    throw new CliError(
      `cannot register with ${which} ${
        addresses.length === 1 ? addresses[0] : addresses.join(", ")
      }: ${
        addresses.length === 1
          ? (e as Error).message.replace(`${addresses[0]}: `, "")
          : (e as Error).message
      }`,
    );
  }
  // A control plane away for a while is tried again the next time.
  let beating = false;
  const timer = setInterval(() => {
    if (beating) return;
    beating = true;
    register().catch(() => {}).finally(() => beating = false);
  }, HEARTBEAT_MS);
  return {
    leave: async () => {
      clearInterval(timer);
      let late: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        client(addresses[current]).leaveWorker(info.id).catch(() => false),
        new Promise((resolve) => late = setTimeout(resolve, LEAVE_ANSWER_MS)),
      ]);
      clearTimeout(late);
    },
    close: () => clients.forEach((c) => c.close()),
    leader: () => client(addresses[current]),
  };
}
