/**
 * How a client (`heddle workflow … --server A,B`, `heddle inspect --plan --server`) reaches
 * the control plane that leads. Several control planes on one PostgreSQL state database
 * take turns leading (docs/cluster.md, "State in PostgreSQL"); a standby refuses every call
 * with `not-leader`, naming the leader. So a call refused by a standby goes to the leader
 * it names, and a call to an address that cannot be reached goes to the next address, as a
 * worker's `--join A,B` heartbeat does (`_join.ts`). When nobody leads, one line names
 * every address tried and why.
 */
import {
  connectControlPlane,
  type ControlApi,
  ControlError,
  type Credentials,
} from "../runtime/protocol/mod.ts";

type Client = ControlApi & { close(): void };

/**
 * Calls that change state: after an `unavailable` that may have reached the leader (its
 * answer was lost, not its connection refused) they are not sent again elsewhere, where a
 * new leader could run them a second time (a second run of a `start`).
 */
const CHANGES = new Set(["deploy", "startRun", "stopRun", "setSchedule", "deleteSchedule"]);

/** The address a standby's refusal names (`_lease_gate.ts`), or null when nobody leads. */
function namedLeader(message: string): string | null {
  return /the leader is at (\S+)$/.exec(message)?.[1] ?? null;
}

/** Whether `error` from `address` lets the call go on to another control plane. */
function movesOn(error: unknown, method: string): error is ControlError {
  if (!(error instanceof ControlError)) return false;
  if (error.code === "not-leader") return true;
  if (error.code !== "unavailable") return false;
  // grpc-js says so when the call never reached a server.
  return !CHANGES.has(method) || error.message.includes("No connection established");
}

/** The addresses of `--server`: one, or several separated by commas. */
export function serverAddresses(server: string): string[] {
  return server.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/**
 * A `ControlApi` on the control planes at `addresses` (tried in order, the last one that
 * answered first): each call goes to the one that leads.
 */
export function connectLeader(addresses: string[], credentials: Credentials): Client {
  const clients = new Map<string, Client>();
  const client = (address: string) => {
    let c = clients.get(address);
    if (!c) clients.set(address, c = connectControlPlane(address, credentials));
    return c;
  };
  let current = addresses[0];
  const invoke = async (method: keyof ControlApi, args: unknown[]) => {
    const queue = [current, ...addresses.filter((a) => a !== current)];
    const tried: { address: string; error: ControlError }[] = [];
    while (queue.length > 0) {
      const address = queue.shift()!;
      if (tried.some((t) => t.address === address)) continue;
      try {
        const api = client(address) as unknown as Record<string, (...a: unknown[]) => unknown>;
        const value = await api[method](...args);
        current = address;
        return value;
      } catch (e) {
        if (!movesOn(e, method)) throw e;
        tried.push({ address, error: e });
        const leader = e.code === "not-leader" ? namedLeader(e.message) : null;
        if (leader) queue.unshift(leader);
      }
    }
    if (tried.length === 1) throw tried[0].error;
    const reasons = tried.map((t) => `${t.address}: ${t.error.message.replace(/\s+/g, " ")}`);
    throw new ControlError(
      `no control plane that leads answered (tried ${reasons.join("; ")})`,
      tried.every((t) => t.error.code === "unavailable") ? "unavailable" : "not-leader",
    );
  };
  return new Proxy({} as Client, {
    get: (_, name: string) => {
      if (name === "then") return undefined; // not a promise
      if (name === "close") return () => clients.forEach((c) => c.close());
      return (...args: unknown[]) => invoke(name as keyof ControlApi, args);
    },
  });
}
