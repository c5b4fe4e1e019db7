/**
 * `heddle cluster --control-plane` serves the UI on `--ui-listen` too, and with the node's
 * TLS options the UI speaks HTTPS with the node's certificate: a client that trusts the CA
 * reads it with the token; plain HTTP gets no answer. Certificates are made with openssl.
 */
import assert from "node:assert/strict";
import { spawnHeddle, StreamText } from "../_cli.ts";
import { freePort } from "../e2e/_fixtures.ts";
import { makeCerts } from "../security/_fixtures.ts";
import type { FrontPage } from "../../runtime/ui/mod.ts";

Deno.test({
  name: "heddle cluster --control-plane with TLS serves the UI over HTTPS",
  // The HTTPS client keeps its connection pool until the test's end.
  sanitizeResources: false,
  fn: async () => {
    const certs = await makeCerts();
    const state = await Deno.makeTempDir({ prefix: "heddle-ui-tls-" });
    const child = spawnHeddle([
      "cluster",
      "--control-plane",
      "--listen",
      `127.0.0.1:${freePort()}`,
      "--state",
      state,
      "--tls-cert",
      certs.cert,
      "--tls-key",
      certs.key,
      "--tls-ca",
      certs.ca,
      "--ui-listen",
      "127.0.0.1:0",
    ]);
    const stderr = new StreamText(child.stderr);
    const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(certs.ca)] });
    try {
      const [, url] = await stderr.waitFor(
        /ui listening on (https:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/,
      );
      const { origin, host, searchParams } = new URL(url);
      const token = await Deno.readTextFile(`${state}/token`);
      assert.equal(searchParams.get("token"), token.trim(), "the URL carries the node's token");
      const response = await fetch(`${origin}/api/front`, {
        client,
        headers: { authorization: `Bearer ${token.trim()}` },
      });
      assert.equal(response.status, 200);
      const front = await response.json() as FrontPage;
      assert.deepEqual(front.workflows, []);
      await assert.rejects(fetch(`http://${host}/api/front`));
    } finally {
      client.close();
      child.kill("SIGTERM");
      await child.status;
      await child.stdout.cancel();
      await stderr.done;
      await Deno.remove(state, { recursive: true });
      await Deno.remove(certs.dir, { recursive: true });
    }
  },
});
