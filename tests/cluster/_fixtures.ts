/**
 * A data-plane node inside the test process: a registry of its own (its own segment prefix,
 * so several in one process never collide), a DataPlane and its Flight server on loopback,
 * all removed by `await using`.
 */
import { DataPlane, type FlightListening, serveFlight } from "../../runtime/dataplane/mod.ts";
import type { Credentials } from "../../runtime/protocol/mod.ts";
import { Registry } from "../../runtime/registry/mod.ts";

/** The token of this test process's data-plane nodes and clients (a server needs one). */
export const TEST_CREDENTIALS: Credentials = { token: crypto.randomUUID(), tls: null };

export interface FlightNode extends AsyncDisposable {
  registry: Registry;
  plane: DataPlane;
  server: FlightListening;
}

let serial = 0;

export async function flightNode(
  credentials: Credentials = TEST_CREDENTIALS,
): Promise<FlightNode> {
  const registry = new Registry({ prefix: `hdflight${Deno.pid}x${serial++}x` });
  const plane = new DataPlane(registry);
  const server = await serveFlight(plane, "127.0.0.1:0", credentials);
  return {
    registry,
    plane,
    server,
    async [Symbol.asyncDispose]() {
      await server.close();
      plane.close();
      registry.close();
    },
  };
}
