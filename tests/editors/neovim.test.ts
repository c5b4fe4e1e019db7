/**
 * The Neovim setups of docs/editors.md, run for real: headless Neovim (0.11 or later) loads
 * each Lua snippet exactly as the page shows it, opens a program with a mistake, and a driver
 * script writes what the editor got from the language server (the buffer's filetype, the
 * attached clients, the diagnostics, a hover) to a file that the test reads. `heddle` on PATH
 * is a shim that runs this checkout. Neovim is found as `$HEDDLE_NVIM` or `nvim` on PATH
 * (.ci/run installs it); without one the test is skipped, and with `$HEDDLE_NVIM` set to a
 * missing file it fails. It must never pass on a snippet the page does not show.
 */
import assert from "node:assert/strict";
import { docSnippet, inEditorFolder } from "./_setup.ts";

/** The Neovim to run, or null when there is none (then the tests are skipped). */
function findNvim(): string | null {
  const given = Deno.env.get("HEDDLE_NVIM");
  if (given) return given;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/nvim`).isFile) return `${dir}/nvim`;
    } catch {
      // not in this folder
    }
  }
  return null;
}

const NVIM = findNvim();

/** Waits for diagnostics, asks for a hover on `file.read`, writes both as JSON, quits. */
const DRIVER = `
local out = os.getenv("HEDDLE_NVIM_OUT")
vim.cmd("edit " .. os.getenv("HEDDLE_NVIM_FILE"))
local got = vim.wait(90000, function() return #vim.diagnostic.get(0) > 0 end, 100)
local diagnostics = {}
for _, d in ipairs(vim.diagnostic.get(0)) do
  table.insert(diagnostics, { lnum = d.lnum, col = d.col, code = d.code, message = d.message })
end
local params = { textDocument = { uri = vim.uri_from_bufnr(0) }, position = { line = 3, character = 8 } }
local hover = vim.lsp.buf_request_sync(0, "textDocument/hover", params, 30000) or {}
local hovers = {}
for _, r in pairs(hover) do
  if r.result then table.insert(hovers, r.result.contents.value) end
end
local clients = {}
for _, c in ipairs(vim.lsp.get_clients({ bufnr = 0 })) do table.insert(clients, c.name) end
local f = io.open(out, "w")
f:write(vim.json.encode({
  got = got, filetype = vim.bo.filetype, clients = clients,
  diagnostics = diagnostics, hovers = hovers,
}))
f:close()
vim.cmd("qa!")
`;

interface Seen {
  got: boolean;
  filetype: string;
  clients: string[];
  diagnostics: Array<{ lnum: number; col: number; code: string; message: string }>;
  hovers: string[];
}

/** Runs headless Neovim with `config` (a snippet of the docs) on the program. */
function run(config: string): Promise<Seen> {
  const files = { "config.lua": config, "driver.lua": DRIVER };
  return inEditorFolder(files, async (dir, path) => {
    const out = await new Deno.Command(NVIM!, {
      args: [
        "--headless",
        "--clean",
        "-c",
        `luafile ${dir}/config.lua`,
        "-c",
        `luafile ${dir}/driver.lua`,
      ],
      cwd: dir,
      env: {
        PATH: path,
        HOME: dir,
        XDG_STATE_HOME: `${dir}/state`,
        HEDDLE_NVIM_OUT: `${dir}/seen.json`,
        HEDDLE_NVIM_FILE: `${dir}/program.he`,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    assert.equal(out.code, 0, text(out.stderr) + text(out.stdout));
    return JSON.parse(await Deno.readTextFile(`${dir}/seen.json`)) as Seen;
  });
}

function assertServed(seen: Seen): void {
  assert.equal(seen.filetype, "heddle");
  assert.deepEqual(seen.clients, ["heddle"]);
  assert.ok(seen.got, "no diagnostics arrived");
  const wrong = seen.diagnostics.find((d) => d.message.includes("wrte"));
  assert.ok(wrong, JSON.stringify(seen.diagnostics));
  assert.match(wrong.code, /^HE\d{4}$/);
  assert.deepEqual([wrong.lnum, wrong.col], [4, 9]);
  assert.match(wrong.message, /did you mean `file.write`/);
  assert.ok(seen.hovers.some((h) => /read/.test(h) && /path/.test(h)), JSON.stringify(seen.hovers));
}

Deno.test({
  name: "Neovim 0.11's vim.lsp.config setup from docs/editors.md shows diagnostics and hovers",
  ignore: NVIM === null,
  fn: async () => assertServed(await run(docSnippet("Neovim 0.11 and later", "lua"))),
});

Deno.test({
  name: "Neovim 0.10's vim.lsp.start setup from docs/editors.md shows diagnostics and hovers",
  ignore: NVIM === null,
  fn: async () => assertServed(await run(docSnippet("Neovim 0.10", "lua"))),
});
