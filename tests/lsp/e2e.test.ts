/**
 * The language server end to end, as an editor sees it: a real server process
 * (`deno run -A cli/lsp.ts`, what `heddle dev --lsp --stdio` runs) spoken to with JSON-RPC
 * and Content-Length framing over its stdin and stdout.
 */
import assert from "node:assert/strict";
import { RESOLVE_CODES } from "../../compiler/mod.ts";
import { SEED, SEED_FILE } from "./_cursor.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

interface Message {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: { code: number; message: string };
}

/** A minimal LSP client: frames messages, matches responses to requests, queues notifications. */
class Client {
  #next = 1;
  #pending = new Map<number, (m: Message) => void>();
  #notifications: Message[] = [];
  #waiters: Array<() => void> = [];
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly done: Promise<void>;

  constructor(readonly child: Deno.ChildProcess) {
    this.#writer = child.stdin.getWriter();
    this.done = this.#read();
  }

  async #read(): Promise<void> {
    let buffer = new Uint8Array(0);
    const decoder = new TextDecoder();
    for await (const chunk of this.child.stdout) {
      const joined = new Uint8Array(buffer.length + chunk.length);
      joined.set(buffer);
      joined.set(chunk, buffer.length);
      buffer = joined;
      while (true) {
        const head = decoder.decode(buffer.subarray(0, Math.min(buffer.length, 200)));
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) break;
        const length = Number(/Content-Length: (\d+)/i.exec(head.slice(0, end))![1]);
        const start = end + 4;
        if (buffer.length < start + length) break;
        const message = JSON.parse(decoder.decode(buffer.subarray(start, start + length)));
        buffer = buffer.slice(start + length);
        this.#dispatch(message);
      }
    }
  }

  #dispatch(m: Message): void {
    if (m.id !== undefined && m.method === undefined) {
      this.#pending.get(m.id)?.(m);
      this.#pending.delete(m.id);
      return;
    }
    if (m.id !== undefined) {
      // A request from the server (such as client/registerCapability): accept it.
      this.#send({ id: m.id, result: null });
      return;
    }
    this.#notifications.push(m);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  async #send(message: Record<string, unknown>): Promise<void> {
    const body = new TextEncoder().encode(JSON.stringify({ jsonrpc: "2.0", ...message }));
    await this.#writer.write(new TextEncoder().encode(`Content-Length: ${body.length}\r\n\r\n`));
    await this.#writer.write(body);
  }

  request(method: string, params: unknown): Promise<Message> {
    const id = this.#next++;
    const answer = new Promise<Message>((resolve) => this.#pending.set(id, resolve));
    this.#send({ id, method, params });
    return answer;
  }

  notify(method: string, params: unknown): Promise<void> {
    return this.#send({ method, params });
  }

  /** The first notification (already received or still to come) that `accept` takes. */
  async notification(accept: (m: Message) => boolean): Promise<Message> {
    while (true) {
      const i = this.#notifications.findIndex(accept);
      if (i >= 0) return this.#notifications.splice(i, 1)[0];
      await new Promise<void>((wake) => this.#waiters.push(wake));
    }
  }

  async close(): Promise<void> {
    await this.#writer.close();
  }
}

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
