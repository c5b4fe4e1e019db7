/**
 * A small deterministic OpenAI-compatible chat-completions server on loopback, for tests:
 * no model can be downloaded here, and tests must be able to make it fail on demand (429,
 * 500, a slow reply) to exercise the `fhub/llm` connector's retries and timeout. The reply
 * is a pure function of the request, so tests can predict it. It must never listen beyond
 * 127.0.0.1. Run it alone with `deno run -A tests/llm_server.ts [port]`.
 */

/** What the next requests do instead of answering. */
export interface Fault {
  /** The HTTP status to answer with (429, 500, ...). */
  status: number;
  /** How many requests get it. */
  times: number;
}

export interface LlmServer {
  /** The base URL the `openai` client takes (`http://127.0.0.1:PORT/v1`). */
  readonly baseUrl: string;
  /** Requests received on /v1/chat/completions, failed ones included. */
  readonly requests: number;
  /** The user messages of the requests that were answered, in order. */
  readonly answered: string[];
  /** Makes the next `times` requests fail with `status`. */
  fail(status: number, times: number): void;
  /** Delays every reply by `ms` (0: none). */
  delay(ms: number): void;
  close(): Promise<void>;
}

/** The completion the server returns for a user message: predictable by tests. */
export function expectedCompletion(user: string): string {
  return `AUDIT ${user}`;
}

export function startLlmServer(port = 0): LlmServer {
  const faults: Fault[] = [];
  const answered: string[] = [];
  let requests = 0;
  let delayMs = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    if (req.method !== "POST" || url.pathname !== "/v1/chat/completions") {
      return Response.json({ error: { message: "not found" } }, { status: 404 });
    }
    requests++;
    const body = await req.json();
    const fault = faults[0];
    if (fault) {
      if (--fault.times <= 0) faults.shift();
      return Response.json(
        { error: { message: `injected ${fault.status}`, type: "test" } },
        { status: fault.status, headers: { "retry-after-ms": "10" } },
      );
    }
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    const messages = body.messages as { role: string; content: string }[];
    const user = messages.filter((m) => m.role === "user").map((m) => m.content).join("\n");
    answered.push(user);
    return Response.json({
      id: `chatcmpl-${requests}`,
      object: "chat.completion",
      created: 0,
      model: body.model,
      choices: [{
        index: 0,
        finish_reason: "stop",
        message: { role: "assistant", content: expectedCompletion(user) },
      }],
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    });
  });
  return {
    baseUrl: `http://127.0.0.1:${server.addr.port}/v1`,
    get requests() {
      return requests;
    },
    answered,
    fail(status, times) {
      faults.push({ status, times });
    },
    delay(ms) {
      delayMs = ms;
    },
    close: () => server.shutdown(),
  };
}

if (import.meta.main) {
  const server = startLlmServer(Number(Deno.args[0] ?? 0));
  console.log(server.baseUrl);
}
