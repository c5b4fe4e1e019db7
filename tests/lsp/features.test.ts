/**
 * The language server's editor features end to end, each asked of a real server process
 * over stdio as an editor asks: semantic tokens, code actions, diagnostic tags and code
 * links, folding, highlights, signature help, workspace symbols, file watching, CRLF
 * formatting, the workflow graph, progress on the first analysis, and PRQL hover and
 * completion inside blocks.
 */
import assert from "node:assert/strict";
import { type LspClient, type RpcMessage, spawnLanguageServer } from "../../cli/framing.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const QUICKSTART = `${ROOT}examples/quickstart.he`;
const QUICKSTART_TEXT = Deno.readTextFileSync(QUICKSTART);

/** A started and initialized server (see `serverWithLegend`). */
async function server(root = ROOT): Promise<LspClient> {
  return (await serverWithLegend(root)).client;
}

/**
 * A server started as editors start it, initialized with the given workspace root, and the
 * semantic token legend it announced.
 */
async function serverWithLegend(root = ROOT) {
  const client = spawnLanguageServer(ROOT, { HEDDLE_PATH: `${ROOT}examples/plugins` });
  const init = await client.request("initialize", {
    processId: null,
    rootUri: `file://${root}`,
    capabilities: {
      window: { workDoneProgress: true },
      workspace: { didChangeWatchedFiles: { dynamicRegistration: true } },
    },
  });
  await client.notify("initialized", {});
  const legend = (init.result as {
    capabilities: {
      semanticTokensProvider: { legend: { tokenTypes: string[]; tokenModifiers: string[] } };
    };
  }).capabilities.semanticTokensProvider.legend;
  return { client, legend };
}

async function stop(client: LspClient): Promise<void> {
  await client.request("shutdown", null);
  await client.notify("exit", null);
  await client.close();
  await client.done;
}

/** Opens a document and returns its first published diagnostics. */
async function open(client: LspClient, file: string, text: string) {
  const uri = `file://${file}`;
  await client.notify("textDocument/didOpen", {
    textDocument: { uri, languageId: "heddle", version: 1, text },
  });
  const published = await client.notification((m) =>
    m.method === "textDocument/publishDiagnostics" && m.params?.uri === uri
  );
  return { uri, diagnostics: published.params!.diagnostics as LspDiagnostic[] };
}

interface LspDiagnostic {
  code: string;
  message: string;
  range: LspRange;
  tags?: number[];
  codeDescription?: { href: string };
}
interface LspRange {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

function position(text: string, offset: number) {
  const before = text.slice(0, offset);
  return {
    line: before.split("\n").length - 1,
    character: offset - (before.lastIndexOf("\n") + 1),
  };
}

/** The position `k` characters into the first occurrence of `needle`. */
function at(text: string, needle: string, k = 0) {
  const i = text.indexOf(needle);
  assert.ok(i >= 0, `no ${needle}`);
  return position(text, i + k);
}

function offset(text: string, p: { line: number; character: number }): number {
  const lines = text.split("\n");
  return lines.slice(0, p.line).reduce((n, l) => n + l.length + 1, 0) + p.character;
}

/** Applies LSP text edits to a text. */
function apply(text: string, edits: Array<{ range: LspRange; newText: string }>): string {
  const sorted = edits.toSorted((a, b) =>
    offset(text, b.range.start) - offset(text, a.range.start)
  );
  for (const e of sorted) {
    text = text.slice(0, offset(text, e.range.start)) + e.newText +
      text.slice(offset(text, e.range.end));
  }
  return text;
}

Deno.test("semantic tokens paint names by what they denote, and the words of PRQL blocks", async () => {
  const { client, legend } = await serverWithLegend();
  const { uri } = await open(client, QUICKSTART, QUICKSTART_TEXT);
  const init = await client.request("textDocument/semanticTokens/full", { textDocument: { uri } });
  const data = (init.result as { data: number[] }).data;
  const tokens = new Map<string, string[]>();
  const lines = QUICKSTART_TEXT.split("\n");
  let line = 0, char = 0;
  for (let i = 0; i < data.length; i += 5) {
    line += data[i];
    char = data[i] === 0 ? char + data[i + 1] : data[i + 1];
    const text = lines[line].slice(char, char + data[i + 2]);
    const mods = legend.tokenModifiers.filter((_, b) => data[i + 4] & (1 << b));
    tokens.set(`${line}:${char}`, [text, legend.tokenTypes[data[i + 3]], ...mods]);
  }
  const tokenAt = (needle: string, k = 0) => {
    const p = at(QUICKSTART_TEXT, needle, k);
    return tokens.get(`${p.line}:${p.character}`);
  };
  assert.deepEqual(tokenAt("to_cents ="), ["to_cents", "function", "declaration"]);
  assert.deepEqual(tokenAt("| to_cents", 2), ["to_cents", "function"]);
  assert.deepEqual(tokenAt("handler rejected", 8), ["rejected", "event", "declaration"]);
  assert.deepEqual(tokenAt("// Rows that"), [
    lines[at(QUICKSTART_TEXT, "// Rows").line],
    "comment",
  ]);
  // Inside the PRQL block: a transform, a column, a string, an alias, a function.
  assert.deepEqual(tokenAt("filter status"), ["filter", "keyword"]);
  assert.deepEqual(tokenAt('status == "settled"'), ["status", "property"]);
  assert.deepEqual(tokenAt('"settled"'), ['"settled"', "string"]);
  assert.deepEqual(tokenAt("payments ="), ["payments", "property", "declaration"]);
  assert.deepEqual(tokenAt("count this"), ["count", "function", "defaultLibrary"]);
  await stop(client);
});

const BROKEN = `import "fhub/file" file

step unused_step = file.read { path: "x.csv", format: "csv" }

workflow W {
  file.read { path: "a.csv", formt: "csv" }
  | file.writ { path: "b.csv", format: "csv" }

  file.read {
    path: "c.csv"
  }
  | file.write { path: "d.csv", format: "csv" }
}
`;

Deno.test("code actions apply did-you-mean hints and add missing required config keys", async () => {
  const client = await server();
  const dir = await Deno.makeTempDir();
  const { uri, diagnostics } = await open(client, `${dir}/broken.he`, BROKEN);
  const answer = await client.request("textDocument/codeAction", {
    textDocument: { uri },
    range: { start: { line: 0, character: 0 }, end: position(BROKEN, BROKEN.length) },
    context: { diagnostics },
  });
  const actions = answer.result as Array<{
    title: string;
    isPreferred: boolean;
    diagnostics: LspDiagnostic[];
    edit: { changes: Record<string, Array<{ range: LspRange; newText: string }>> };
  }>;
  const find = (title: RegExp, line?: number) => {
    const action = actions.find((a) =>
      title.test(a.title) && (line === undefined || a.diagnostics[0]?.range.start.line === line)
    );
    assert.ok(action, `no action ${title} in ${actions.map((a) => a.title).join("; ")}`);
    assert.equal(action.isPreferred, true);
    assert.equal(action.diagnostics.length, 1, "the action names the diagnostic it fixes");
    return action.edit.changes[uri];
  };
  const formt = find(/`formt` to `format`/);
  assert.match(apply(BROKEN, formt), /file\.read \{ path: "a\.csv", format: "csv" \}/);
  const writ = find(/`writ` to `write`/);
  assert.match(apply(BROKEN, writ), /\| file\.write \{ path: "b\.csv"/);
  const oneLine = find(/Add the required config key `format/, 5);
  assert.equal(
    apply(BROKEN, oneLine),
    BROKEN.replace('formt: "csv" }', 'formt: "csv", format: "csv" }'),
  );
  const multiLine = find(/Add the required config key `format/, 8);
  assert.equal(
    apply(BROKEN, multiLine),
    BROKEN.replace('path: "c.csv"\n', 'path: "c.csv"\n    format: "csv"\n'),
  );
  // With the fixes applied, only the unused step is left to complain about.
  const text = apply(BROKEN, [...formt, ...writ, ...multiLine]);
  await client.notify("textDocument/didChange", {
    textDocument: { uri, version: 2 },
    contentChanges: [{ text }],
  });
  const after = await client.notification((m) =>
    m.method === "textDocument/publishDiagnostics" && m.params?.version === 2
  );
  const left = (after.params!.diagnostics as LspDiagnostic[]).map((d) => d.code);
  assert.deepEqual(left, ["HE0123"], text);
  await stop(client);
});

Deno.test("unused declarations are tagged unnecessary and every code links to its docs", async () => {
  const client = await server();
  const dir = await Deno.makeTempDir();
  const { diagnostics } = await open(client, `${dir}/broken.he`, BROKEN);
  const unused = diagnostics.find((d) => d.code === "HE0123")!;
  assert.deepEqual(unused.tags, [1]);
  assert.match(unused.message, /unused_step/);
  for (const d of diagnostics) {
    assert.match(d.codeDescription!.href, /^file:\/\/.*\/docs\/diagnostics\.md$/);
    if (d !== unused) assert.equal(d.tags, undefined);
  }
  const doc = await Deno.readTextFile(new URL(unused.codeDescription!.href));
  for (const d of diagnostics) assert.ok(doc.includes(d.code), d.code);
  await stop(client);
});

Deno.test("folding ranges, highlights and signature help follow the program's structure", async () => {
  const client = await server();
  const { uri } = await open(client, QUICKSTART, QUICKSTART_TEXT);
  const folds = (await client.request("textDocument/foldingRange", { textDocument: { uri } }))
    .result as Array<{ startLine: number; endLine: number; kind?: string }>;
  const workflow = at(QUICKSTART_TEXT, "workflow Quickstart").line;
  const close = QUICKSTART_TEXT.split("\n").findLastIndex((l) => l === "}");
  assert.ok(
    folds.some((f) => f.startLine === workflow && f.endLine === close - 1),
    JSON.stringify(folds),
  );
  const block = at(QUICKSTART_TEXT, "  | (\n    from input\n    filter status").line;
  assert.ok(folds.some((f) => f.startLine === block && f.endLine === block + 3));
  assert.ok(folds.some((f) => f.kind === "comment" && f.startLine === 0 && f.endLine === 4));

  const highlights = (await client.request("textDocument/documentHighlight", {
    textDocument: { uri },
    position: at(QUICKSTART_TEXT, "to_cents =", 1),
  })).result as Array<{ range: LspRange; kind: number }>;
  assert.deepEqual(highlights.map((h) => [h.range.start.line, h.kind]), [
    [at(QUICKSTART_TEXT, "to_cents =").line, 3],
    [at(QUICKSTART_TEXT, "| to_cents").line, 2],
  ]);

  const help = (await client.request("textDocument/signatureHelp", {
    textDocument: { uri },
    position: at(QUICKSTART_TEXT, 'format: "jsonl" }', 2),
  })).result as { signatures: Array<{ label: string }>; activeParameter: number };
  assert.match(help.signatures[0].label, /^file\.write \{ path: string, format: "csv" \| "jsonl"/);
  assert.equal(help.activeParameter, 1);
  await stop(client);
});

Deno.test("workspace symbols search every program under the workspace, open or not", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/more`);
  await Deno.writeTextFile(`${dir}/a.he`, QUICKSTART_TEXT);
  await Deno.writeTextFile(
    `${dir}/more/b.he`,
    'import "fhub/file" file\n\nworkflow QuickCheck {\n  file.read { path: "x", format: "csv" }\n  > quick_rows\n}\n',
  );
  const client = await server(dir);
  const found = (await client.request("workspace/symbol", { query: "quick" })).result as Array<{
    name: string;
    containerName?: string;
    location: { uri: string; range: LspRange };
  }>;
  const names = found.map((s) =>
    `${s.name}@${s.location.uri.slice(s.location.uri.lastIndexOf("/") + 1)}`
  );
  assert.deepEqual(names.toSorted(), ["QuickCheck@b.he", "Quickstart@a.he", "quick_rows@b.he"]);
  const rows = found.find((s) => s.name === "quick_rows")!;
  assert.equal(rows.containerName, "QuickCheck");
  assert.equal(rows.location.range.start.line, 4);
  await stop(client);
});

Deno.test("a changed plugin manifest re-checks the open programs", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/plugins/ts-enrich`, { recursive: true });
  const manifest = `${dir}/plugins/ts-enrich/heddle.manifest.json`;
  await Deno.copyFile(`${ROOT}examples/plugins/ts-enrich/heddle.manifest.json`, manifest);
  const program = 'import "fhub/file" file\nimport "ts-enrich/enrich" enrich\n\n' +
    'workflow W {\n  file.read { path: "a.csv", format: "csv" }: { amount: float64?, .. }\n' +
    '  | enrich.cents {}\n  | file.write { path: "b.csv", format: "csv" }\n}\n';
  const client = await server(dir);
  const { uri, diagnostics } = await open(client, `${dir}/program.he`, program);
  const registered = client.serverRequests.find((r) => r.method === "client/registerCapability");
  assert.match(JSON.stringify(registered?.params), /\*\*\/heddle\.manifest\.json/);
  assert.deepEqual(diagnostics.filter((d) => d.code.startsWith("HE01")), []);
  const text = await Deno.readTextFile(manifest);
  await Deno.writeTextFile(manifest, text.replaceAll('"cents"', '"dollars"'));
  await client.notify("workspace/didChangeWatchedFiles", {
    changes: [{ uri: `file://${manifest}`, type: 2 }],
  });
  const again = await client.notification((m: RpcMessage) =>
    m.method === "textDocument/publishDiagnostics" && m.params?.uri === uri
  );
  const codes = (again.params!.diagnostics as LspDiagnostic[]).map((d) => d.message);
  assert.ok(codes.some((m) => /no member `cents`/.test(m)), JSON.stringify(codes));
  await stop(client);
});

Deno.test("formatting keeps a file's CRLF line ends", async () => {
  const client = await server();
  const dir = await Deno.makeTempDir();
  const text =
    'import "fhub/file" file\r\nworkflow W {\r\n  file.read { path: "a.csv", format: "csv" }' +
    '|file.write { path: "b.csv", format: "csv" }\r\n}\r\n';
  const { uri } = await open(client, `${dir}/crlf.he`, text);
  const edits = (await client.request("textDocument/formatting", {
    textDocument: { uri },
    options: { tabSize: 2, insertSpaces: true },
  })).result as Array<{ range: LspRange; newText: string }>;
  const formatted = edits[0].newText;
  assert.match(formatted, /\r\n {2}\| file\.write/);
  assert.equal(formatted.split("\n").length, formatted.split("\r\n").length);
  await stop(client);
});

Deno.test("heddle/dag returns each workflow's graph with lines and edges", async () => {
  const client = await server();
  const { uri } = await open(client, QUICKSTART, QUICKSTART_TEXT);
  const { graphs } = (await client.request("heddle/dag", { textDocument: { uri } })).result as {
    graphs: Array<{
      name: string;
      kind: string;
      stages: Array<{ id: string; label: string; line: number; inputs: string[] }>;
      mermaid: string;
    }>;
  };
  assert.deepEqual(graphs.map((g) => `${g.kind} ${g.name}`), [
    "handler rejected",
    "workflow Quickstart",
  ]);
  const flow = graphs[1];
  const cents = flow.stages.find((s) => s.label === "to_cents")!;
  assert.equal(cents.line, at(QUICKSTART_TEXT, "| to_cents").line + 1);
  const prql = flow.stages.find((s) => s.id === cents.inputs[0])!;
  assert.equal(prql.label, "prql");
  assert.equal(flow.stages.filter((s) => s.inputs.includes(cents.id)).length, 2);
  assert.match(
    flow.mermaid,
    new RegExp(`${prql.id.replace(".", "_")} --> ${cents.id.replace(".", "_")}`),
  );
  await stop(client);
});

Deno.test("the first analysis of a document is reported as progress", async () => {
  const client = await server();
  await open(client, QUICKSTART, QUICKSTART_TEXT);
  assert.ok(client.serverRequests.some((r) => r.method === "window/workDoneProgress/create"));
  const kinds = () =>
    client.notifications.filter((m) => m.method === "$/progress")
      .map((m) => (m.params!.value as { kind: string }).kind);
  // The diagnostics can reach the client just before the progress' end: wait for it.
  for (let waited = 0; kinds().length < 2 && waited < 10_000; waited += 20) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.deepEqual(kinds(), ["begin", "end"]);
  await stop(client);
});

Deno.test("PRQL words hover with their type and origin, and half-typed blocks complete columns", async () => {
  const client = await server();
  const { uri } = await open(client, QUICKSTART, QUICKSTART_TEXT);
  const hover = async (needle: string, k: number) =>
    ((await client.request("textDocument/hover", {
      textDocument: { uri },
      position: at(QUICKSTART_TEXT, needle, k),
    })).result as { contents: { value: string } } | null)?.contents.value ?? "";
  assert.match(await hover("sum amount_cents", 6), /amount_cents: int64\?[\s\S]*from `to_cents`/);
  assert.match(await hover('status == "settled"', 1), /status: utf8[\s\S]*from `file\.read`/);
  assert.match(await hover("payments =", 2), /payments: int64[\s\S]*`payments = count this`/);

  // The first block's filter line is being rewritten: `filter amou` with nothing else.
  const line = at(QUICKSTART_TEXT, 'filter status == "settled"').line;
  const typed = "    filter amou";
  await client.notify("textDocument/didChange", {
    textDocument: { uri, version: 2 },
    contentChanges: [{
      range: { start: { line, character: 0 }, end: { line: line + 1, character: 0 } },
      text: `${typed}\n`,
    }],
  });
  const items = (await client.request("textDocument/completion", {
    textDocument: { uri },
    position: { line, character: typed.length },
  })).result as Array<{ label: string; kind: number }>;
  const labels = items.map((i) => i.label);
  for (const column of ["amount", "status", "tx_id", "user_id", "merchant", "ts"]) {
    assert.ok(labels.includes(column), `${column} in ${labels}`);
  }
  assert.ok(!labels.includes("amou"), "the half-typed word is not offered back");
  await stop(client);
});
