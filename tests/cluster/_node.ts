/**
 * A Heddle data-plane node as its own process, for the multi-host tests and the benchmark:
 * started inside a network namespace by tests/cluster/_netns.ts, it has its own registry in
 * its own /dev/shm and talks to other nodes only through Flight. One JSON line on stdout
 * per answer; stderr for anything else. Its server requires, and its client presents, the
 * token in HEDDLE_TOKEN.
 *
 *   _node.ts serve HOST TABLE.arrows CONSUMER...   put the file's table, publish it for the
 *                                                  consumers, serve Flight on HOST; prints
 *                                                  {address, ticket, segment}; then answers
 *                                                  each stdin line with the server's stats,
 *                                                  until stdin closes
 *   _node.ts pull ADDRESS TICKET CONSUMER OUT      DoGet into the local registry, release at
 *                                                  the producer, write the adopted stream to
 *                                                  OUT; prints {rows, segment, shm}
 *   _node.ts fetch ADDRESS TICKET ROUNDS [BYTES]   DoGet ROUNDS times (benchmark); BYTES is
 *                                                  the size the producer announced, as an
 *                                                  edge's `next` does; prints {bytes, seconds}
 */
import { RecordBatchReader, Table } from "apache-arrow";
import { DataPlane, FlightClient, serveFlight } from "../../runtime/dataplane/mod.ts";
import { Registry, SHM_DIR } from "../../runtime/registry/mod.ts";

const [mode, ...args] = Deno.args;
const credentials = { token: Deno.env.get("HEDDLE_TOKEN") ?? null, tls: null };
const say = (value: unknown) => console.log(JSON.stringify(value));
const shm = () => [...Deno.readDirSync(SHM_DIR)].map((e) => e.name).sort();

if (mode === "serve") {
  const [host, path, ...consumers] = args;
  const registry = new Registry();
  const plane = new DataPlane(registry);
  const table = new Table(RecordBatchReader.from(await Deno.readFile(path)).readAll());
  const handle = registry.put(table, consumers.length);
  plane.publish(handle, consumers);
  const server = await serveFlight(plane, `${host}:0`, credentials);
  say({
    address: server.address,
    ticket: handle.id,
    segment: handle.segment,
    bytes: handle.length,
  });
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  for await (const _ of lines) {
    say({ ...plane.stats(), objects: registry.stats().objects, shm: shm() });
  }
  await server.close();
  plane.close();
  registry.close();
} else if (mode === "pull") {
  const [address, ticket, consumer, out] = args;
  const registry = new Registry();
  const client = new FlightClient(address, credentials);
  const handle = await client.get(ticket, registry);
  await client.release(ticket, consumer);
  {
    using lease = registry.open(handle);
    await Deno.writeFile(out, lease.bytes);
  }
  say({ rows: handle.rows, segment: handle.segment, shm: shm(), received: client.stats() });
  client.close();
  registry.close();
} else if (mode === "fetch") {
  const [address, ticket, rounds, announced] = args;
  // As a cluster worker's: received streams are written into pooled segments.
  const registry = new Registry({ pool: true });
  const client = new FlightClient(address, credentials);
  const seconds: number[] = [];
  let bytes = 0;
  for (let i = 0; i < Number(rounds); i++) {
    const start = performance.now();
    const handle = await client.get(ticket, registry, {
      bytes: announced === undefined ? undefined : Number(announced),
    });
    seconds.push((performance.now() - start) / 1000);
    bytes = handle.length;
    registry.release(handle.id);
  }
  say({ bytes, seconds });
  client.close();
  registry.close();
} else {
  console.error(`unknown mode ${mode}`);
  Deno.exit(2);
}
