/**
 * A full /dev/shm, for real: each test runs its child in a private mount namespace
 * (`unshare --mount`) whose /dev/shm is a 64 KiB tmpfs, so the host's /dev/shm is never
 * filled. Issue 16 found ENOSPC retried as transient and the Python SDK killed by SIGBUS
 * (`write_output` did not reserve its pages); now the registry spills to disk or fails with
 * `no-space`, and both SDKs get ENOSPC as an error. Needs root (CI runs as root).
 */

import assert from "node:assert/strict";

const here = new URL(".", import.meta.url).pathname;
const sdk = new URL("../../sdk/python", import.meta.url).pathname;
const root = Deno.uid() === 0;

/** Runs `script` under sh in a new mount namespace with a tiny /dev/shm (and tiny `full`). */
async function inTinyShm(script: string, full: string) {
  const setup = "mount -t tmpfs -o size=64k tmpfs /dev/shm && " +
    `mkdir -p ${full} && mount -t tmpfs -o size=64k tmpfs ${full} && `;
  const { code, stdout, stderr } = await new Deno.Command("unshare", {
    args: ["--mount", "--fork", "sh", "-c", setup + script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code, stdout: decode(stdout), stderr: decode(stderr) };
}

Deno.test({
  name: "a put that does not fit in /dev/shm goes to the spill file; with no room there, no-space",
  ignore: !root,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "heddle-nospace-" });
    try {
      const child = `${Deno.execPath()} run -A ${here}_no_space_child.ts`;
      const roomy = await inTinyShm(`${child} ${dir}/spill`, `${dir}/full`);
      assert.equal(roomy.code, 0, roomy.stderr);
      const spilled = JSON.parse(roomy.stdout);
      assert.equal(spilled.put.state, "spilled", roomy.stdout);
      assert.ok(spilled.put.segment.startsWith(`${dir}/spill/`), spilled.put.segment);
      assert.equal(spilled.put.sum, (20_000 * 19_999) / 2, "every value read back");
      assert.equal(spilled.writeSegment, "no-space", "the TypeScript SDK's writer says no-space");

      const full = await inTinyShm(`${child} ${dir}/full/spill`, `${dir}/full`);
      assert.equal(full.code, 0, full.stderr);
      const failed = JSON.parse(full.stdout);
      assert.equal(failed.put.code, "no-space", full.stdout);
      assert.match(
        failed.put.message,
        /no space left in \/dev\/shm .* and no space left in the spill directory/,
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "the Python SDK's write_output raises ENOSPC on a full /dev/shm instead of dying of SIGBUS",
  ignore: !root,
  async fn() {
    const python = [
      "import errno, pyarrow as pa",
      "from heddle_sdk._shm import write_output",
      "t = pa.table({'v': pa.array(range(20000), pa.float64())})",
      "try:",
      "    write_output('/heddle-nospace-py-1', t.schema, t.to_batches())",
      "    print('written')",
      "except OSError as e:",
      "    print(errno.errorcode[e.errno])",
      "import os; print(os.path.exists('/dev/shm/heddle-nospace-py-1'))",
    ].join("\n");
    const dir = Deno.makeTempDirSync({ prefix: "heddle-nospace-" });
    try {
      Deno.writeTextFileSync(`${dir}/write.py`, python);
      const run = await inTinyShm(`PYTHONPATH=${sdk} python3 ${dir}/write.py`, `${dir}/full`);
      assert.equal(run.code, 0, `python ended with ${run.code}: ${run.stderr}`);
      assert.deepEqual(run.stdout.trim().split("\n"), ["ENOSPC", "False"]);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
