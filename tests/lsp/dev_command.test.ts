/**
 * `heddle dev` as a command: the options it refuses before any server starts. (The servers
 * are tested end to end in e2e.test.ts and tests/dap/.)
 */
import assert from "node:assert/strict";
import { devCommand } from "../../cli/commands/dev.ts";
import type { Terminal } from "../../cli/_terminal.ts";

async function run(args: string[]): Promise<{ code: number; err: string; out: string }> {
  let err = "";
  let out = "";
  const term: Terminal = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    color: false,
    interactive: false,
  };
  const exit = { code: 0 };
  await devCommand(term, exit).exitOverride().parseAsync(args, { from: "user" });
  return { code: exit.code, err, out };
}

Deno.test("`heddle dev --lsp --dap` is a usage error: one server at a time", async () => {
  const r = await run(["--lsp", "--dap"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /one server/);
  assert.equal(r.err.trim().split("\n").length, 1);
  assert.equal(r.out, "");
});

Deno.test("`heddle dev` without a server to run is a usage error", async () => {
  const r = await run(["--stdio"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--lsp/);
});
