/**
 * Who may use the web UI (docs/ui.md, "Security"): every request needs the token, on
 * loopback too; the printed address trades it for an HttpOnly, SameSite=Strict cookie and
 * drops it from the address; a POST needs the page's own origin (or, from a tool, the bearer
 * header and no origin). Real HTTP against a real control plane.
 */
import assert from "node:assert/strict";
import { ControlPlane } from "../../runtime/control/mod.ts";
import { serveUi, type UiServer } from "../../runtime/ui/mod.ts";
import { heddle } from "../_cli.ts";

const TOKEN = "a".repeat(64);

async function withUi(fn: (ui: UiServer, origin: string) => Promise<void>): Promise<void> {
  const control = new ControlPlane({ database: ":memory:" });
  const ui = serveUi({ control, address: "127.0.0.1:0", token: TOKEN, tls: null });
  try {
    await fn(ui, `http://${ui.address}`);
  } finally {
    await ui.close();
    control.close();
  }
}

async function status(url: string, init: RequestInit = {}): Promise<number> {
  const response = await fetch(url, { redirect: "manual", ...init });
  await response.body?.cancel();
  return response.status;
}

Deno.test("a request without the token is refused, on loopback too", async () => {
  await withUi(async (_ui, origin) => {
    for (const path of ["/", "/api/front", "/metrics", "/assets/app.js", "/api/stream"]) {
      assert.equal(await status(`${origin}${path}`), 401, path);
    }
    assert.equal(
      await status(`${origin}/api/front`, { headers: { authorization: "Bearer x" } }),
      401,
    );
    assert.equal(await status(`${origin}/?token=wrong`), 401);
    assert.equal(
      await status(`${origin}/api/front`, { headers: { authorization: `Bearer ${TOKEN}` } }),
      200,
    );
  });
});

Deno.test("the printed address sets an HttpOnly SameSite=Strict cookie and drops the token", async () => {
  await withUi(async (ui, origin) => {
    assert.equal(ui.url, `${origin}/?token=${TOKEN}`);
    const response = await fetch(`${origin}/runs?status=failed&token=${TOKEN}`, {
      redirect: "manual",
    });
    await response.body?.cancel();
    assert.equal(response.status, 303);
    assert.equal(response.headers.get("location"), "/runs?status=failed");
    const cookie = response.headers.get("set-cookie")!;
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const pair = cookie.split(";")[0];
    assert.equal(await status(`${origin}/api/front`, { headers: { cookie: pair } }), 200);
  });
});

Deno.test("a cross-origin POST is refused whatever it carries", async () => {
  await withUi(async (_ui, origin) => {
    const cookie = `heddle_ui=${TOKEN}`;
    const stop = `${origin}/api/runs/nosuch/stop`;
    const post = (headers: Record<string, string>) => status(stop, { method: "POST", headers });
    assert.equal(await post({ cookie, origin: "http://evil.example" }), 403);
    assert.equal(await post({ cookie, origin, "sec-fetch-site": "cross-site" }), 403);
    assert.equal(await post({ cookie }), 403, "a browser POST without Origin is not trusted");
    assert.equal(
      await post({ authorization: `Bearer ${TOKEN}`, origin: "http://evil.example" }),
      403,
    );
    // Allowed through: the control plane answers that the run does not exist.
    assert.equal(await post({ cookie, origin, "sec-fetch-site": "same-origin" }), 404);
    assert.equal(await post({ authorization: `Bearer ${TOKEN}` }), 404);
  });
});

Deno.test("a UI address beyond loopback without TLS is refused with exit 2", async () => {
  const result = await heddle([
    "run",
    "--ui",
    "--ui-listen",
    "0.0.0.0:0",
    "examples/quickstart.he",
  ]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /--ui-listen: refusing to listen on 0\.0\.0\.0:0 without TLS/);
});

Deno.test("heddle local refuses a UI address beyond loopback without TLS or --insecure", async () => {
  const state = await Deno.makeTempDir({ prefix: "heddle-ui-listen-" });
  try {
    const result = await heddle([
      "local",
      "--listen",
      "127.0.0.1:0",
      "--state",
      state,
      "--ui-listen",
      "0.0.0.0:0",
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /--ui-listen: refusing to listen on 0\.0\.0\.0:0 without TLS/);
  } finally {
    await Deno.remove(state, { recursive: true });
  }
});
