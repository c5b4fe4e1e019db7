/**
 * Issue 15, "state and temporary files owned and private": Heddle's directories in shared
 * places are created 0700 and refused when another user made them first. Before, the spill
 * directory `$TMPDIR/heddle-spill` was used whoever owned it, so another user deleted a
 * root run's spilled batches and the run failed; and the state directory was 0755.
 */
import assert from "node:assert/strict";
import { Registry, RegistryError } from "../../runtime/registry/mod.ts";
import { heddle } from "../_cli.ts";
import { asNobody, canSwitchUser, examples, modeOf } from "./_fixtures.ts";

const quickstart = `${examples}quickstart.he`;

/** A directory like /tmp: anyone may create entries in it, only their owner may remove them. */
async function sharedTmp(): Promise<string> {
  const tmp = await Deno.makeTempDir();
  Deno.chmodSync(tmp, 0o1777);
  return tmp;
}

Deno.test("a spill directory another user created in advance is refused, not used", async () => {
  if (!canSwitchUser("the spill directory hijack")) return;
  const tmp = await sharedTmp();
  const hijacked = `${tmp}/heddle-spill-${Deno.uid()}`;
  try {
    const made = await asNobody(["sh", "-c", `mkdir ${hijacked} && chmod 777 ${hijacked}`]);
    assert.equal(made.code, 0, made.stderr);
    assert.throws(
      () => new Registry({ spillDir: hijacked, prefix: "heddle-hijack" }),
      (e: unknown) => e instanceof RegistryError && /belongs to uid \d+/.test(e.message),
    );
    // The default place is that directory too, and a run refuses it with one line.
    const r = await heddle(["run", quickstart], { env: { TMPDIR: tmp } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^heddle: spill directory: .*belongs to uid/);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.deepEqual([...Deno.readDirSync(hijacked)], [], "nothing was written into it");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a spill directory is created 0700, made private if open, and never a symlink", async () => {
  const tmp = await sharedTmp();
  try {
    const fresh = new Registry({ spillDir: `${tmp}/fresh`, prefix: "heddle-spillmode" });
    fresh.close();
    assert.equal(modeOf(`${tmp}/fresh`), 0o700);
    Deno.mkdirSync(`${tmp}/open`);
    Deno.chmodSync(`${tmp}/open`, 0o777);
    new Registry({ spillDir: `${tmp}/open`, prefix: "heddle-spillmode" }).close();
    assert.equal(modeOf(`${tmp}/open`), 0o700);
    Deno.mkdirSync(`${tmp}/elsewhere`);
    Deno.symlinkSync(`${tmp}/elsewhere`, `${tmp}/link`);
    assert.throws(
      () => new Registry({ spillDir: `${tmp}/link`, prefix: "heddle-spillmode" }),
      /symbolic link/,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a state directory owned by another user is refused by the daemon", async () => {
  if (!canSwitchUser("the state directory ownership check")) return;
  const tmp = await sharedTmp();
  const state = `${tmp}/state`;
  try {
    assert.equal((await asNobody(["mkdir", "-m", "700", state])).code, 0);
    const r = await heddle(["local", "--listen", "127.0.0.1:0", "--state", state]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /state\/?.* belongs to uid \d+, not to this user/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
