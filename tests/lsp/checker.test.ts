/**
 * The language server checks in a Worker (cli/_lsp_checker.ts) while its own thread answers
 * requests. Driven over stdio like an editor: a burst of edits never has an older version's
 * diagnostics published after a newer one's, and the last version's diagnostics are the last
 * published and describe its text; a completion sent right after an edit whose check is long
 * is answered before that check's diagnostics. It must never compare timings with numbers.
 */
import assert from "node:assert/strict";
import { type LspClient, type RpcMessage, spawnLanguageServer } from "../../cli/framing.ts";
import { generateProgram } from "../../bench/parse.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function position(text: string, offset: number) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length - 1;
  return { line, character: offset - (before.lastIndexOf("\n") + 1) };
}

/** A server with `text` open as version 1, after its first diagnostics. */
async function opened(text: string): Promise<{ client: LspClient; uri: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "heddle-lsp-checker-" });
  const uri = `file://${dir}/big.he`;
  await Deno.writeTextFile(`${dir}/big.he`, text);
  const client = spawnLanguageServer(ROOT);
  await client.request("initialize", { processId: null, rootUri: null, capabilities: {} });
  await client.notify("initialized", {});
  await client.notify("textDocument/didOpen", {
    textDocument: { uri, languageId: "heddle", version: 1, text },
  });
  await client.notification((m) =>
    m.method === "textDocument/publishDiagnostics" && m.params?.uri === uri
  );
  return { client, uri, dir };
}

async function stop(client: LspClient, dir: string): Promise<void> {
  await client.request("shutdown", null);
  await client.notify("exit", null);
  await client.close().catch(() => {});
  await client.child.status;
  await Deno.remove(dir, { recursive: true });
}

const isDiagnostics = (uri: string) => (m: RpcMessage) =>
  m.method === "textDocument/publishDiagnostics" && m.params?.uri === uri;

Deno.test("a burst of edits publishes versions in order, the last one last and for its text", async () => {
  const text = generateProgram(1_500);
  const { client, uri, dir } = await opened(text);
  try {
    const versions: number[] = [];
    client.onNotification = (m) => {
      if (isDiagnostics(uri)(m)) versions.push(Number(m.params!.version));
    };
    // Each edit renames the column a PRQL block filters on: odd versions misspell it (a
    // finding at the misspelling), even ones spell it right.
    const at = text.indexOf("filter amount", Math.floor(text.length / 2)) + "filter ".length;
    let current = text;
    for (let version = 2; version <= 21; version++) {
      const word = version % 2 === 1 ? "amout" : "amount";
      const old = current.startsWith("amout", at) ? "amout" : "amount";
      current = current.slice(0, at) + word + current.slice(at + old.length);
      await client.notify("textDocument/didChange", {
        textDocument: { uri, version },
        contentChanges: [{ text: current }],
      });
    }
    const final = await client.notification((m) =>
      isDiagnostics(uri)(m) && Number(m.params!.version) === 21
    );
    // Give a late older answer the chance to show up, then look at the order.
    await client.request("textDocument/hover", {
      textDocument: { uri },
      position: position(current, at),
    });
    assert.deepEqual(versions, [...versions].sort((a, b) => a - b), `published ${versions}`);
    assert.equal(new Set(versions).size, versions.length, `published ${versions}`);
    assert.equal(versions.at(-1), 21);
    const diagnostics = final.params!.diagnostics as Array<{ message: string; range: unknown }>;
    const missing = diagnostics.filter((d) => d.message.includes("`amout`"));
    assert.equal(missing.length, 1, JSON.stringify(diagnostics));
    assert.deepEqual(missing[0].range, {
      start: position(current, at),
      end: position(current, at + "amout".length),
    });
  } finally {
    await stop(client, dir);
  }
});

Deno.test("completion is answered while a long check of the edit runs", async () => {
  const text = generateProgram(1_500);
  const { client, uri, dir } = await opened(text);
  try {
    // A new workflow with many PRQL blocks of new shapes, added at the end: the checker
    // analyses the whole program again and lowers every new block, which takes a while.
    const blocks = Array.from(
      { length: 600 },
      (_, k) =>
        `  stream_0\n  | (\n    from input\n    derive d${k} = amount * ${k}.5 + user_id\n` +
        `    filter d${k} > ${k}\n  )\n  | kafka.produce <broker=kf_broker> { topic: "x${k}" }\n`,
    );
    const added =
      `\nworkflow Added {\n  kafka.consume <broker=kf_broker> { topic: "t" }: Transaction\n` +
      `  > stream_0\n${blocks.join("")}}\n`;
    const edited = text + added;
    const order: string[] = [];
    client.onNotification = (m) => {
      if (isDiagnostics(uri)(m) && Number(m.params!.version) === 2) order.push("diagnostics");
    };
    await client.notify("textDocument/didChange", {
      textDocument: { uri, version: 2 },
      contentChanges: [{ text: edited }],
    });
    // Past any debounce: the check has started when the completion comes.
    await new Promise((r) => setTimeout(r, 100));
    const cursor = text.indexOf("select {", Math.floor(text.length / 2)) + "select {".length;
    const answer = await client.request("textDocument/completion", {
      textDocument: { uri },
      position: position(edited, cursor),
    });
    order.push("completion");
    const labels = (answer.result as Array<{ label: string }>).map((i) => i.label);
    assert.ok(labels.includes("amount"), JSON.stringify(labels));
    await client.notification((m) => isDiagnostics(uri)(m) && Number(m.params!.version) === 2);
    assert.deepEqual(order, ["completion", "diagnostics"]);
  } finally {
    await stop(client, dir);
  }
});
