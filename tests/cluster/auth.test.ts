/**
 * The data plane admits only its cluster: every Flight call needs the node's token, and with
 * TLS material the connection needs a certificate signed by the cluster's CA (mutual TLS).
 * Calls without them get UNAUTHENTICATED (or no connection at all) and change nothing: the
 * object is neither streamed nor released. pyarrow.flight checks the same from outside.
 */
import assert from "node:assert/strict";
import { tableFromArrays } from "apache-arrow";
import {
  DataPlane,
  DataPlaneError,
  FlightClient,
  serveFlight,
} from "../../runtime/dataplane/mod.ts";
import {
  createServer,
  type Credentials,
  type TlsMaterial,
  UNAUTHENTICATED_MESSAGE,
} from "../../runtime/protocol/mod.ts";
import { Registry } from "../../runtime/registry/mod.ts";
import { flightNode } from "./_fixtures.ts";

const peer = new URL("./_flight_peer.py", import.meta.url).pathname;
const TOKEN = "cluster-token-7f3a";

async function python(env: Record<string, string>, ...args: string[]): Promise<string> {
  const output = await new Deno.Command("python3", { args: [peer, ...args], env }).output();
  assert.equal(output.code, 0, `python3 ${args[0]}: ${new TextDecoder().decode(output.stderr)}`);
  return new TextDecoder().decode(output.stdout);
}

async function openssl(dir: string, ...args: string[]): Promise<void> {
  const output = await new Deno.Command("openssl", { args, cwd: dir, stderr: "piped" }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
}

/** A CA with a node certificate for 127.0.0.1, in `dir/<name>/{ca,node}.pem`, `node.key`. */
async function authority(dir: string, name: string): Promise<TlsMaterial> {
  const at = `${dir}/${name}`;
  await Deno.mkdir(at);
  await Deno.writeTextFile(
    `${at}/node.ext`,
    "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
  );
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(
    at,
    "req",
    "-x509",
    ...key,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  );
  await openssl(
    at,
    "req",
    ...key,
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    "node.key",
    "-out",
    "node.csr",
  );
  await openssl(
    at,
    "x509",
    "-req",
    "-in",
    "node.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    "node.ext",
    "-out",
    "node.pem",
  );
  return {
    ca: await Deno.readFile(`${at}/ca.pem`),
    cert: await Deno.readFile(`${at}/node.pem`),
    key: await Deno.readFile(`${at}/node.key`),
  };
}

async function producer(credentials: Credentials, consumers = ["c"]) {
  const node = await flightNode(credentials);
  const handle = node.registry.put(
    tableFromArrays({ v: Int32Array.from([1, 2, 3]) }),
    consumers.length,
  );
  node.plane.publish(handle, consumers);
  return Object.assign(node, { handle });
}

async function refused(client: FlightClient, call: () => Promise<unknown>, code: string) {
  try {
    await assert.rejects(call(), (error) => {
      assert.ok(error instanceof DataPlaneError, String(error));
      assert.equal(error.code, code, error.message);
      return true;
    });
  } finally {
    client.close();
  }
}

Deno.test("Flight calls without the cluster's token are UNAUTHENTICATED and change nothing", async () => {
  await using node = await producer({ token: TOKEN, tls: null });
  const consumer = new Registry({ prefix: `hdauthc${Deno.pid}x` });
  const address = node.server.address;
  try {
    for (const token of [null, "wrong-token", `${TOKEN}x`, TOKEN.slice(1)]) {
      const client = new FlightClient(address, { token, tls: null });
      await refused(client, () => client.get(node.handle.id, consumer), "unauthenticated");
      const again = new FlightClient(address, { token, tls: null });
      await refused(again, () => again.release(node.handle.id, "c"), "unauthenticated");
    }
    assert.equal(node.plane.stats().streamsServed, 0);
    assert.equal(node.registry.state(node.handle.id), "resident");
    assert.equal(consumer.stats().objects, 0);
    const client = new FlightClient(address, { token: TOKEN, tls: null });
    try {
      const got = await client.get(node.handle.id, consumer);
      assert.equal(got.rows, 3);
      await client.release(node.handle.id, "c");
      assert.equal(node.registry.state(node.handle.id), "freed");
    } finally {
      client.close();
    }
    // pyarrow: refused without the header, served with it.
    const port = address.split(":")[1];
    const uri = `grpc://127.0.0.1:${port}`;
    const refusal = JSON.parse(await python({}, "refused", uri, node.handle.id));
    assert.match(refusal.refused, /token/);
  } finally {
    consumer.close();
  }
});

Deno.test("with TLS, only peers with a certificate of the cluster's CA connect (pyarrow too)", async () => {
  const dir = await Deno.makeTempDir();
  const consumer = new Registry({ prefix: `hdtlsc${Deno.pid}x` });
  try {
    const cluster = await authority(dir, "cluster");
    const rogue = await authority(dir, "rogue");
    await using node = await producer({ token: TOKEN, tls: cluster }, ["c", "pyarrow"]);
    const address = node.server.address;
    // A certificate from another CA, and a plaintext client: no connection.
    const stranger = new FlightClient(address, { token: TOKEN, tls: rogue });
    await refused(stranger, () => stranger.get(node.handle.id, consumer), "unavailable");
    const plain = new FlightClient(address, { token: TOKEN, tls: null });
    await refused(plain, () => plain.get(node.handle.id, consumer), "unavailable");
    // The right certificate without the token is still refused.
    const tokenless = new FlightClient(address, { token: null, tls: cluster });
    await refused(tokenless, () => tokenless.get(node.handle.id, consumer), "unauthenticated");
    assert.equal(node.plane.stats().streamsServed, 0);
    const client = new FlightClient(address, { token: TOKEN, tls: cluster });
    try {
      assert.equal((await client.get(node.handle.id, consumer)).rows, 3);
      await client.release(node.handle.id, "c");
    } finally {
      client.close();
    }
    // pyarrow with the cluster's certificate and the token gets the exact table, releases it.
    const table = `${dir}/expected.arrows`;
    {
      using lease = node.registry.open(node.handle.id);
      await Deno.writeFile(table, lease.bytes);
    }
    const port = address.split(":")[1];
    const env = { HEDDLE_TLS_DIR: `${dir}/cluster`, HEDDLE_TOKEN: TOKEN };
    await python(env, "get", `grpc+tls://127.0.0.1:${port}`, node.handle.id, table);
    assert.equal(node.plane.stats().streamsServed, 2);
    assert.equal(node.registry.state(node.handle.id), "freed");
  } finally {
    consumer.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("neither the data plane nor the control channel can be served without a token", async () => {
  const registry = new Registry({ prefix: `hdauth${Deno.pid}x` });
  const plane = new DataPlane(registry);
  try {
    const none = { token: null, tls: null };
    await assert.rejects(serveFlight(plane, "127.0.0.1:0", none), /a server needs a token/);
    assert.throws(() => createServer(none), /a server needs a token/);
    // One refusal for both: the same words, whatever was wrong with the token.
    await using node = await producer({ token: TOKEN, tls: null });
    const client = new FlightClient(node.server.address, { token: "nope", tls: null });
    await refused(client, () => client.get(node.handle.id, registry), "unauthenticated");
    const uri = `grpc://${node.server.address}`;
    const refusal = JSON.parse(await python({ HEDDLE_TOKEN: "nope" }, "refused", uri, "x"));
    assert.ok(refusal.refused.includes(UNAUTHENTICATED_MESSAGE), refusal.refused);
  } finally {
    plane.close();
    registry.close();
  }
});
