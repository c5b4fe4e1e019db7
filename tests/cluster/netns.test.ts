/**
 * The data plane between real hosts, simulated with network and mount namespaces
 * (tests/cluster/_netns.ts): processes on different nodes share no /dev/shm and no loopback,
 * so a batch can only cross through Flight over the veth. pyarrow.flight on the other node is
 * the reference peer and judges table equality. Also tests the harness's own cleanup.
 */
import assert from "node:assert/strict";
import { clusterTest, leftovers, NetnsCluster, type NodeProcess } from "./_netns.ts";

const root = new URL("../../", import.meta.url).pathname;
const peer = `${root}tests/cluster/_flight_peer.py`;
const nodeScript = `${root}tests/cluster/_node.ts`;
const deno = [Deno.execPath(), "run", "-A", nodeScript];
/** The nodes' token: `_node.ts` and the pyarrow peer read it from HEDDLE_TOKEN. */
const env = { HEDDLE_TOKEN: crypto.randomUUID() };

async function python(...args: string[]): Promise<string> {
  const output = await new Deno.Command("python3", { args: [peer, ...args] }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout);
}

async function next(process: NodeProcess): Promise<Record<string, unknown>> {
  const line = await process.lines.next();
  assert.ok(!line.done, "the node process ended without answering");
  return JSON.parse(line.value);
}

function hostShm(): string[] {
  return [...Deno.readDirSync("/dev/shm")].map((e) => e.name);
}

clusterTest("a batch crosses from one namespace to another only through Flight", async () => {
  const dir = await Deno.makeTempDir();
  await using cluster = await NetnsCluster.create(2);
  const [a, b] = cluster.nodes;
  try {
    await python("write", `${dir}/table.arrows`, "20000");
    const producer = a.spawn([...deno, "serve", a.address, `${dir}/table.arrows`, "b"], {
      cwd: root,
      env,
    });
    const served = await next(producer);
    assert.equal(served.address, `${a.address}:${String(served.address).split(":")[1]}`);
    const segment = String(served.segment).slice(1);
    // The producer's segment lives in node a's own /dev/shm: neither the host nor b sees it.
    assert.ok(!hostShm().includes(segment));
    const pulled = JSON.parse(
      await b.output([
        ...deno,
        "pull",
        String(served.address),
        String(served.ticket),
        "b",
        `${dir}/got.arrows`,
      ], {
        cwd: root,
        env,
      }),
    );
    assert.equal(pulled.rows, 20000);
    assert.ok(!pulled.shm.includes(segment), "b saw a's shared memory");
    assert.ok(pulled.shm.includes(String(pulled.segment).slice(1)));
    assert.ok(pulled.received.bytesReceived >= Number(served.bytes) - 64);
    await python("compare", `${dir}/table.arrows`, `${dir}/got.arrows`);
    // b's release reached a: the object is gone from a's registry and a's /dev/shm.
    await producer.send("stats");
    const stats = await next(producer);
    assert.equal(stats.published, 0);
    assert.equal(stats.objects, 0);
    assert.ok(!(stats.shm as string[]).includes(segment));
    assert.equal(stats.streamsServed, 1);
    assert.equal((await producer.finish()).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

clusterTest(
  "pyarrow.flight on another node gets the exact table from a Heddle worker",
  async () => {
    const dir = await Deno.makeTempDir();
    await using cluster = await NetnsCluster.create(2);
    const [a, b] = cluster.nodes;
    try {
      await python("write", `${dir}/table.arrows`, "5000");
      const producer = a.spawn([...deno, "serve", a.address, `${dir}/table.arrows`, "pyarrow"], {
        cwd: root,
        env,
      });
      const served = await next(producer);
      const result = JSON.parse(
        await b.output([
          "python3",
          peer,
          "get",
          `grpc://${served.address}`,
          String(served.ticket),
          `${dir}/table.arrows`,
        ], { env }),
      );
      assert.equal(result.rows, 5000);
      await producer.send("stats");
      assert.equal((await next(producer)).objects, 0, "pyarrow's release did not free it");
      await producer.finish();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

clusterTest("a Heddle node reads pyarrow's FlightServerBase on another node", async () => {
  const dir = await Deno.makeTempDir();
  await using cluster = await NetnsCluster.create(2);
  const [a, b] = cluster.nodes;
  try {
    await python("write", `${dir}/table.arrows`, "7000");
    const server = a.spawn(["python3", peer, "serve", `${dir}/table.arrows`, a.address]);
    const port = (await server.lines.next()).value;
    const pulled = JSON.parse(
      await b.output([...deno, "pull", `${a.address}:${port}`, "t", "b", `${dir}/got.arrows`], {
        cwd: root,
        env,
      }),
    );
    assert.equal(pulled.rows, 7000);
    await python("compare", `${dir}/table.arrows`, `${dir}/got.arrows`);
    await server.finish();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

clusterTest("nodes reach a host loopback port through the bridge's host address", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const answered = (async () => {
    const connection = await listener.accept();
    await connection.write(new TextEncoder().encode("hello from the host\n"));
    connection.close();
  })();
  try {
    await using cluster = await NetnsCluster.create(1);
    const exposed = cluster.exposeHostPort(port);
    const [host, exposedPort] = exposed.split(":");
    const got = await cluster.nodes[0].output([
      "python3",
      "-c",
      "import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), 5); " +
      "print(s.makefile().readline().strip())",
      host,
      exposedPort,
    ]);
    assert.equal(got.trim(), "hello from the host");
    // The node's own loopback is not the host's.
    await assert.rejects(
      cluster.nodes[0].output([
        "python3",
        "-c",
        "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 2)",
        String(port),
      ]),
      /refused|failed/i,
    );
    await answered;
  } finally {
    listener.close();
  }
});

clusterTest(
  "the harness removes namespaces, links and processes, also when the test fails",
  async () => {
    let names: { namespaces: string[]; links: string[] } | undefined;
    let sleeper: Deno.ChildProcess | undefined;
    await assert.rejects(
      (async () => {
        await using cluster = await NetnsCluster.create(2);
        names = cluster.names();
        sleeper = cluster.nodes[1].spawn(["sleep", "600"]).child;
        assert.deepEqual(await leftovers(names), [...names.namespaces, ...names.links]);
        throw new Error("the test body failed");
      })(),
      /the test body failed/,
    );
    assert.ok(names !== undefined && sleeper !== undefined);
    assert.deepEqual(await leftovers(names), []);
    const status = await sleeper.status;
    assert.equal(status.success, false, "the node's process outlived the cluster");
  },
);

clusterTest("a new harness removes what a harness killed with -9 left behind", async () => {
  // 99999999 is above any pid_max, so no live process owns these names.
  const namespace = "hdn99999999-0";
  const bridge = "hdb99999999";
  await new Deno.Command("ip", { args: ["netns", "add", namespace] }).output();
  await new Deno.Command("ip", { args: ["link", "add", bridge, "type", "bridge"] }).output();
  const stale = { namespaces: [namespace], links: [bridge] };
  assert.deepEqual(await leftovers(stale), [namespace, bridge]);
  await using _cluster = await NetnsCluster.create(1);
  assert.deepEqual(await leftovers(stale), []);
});
