/**
 * A cluster worker serves Arrow Flight next to its control service, with the node's own
 * credentials: the real `heddle cluster` process, its Flight endpoint reached with the token
 * from its state directory, and refused without it (also by pyarrow).
 */
import assert from "node:assert/strict";
import { DataPlaneError, FlightClient } from "../../runtime/dataplane/mod.ts";
import { tokenPath } from "../../runtime/protocol/mod.ts";

const root = new URL("../../", import.meta.url).pathname;
const peer = `${root}tests/cluster/_flight_peer.py`;

/** Reads stderr until a line announces `role`; returns its address. */
async function announced(stream: ReadableStream<Uint8Array>, role: string): Promise<string> {
  let text = "";
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the node exited before announcing ${role}:\n${text}`);
      text += value;
      const match = new RegExp(`${role} listening on (\\S+)`).exec(text);
      if (match) return match[1];
    }
  } finally {
    reader.releaseLock();
  }
}

Deno.test("heddle cluster's worker serves Flight with the node's token and refuses calls without it", async () => {
  const state = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "cli/main.ts",
      "cluster",
      "--control-plane",
      "--worker",
      "--listen",
      "127.0.0.1:0",
      "--flight-listen",
      "127.0.0.1:0",
      "--state",
      state,
    ],
    cwd: root,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    const address = await announced(child.stderr, "flight");
    const token = (await Deno.readTextFile(tokenPath(state))).trim();
    const client = new FlightClient(address, { token, tls: null });
    try {
      const actions = (await client.listActions()).map((a) => a.type).sort();
      assert.deepEqual(actions, ["next", "release"]);
    } finally {
      client.close();
    }
    for (const wrong of [null, `${token}x`]) {
      const stranger = new FlightClient(address, { token: wrong, tls: null });
      try {
        await assert.rejects(stranger.listActions(), (e) => {
          assert.ok(e instanceof DataPlaneError && e.code === "unauthenticated", String(e));
          return true;
        });
      } finally {
        stranger.close();
      }
    }
    const refused = await new Deno.Command("python3", {
      args: [peer, "refused", `grpc://${address}`, "anything"],
    }).output();
    assert.equal(refused.code, 0, new TextDecoder().decode(refused.stderr));
  } finally {
    child.kill("SIGTERM");
    await child.stderr.cancel().catch(() => {});
    await child.status;
    await Deno.remove(state, { recursive: true });
  }
});
