/**
 * `Content-Length` framing, the envelope both the Debug Adapter Protocol and the Language
 * Server Protocol put around each JSON message on a byte stream, and a small LSP client on
 * top of it. The debug adapter reads and writes with it; the tests and benchmarks that play
 * the editor use the client. It knows nothing of what the messages mean, and must never
 * lose a message split across chunks.
 */

/** One message framed: the header, a blank line, then the UTF-8 JSON body. */
export function frame(message: unknown): Uint8Array {
  const body = new TextEncoder().encode(JSON.stringify(message));
  const head = new TextEncoder().encode(`Content-Length: ${body.length}\r\n\r\n`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** The messages on a stream, in order, until it ends. A malformed header ends it. */
export async function* framedMessages(
  stream: AsyncIterable<Uint8Array>,
): AsyncGenerator<unknown> {
  let buffer = new Uint8Array(0);
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    const joined = new Uint8Array(buffer.length + chunk.length);
    joined.set(buffer);
    joined.set(chunk, buffer.length);
    buffer = joined;
    while (true) {
      const end = headerEnd(buffer);
      if (end < 0) break;
      const header = decoder.decode(buffer.subarray(0, end));
      const length = /Content-Length:\s*(\d+)/i.exec(header);
      if (!length) return;
      const start = end + 4;
      const size = Number(length[1]);
      if (buffer.length < start + size) break;
      yield JSON.parse(decoder.decode(buffer.subarray(start, start + size)));
      buffer = buffer.slice(start + size);
    }
  }
}

/** The offset of the `\r\n\r\n` that ends a header, or -1. */
function headerEnd(buffer: Uint8Array): number {
  for (let i = 0; i + 3 < buffer.length; i++) {
    if (buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

/** A JSON-RPC message as the Language Server Protocol frames it. */
export interface RpcMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: { code: number; message: string };
}

/**
 * The client side of the Language Server Protocol over a server process's stdio, as the
 * end-to-end tests and `bench/lsp.ts` play an editor: requests matched to responses,
 * notifications queued, and the server's own requests (capability registration, progress
 * tokens) accepted.
 */
export class LspClient {
  #next = 1;
  #pending = new Map<number, (m: RpcMessage) => void>();
  #notifications: RpcMessage[] = [];
  #waiters: Array<() => void> = [];
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Every request the server sent, in order. */
  readonly serverRequests: RpcMessage[] = [];
  /** Called with each notification as it arrives (a benchmark times them). */
  onNotification: (m: RpcMessage) => void = () => {};
  readonly done: Promise<void>;

  constructor(readonly child: Deno.ChildProcess) {
    this.#writer = child.stdin.getWriter();
    this.done = this.#read();
  }

  async #read(): Promise<void> {
    for await (const raw of framedMessages(this.child.stdout)) {
      const m = raw as RpcMessage;
      if (m.id !== undefined && m.method === undefined) {
        this.#pending.get(m.id)?.(m);
        this.#pending.delete(m.id);
      } else if (m.id !== undefined) {
        this.serverRequests.push(m);
        this.#send({ id: m.id, result: null });
      } else {
        this.onNotification(m);
        this.#notifications.push(m);
        for (const wake of this.#waiters.splice(0)) wake();
      }
    }
  }

  #send(message: Record<string, unknown>): Promise<void> {
    return this.#writer.write(frame({ jsonrpc: "2.0", ...message }));
  }

  request(method: string, params: unknown): Promise<RpcMessage> {
    const id = this.#next++;
    const answer = new Promise<RpcMessage>((resolve) => this.#pending.set(id, resolve));
    this.#send({ id, method, params });
    return answer;
  }

  notify(method: string, params: unknown): Promise<void> {
    return this.#send({ method, params });
  }

  /** The first notification (already received or still to come) that `accept` takes. */
  async notification(accept: (m: RpcMessage) => boolean): Promise<RpcMessage> {
    while (true) {
      const i = this.#notifications.findIndex(accept);
      if (i >= 0) return this.#notifications.splice(i, 1)[0];
      await new Promise<void>((wake) => this.#waiters.push(wake));
    }
  }

  /** Every notification received and not yet taken by `notification`. */
  get notifications(): readonly RpcMessage[] {
    return this.#notifications;
  }

  async close(): Promise<void> {
    await this.#writer.close();
  }
}

/** Starts `heddle dev --lsp --stdio` from a checkout (`root`) as editors do; stderr is dropped. */
export function spawnLanguageServer(root: string, env: Record<string, string> = {}): LspClient {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/main.ts", "dev", "--lsp", "--stdio"],
    cwd: root,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
    env,
  }).spawn();
  return new LspClient(child);
}
