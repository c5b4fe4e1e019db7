/**
 * The language server end to end, as an editor sees it: a real server process
 * (`deno run -A cli/lsp.ts`, what `heddle dev --lsp --stdio` runs) spoken to with JSON-RPC
 * and Content-Length framing over its stdin and stdout.
 */
import assert from "node:assert/strict";
import { RESOLVE_CODES } from "../../compiler/mod.ts";
import { LspClient as Client } from "../../cli/framing.ts";
import { SEED, SEED_FILE } from "./_cursor.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The LSP position (0-based line, UTF-16 character) of an offset. */
function position(text: string, offset: number) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length - 1;
  return { line, character: offset - (before.lastIndexOf("\n") + 1) };
}

Deno.test("the language server publishes diagnostics, answers hover and definition, and exits", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/lsp.ts", "--stdio"],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const client = new Client(child);
  const uri = `file://${SEED_FILE}`;
  // A `ch_db` where the slot wants a PostgreSQL connection: a resolve error with a label.
  const text = SEED.replace("<connection=pg_db> pg.query", "<connection=ch_db> pg.query");

  const init = await client.request("initialize", {
    processId: null,
    rootUri: `file://${ROOT}`,
    capabilities: {},
  });
  const caps = (init.result as { capabilities: Record<string, unknown> }).capabilities;
  assert.equal(caps.hoverProvider, true);
  assert.equal(caps.definitionProvider, true);
  await client.notify("initialized", {});
  await client.notify("textDocument/didOpen", {
    textDocument: { uri, languageId: "heddle", version: 1, text },
  });

  const published = await client.notification((m) =>
    m.method === "textDocument/publishDiagnostics" && m.params?.uri === uri
  );
  const diagnostics = published.params!.diagnostics as Array<{
    code: string;
    severity: number;
    range: { start: unknown; end: unknown };
    relatedInformation: unknown[];
  }>;
  const wrong = diagnostics.find((d) => d.code === RESOLVE_CODES.wrongResourceKind.code);
  assert.ok(wrong, JSON.stringify(diagnostics));
  assert.equal(wrong.severity, 1);
  const at = text.indexOf("ch_db> pg.query");
  assert.deepEqual(wrong.range, { start: position(text, at), end: position(text, at + 5) });
  assert.ok(wrong.relatedInformation.length > 0);

  const hover = await client.request("textDocument/hover", {
    textDocument: { uri },
    position: position(text, text.indexOf("pg.query") + 4),
  });
  const contents = (hover.result as { contents: { kind: string; value: string } }).contents;
  assert.equal(contents.kind, "markdown");
  assert.match(contents.value, /pg\.query\s+\/\/ lookup/);

  const definition = await client.request("textDocument/definition", {
    textDocument: { uri },
    position: position(text, text.indexOf("| generate_audit") + 4),
  });
  const declared = text.indexOf("step generate_audit") + "step ".length;
  assert.deepEqual(definition.result, {
    uri,
    range: { start: position(text, declared), end: position(text, declared + 14) },
  });

  const unknown = await client.request("textDocument/hover", {
    textDocument: { uri: "file:///not/open.he" },
    position: { line: 0, character: 0 },
  });
  assert.equal(unknown.error, undefined);
  assert.equal(unknown.result, null);

  const shutdown = await client.request("shutdown", null);
  assert.equal(shutdown.error, undefined);
  await client.notify("exit", null);
  await client.close();
  await client.done;
  assert.equal((await child.status).code, 0);
});
