/**
 * The Arrow Flight data plane on loopback: Heddle to Heddle, Heddle to and from the reference
 * implementation (pyarrow.flight, which also judges table equality), peers that send bad
 * bytes, consumer counts across hosts and back-pressure on an edge. The same code crosses
 * network namespaces in tests/cluster/netns.test.ts.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { RecordBatchReader, Table, tableFromArrays } from "apache-arrow";
import { DataPlaneError, FlightClient } from "../../runtime/dataplane/mod.ts";
import { Registry, SHM_DIR } from "../../runtime/registry/mod.ts";
import { CHANNEL_OPTIONS, flightService } from "../../runtime/dataplane/_service.ts";
import { flightNode, TEST_CREDENTIALS } from "./_fixtures.ts";

const peer = new URL("./_flight_peer.py", import.meta.url).pathname;

async function python(...args: string[]): Promise<string> {
  const output = await new Deno.Command("python3", {
    args: [peer, ...args],
    env: { HEDDLE_TOKEN: TEST_CREDENTIALS.token! },
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `python3 ${args[0]} failed: ${stderr}`);
  return new TextDecoder().decode(output.stdout);
}

/** The interop table written by pyarrow (many types, nulls, a dictionary, two batches). */
async function interopTable(dir: string, rows = 1000): Promise<{ path: string; table: Table }> {
  const path = `${dir}/expected.arrows`;
  await python("write", path, String(rows));
  const table = new Table(RecordBatchReader.from(await Deno.readFile(path)).readAll());
  return { path, table };
}

function segmentsOf(registry: Registry): string[] {
  return [...Deno.readDirSync(SHM_DIR)].map((e) => e.name).filter((n) =>
    n.startsWith(`${registry.prefix}-`)
  );
}

Deno.test("a Heddle consumer pulls a published object and frees it at the producer by releasing", async () => {
  const dir = await Deno.makeTempDir();
  await using producer = await flightNode();
  await using consumer = await flightNode();
  const { path, table } = await interopTable(dir);
  const handle = producer.registry.put(table, 1);
  producer.plane.publish(handle, ["b"]);
  const client = new FlightClient(producer.server.address, TEST_CREDENTIALS);
  try {
    const adopted = await client.get(handle.id, consumer.registry);
    assert.equal(adopted.rows, 1000);
    assert.equal(adopted.schemaFingerprint, handle.schemaFingerprint);
    // Fetched but not yet acknowledged: the producer still holds it.
    assert.equal(producer.registry.state(handle.id), "resident");
    await client.release(handle.id, "b");
    assert.equal(producer.registry.state(handle.id), "freed");
    using lease = consumer.registry.open(adopted);
    await Deno.writeFile(`${dir}/got.arrows`, lease.bytes);
    await python("compare", path, `${dir}/got.arrows`);
    assert.equal(client.stats().objects, 1);
    assert.ok(producer.plane.stats().bytesSent >= handle.length - 64);
  } finally {
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pyarrow.flight.FlightClient.do_get against a Heddle worker gets the exact table", async () => {
  const dir = await Deno.makeTempDir();
  await using producer = await flightNode();
  try {
    const { path, table } = await interopTable(dir, 5000);
    const handle = producer.registry.put(table, 1);
    producer.plane.publish(handle, ["pyarrow"]);
    const port = producer.server.address.split(":").at(-1);
    const result = JSON.parse(
      await python("get", `grpc://127.0.0.1:${port}`, handle.id, path),
    );
    assert.equal(result.rows, 5000);
    assert.deepEqual(result.actions, ["next", "release"]);
    // pyarrow's release action freed the object.
    assert.equal(producer.registry.state(handle.id), "freed");
    assert.equal(producer.plane.stats().published, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a Heddle client reads a stream served by pyarrow.flight.FlightServerBase", async () => {
  const dir = await Deno.makeTempDir();
  const registry = new Registry({ prefix: `hdflightpy${Deno.pid}x` });
  await python("write", `${dir}/served.arrows`, "3000");
  const server = new Deno.Command("python3", {
    args: [peer, "serve", `${dir}/served.arrows`],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = server.stdin.getWriter();
  try {
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const port = (await reader.read()).value?.trim();
    reader.releaseLock();
    const client = new FlightClient(`127.0.0.1:${port}`, TEST_CREDENTIALS);
    try {
      const handle = await client.get("anything", registry);
      assert.equal(handle.rows, 3000);
      using lease = registry.open(handle);
      await Deno.writeFile(`${dir}/got.arrows`, lease.bytes);
      await python("compare", `${dir}/served.arrows`, `${dir}/got.arrows`);
    } finally {
      client.close();
    }
  } finally {
    await writer.close();
    await server.status;
    registry.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A Flight server that answers DoGet with `messages` (a peer sending bad bytes). */
async function badPeer(
  messages: { dataHeader: Uint8Array; dataBody: Uint8Array }[],
): Promise<{ address: string; close(): void }> {
  const server = new grpc.Server(CHANNEL_OPTIONS);
  server.addService(flightService(), {
    DoGet: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      for (const m of messages) call.write({ ...m, appMetadata: new Uint8Array(0) });
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  return { address: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
}

/** The flatbuffer metadata and body of each message of a real stream. */
async function realMessages(): Promise<{ dataHeader: Uint8Array; dataBody: Uint8Array }[]> {
  await using producer = await flightNode();
  const handle = producer.registry.put(tableFromArrays({ x: Int32Array.from([1, 2, 3, 4]) }), 1);
  producer.plane.publish(handle, ["c"]);
  const { splitStream } = await import("../../runtime/dataplane/_stream.ts");
  using lease = producer.registry.open(handle);
  return splitStream(lease.bytes).map((m) => ({
    dataHeader: m.metadata.slice(),
    dataBody: m.body.slice(),
  }));
}

Deno.test("bad messages from a peer are refused before anything reaches the registry", async () => {
  const [schema, batch] = await realMessages();
  const registry = new Registry({ prefix: `hdflightbad${Deno.pid}x` });
  const cases: [string, { dataHeader: Uint8Array; dataBody: Uint8Array }[], string, RegExp][] = [
    ["a batch before the schema", [batch], "corrupt", /not a schema/],
    [
      "a header that is not a flatbuffer",
      [schema, {
        dataHeader: new Uint8Array(24).fill(0xee),
        dataBody: batch.dataBody,
      }],
      "corrupt",
      /message 1/,
    ],
    [
      "a body shorter than declared",
      [schema, {
        dataHeader: batch.dataHeader,
        dataBody: batch.dataBody.subarray(0, 8),
      }],
      "truncated",
      /declares/,
    ],
    ["a stream without a schema", [], "truncated", /before its schema/],
  ];
  try {
    for (const [what, messages, code, pattern] of cases) {
      const peer = await badPeer(messages);
      const client = new FlightClient(peer.address, TEST_CREDENTIALS);
      try {
        await assert.rejects(client.get("t", registry), (error) => {
          assert.ok(error instanceof DataPlaneError, what);
          assert.equal(error.code, code, `${what}: ${error.message}`);
          assert.match(error.message, pattern, what);
          assert.match(error.message, new RegExp(peer.address), what);
          return true;
        });
      } finally {
        client.close();
        peer.close();
      }
      assert.deepEqual(segmentsOf(registry), [], `${what} left a segment`);
      assert.equal(registry.stats().objects, 0, what);
    }
  } finally {
    registry.close();
  }
});

Deno.test("a stream of another size than announced is refused and leaves no segment", async () => {
  await using producer = await flightNode();
  await using consumer = await flightNode();
  const handle = producer.registry.put(tableFromArrays({ x: Int32Array.from([1, 2, 3]) }), 1);
  producer.plane.publish(handle, ["c"]);
  const client = new FlightClient(producer.server.address, TEST_CREDENTIALS);
  try {
    for (const bytes of [handle.length - 8, handle.length + 8]) {
      await assert.rejects(client.get(handle.id, consumer.registry, { bytes }), (e) => {
        assert.ok(e instanceof DataPlaneError, String(e));
        assert.match(e.message, /announced/);
        return true;
      });
      assert.deepEqual(segmentsOf(consumer.registry), []);
    }
    const got = await client.get(handle.id, consumer.registry, { bytes: handle.length });
    assert.equal(got.rows, 3);
  } finally {
    client.close();
  }
});

Deno.test("DoGet of an unpublished or released object is NOT_FOUND, naming the peer", async () => {
  await using producer = await flightNode();
  await using consumer = await flightNode();
  const handle = producer.registry.put(tableFromArrays({ x: Int32Array.from([1]) }), 1);
  const client = new FlightClient(producer.server.address, TEST_CREDENTIALS);
  try {
    // Put but not published: other hosts cannot read it.
    await assert.rejects(client.get(handle.id, consumer.registry), (e) => {
      assert.ok(e instanceof DataPlaneError && e.code === "not-found", String(e));
      assert.match(e.message, new RegExp(producer.server.address));
      return true;
    });
    producer.plane.publish(handle, ["c"]);
    await client.release(handle.id, "c");
    await assert.rejects(client.get(handle.id, consumer.registry), /no published object/);
    await assert.rejects(client.release(handle.id, "c"), /no published object/);
  } finally {
    client.close();
  }
});

Deno.test("an edge holds its producer at capacity until the remote consumer releases", async () => {
  await using producer = await flightNode();
  await using consumer = await flightNode();
  const edge = producer.plane.edge("run1/a->b", ["b"], 2);
  const sent: number[] = [];
  const produce = (async () => {
    for (let i = 0; i < 6; i++) {
      const handle = producer.registry.put(tableFromArrays({ i: Int32Array.from([i, i]) }), 1);
      await edge.send(handle);
      sent.push(i);
      assert.ok(edge.inFlight <= 2);
      assert.ok(producer.registry.stats().objects <= 2, "more than capacity held");
    }
    edge.close();
  })();
  // Nobody consumes yet: the producer stops after two objects.
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(sent, [0, 1]);
  const client = new FlightClient(producer.server.address, TEST_CREDENTIALS);
  const values: number[] = [];
  try {
    for await (const handle of client.pull("run1/a->b", "b", consumer.registry)) {
      using lease = consumer.registry.open(handle);
      values.push(lease.table.getChild("i")!.get(0));
      lease.release();
      consumer.registry.release(handle.id);
    }
    await produce;
  } finally {
    client.close();
  }
  assert.deepEqual(values, [0, 1, 2, 3, 4, 5]);
  assert.equal(producer.registry.stats().objects, 0);
  assert.equal(consumer.registry.stats().objects, 0);
});

Deno.test("an edge with two remote consumers frees each object only after both released", async () => {
  await using producer = await flightNode();
  await using consumer = await flightNode();
  const edge = producer.plane.edge("fan", ["x", "y"], 1);
  const handle = producer.registry.put(tableFromArrays({ v: Int32Array.from([7]) }), 2);
  await edge.send(handle);
  edge.close();
  const client = new FlightClient(producer.server.address, TEST_CREDENTIALS);
  try {
    const x = client.pull("fan", "x", consumer.registry);
    const first = await x.next();
    assert.equal(first.done, false);
    assert.equal(producer.registry.state(handle.id), "resident", "freed before y took it");
    const y = [];
    for await (const h of client.pull("fan", "y", consumer.registry)) y.push(h);
    assert.equal(y.length, 1);
    assert.equal(producer.registry.state(handle.id), "freed");
    assert.equal((await x.next()).done, true);
    await assert.rejects(
      client.pull("fan", "z", consumer.registry).next(),
      /no edge|no consumer/,
    );
  } finally {
    client.close();
  }
});

Deno.test("clients that vanish mid-stream or hang up after large streams leave the server serving", async () => {
  // grpc-js on node:http2 (the first transport) aborted the whole server process, an nghttp2
  // assertion, when a client hung up after four 64 MB DoGets; a worker must survive any peer.
  await using producer = await flightNode();
  const rows = 2_000_000;
  const handle = producer.registry.put(
    tableFromArrays({ x: new Float64Array(rows).fill(0.5), v: new Int32Array(rows) }),
    1,
  );
  producer.plane.publish(handle, ["c"]);
  const script = new URL("./_node.ts", import.meta.url).pathname;
  const fetch = (rounds: number) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, "fetch", producer.server.address, handle.id, String(rounds)],
      env: { HEDDLE_TOKEN: TEST_CREDENTIALS.token! },
      stdout: "piped",
      stderr: "null",
    }).spawn();
  {
    // Killed while streams are under way, three times (rounds enough that no fetch ends
    // on its own first: 50 did, once Flight passed 1 GB/s).
    for (let i = 0; i < 3; i++) {
      const child = fetch(100_000);
      await new Promise((r) => setTimeout(r, 1500));
      child.kill("SIGKILL");
      await child.status;
    }
    // Several large streams on one connection, then the client exits.
    const finished = await fetch(3).output();
    assert.equal(finished.code, 0);
    assert.equal(JSON.parse(new TextDecoder().decode(finished.stdout)).seconds.length, 3);
    // Still serving, and the object is intact.
    await using consumer = await flightNode();
    const client = new FlightClient(producer.server.address, TEST_CREDENTIALS);
    try {
      const got = await client.get(handle.id, consumer.registry);
      assert.equal(got.rows, rows);
      await client.release(handle.id, "c");
      assert.equal(producer.registry.state(handle.id), "freed");
    } finally {
      client.close();
    }
  }
});

Deno.test("malformed HTTP/2 from a peer closes that connection only; the server keeps serving", async () => {
  await using producer = await flightNode();
  await using consumer = await flightNode();
  const handle = producer.registry.put(tableFromArrays({ x: Int32Array.from([5, 6]) }), 1);
  producer.plane.publish(handle, ["c"]);
  const [hostname, port] = producer.server.address.split(":");
  const preface = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  const frame = (type: number, flags: number, stream: number, payload: number[]) =>
    new Uint8Array([
      payload.length >> 16,
      (payload.length >> 8) & 0xff,
      payload.length & 0xff,
      type,
      flags,
      0,
      0,
      0,
      stream,
      ...payload,
    ]);
  const attacks: [string, Uint8Array][] = [
    ["no preface", new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
    [
      "a SETTINGS frame of 5 bytes",
      new Uint8Array([...preface, ...frame(4, 0, 0, [0, 4, 0, 0, 1])]),
    ],
    [
      "a header block HPACK cannot decode",
      new Uint8Array([...preface, ...frame(1, 5, 1, [0xff, 0xff, 0xff, 0xff, 0x7f])]),
    ],
    [
      "a frame larger than announced",
      new Uint8Array([...preface, 0x7f, 0xff, 0xff, 0, 0, 0, 0, 0, 1]),
    ],
    [
      "DATA padding longer than the frame",
      new Uint8Array([...preface, ...frame(0, 8, 1, [9, 1, 2])]),
    ],
  ];
  for (const [what, bytes] of attacks) {
    const conn = await Deno.connect({ hostname, port: Number(port) });
    await conn.write(bytes);
    // The server answers (its SETTINGS, maybe a GOAWAY) and closes: reads end, not hang.
    const buffer = new Uint8Array(4096);
    let closed = false;
    for (let i = 0; i < 20 && !closed; i++) {
      closed = await conn.read(buffer).then((n) => n === null, () => true);
    }
    assert.ok(closed, `${what}: the server kept the connection open`);
    conn.close();
  }
  const client = new FlightClient(producer.server.address, TEST_CREDENTIALS);
  try {
    assert.equal((await client.get(handle.id, consumer.registry)).rows, 2);
  } finally {
    client.close();
  }
});

Deno.test("received streams reuse the consumer registry's pooled segments, whole and exact", async () => {
  await using producer = await flightNode();
  const consumer = new Registry({ prefix: `hdflightpool${Deno.pid}x`, pool: true });
  const client = new FlightClient(producer.server.address, TEST_CREDENTIALS);
  try {
    const table = (rows: number, seed: number) =>
      tableFromArrays({ x: Float64Array.from({ length: rows }, (_, i) => i * seed) });
    const first = producer.registry.put(table(20_000, 3), 1);
    const second = producer.registry.put(table(15_000, 7), 1);
    for (const h of [first, second]) producer.plane.publish(h, ["c"]);
    const got = await client.get(first.id, consumer, { bytes: first.length });
    const firstSegment = `${SHM_DIR}/${got.segment.slice(1)}`;
    const size = (await Deno.stat(firstSegment)).size;
    consumer.release(got.id);
    // Released: kept in the pool under another name, pages and all.
    assert.equal(consumer.stats().bytesPooled, size);
    const again = await client.get(second.id, consumer, { bytes: second.length });
    assert.equal(consumer.stats().bytesPooled, 0, "the pooled segment was taken");
    const bytes = await Deno.readFile(`${SHM_DIR}/${again.segment.slice(1)}`);
    assert.equal(bytes.byteLength, size, "the first object's segment, larger than this one");
    assert.ok(bytes.subarray(again.length).every((b) => b === 0), "nothing of the last object");
    using lease = consumer.open(again);
    assert.deepEqual(
      lease.table.getChild("x")!.toArray(),
      table(15_000, 7).getChild("x")!.toArray(),
    );
  } finally {
    client.close();
    consumer.close();
  }
});
