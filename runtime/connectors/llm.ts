/**
 * `fhub/llm`: `prompt {system, model?, user?, temperature?, max_concurrency?, timeout?,
 * max_retries?}` over an OpenAI-compatible chat-completions API (the `openai` client). Each
 * row becomes one request (the row as JSON, or the `user` template with `{field}`
 * placeholders); the output row is the input row plus `completion`. The base URL, key and
 * model come from the `connection` resource or else the environment (OPENAI_BASE_URL,
 * OPENAI_API_KEY, HEDDLE_LLM_MODEL). Requests are bounded by a concurrency limit, retried on
 * 429 and 5xx with exponential backoff (honouring `retry-after`), and abandoned after a
 * timeout. It must never echo the API key in an error.
 */
import OpenAI from "openai";
import { Field, Schema, type Table, Utf8 } from "apache-arrow";
import { jsonValue, rawRowsOf, rowsOf, tableFromRows } from "./_arrow.ts";
import { intOf, redactUrls, remoteError, stringOf } from "./_remote.ts";
import {
  type ConnectorContext,
  ConnectorError,
  type ConnectorFactory,
  type Transform,
} from "./_types.ts";

const DEFAULT_MODEL = "gpt-4o-mini";

/** Fills `{field}` placeholders of a user-message template from a row. */
function render(template: string, row: Record<string, unknown>): string {
  return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => {
    if (!(name in row)) return whole;
    const v = row[name];
    return typeof v === "string" ? v : JSON.stringify(jsonValue(v));
  });
}

/** Runs `work` over `items` with at most `limit` in flight; results keep the input order. */
async function mapLimited<T, R>(
  items: T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The password of a URL (`http://user:PW@host`), decoded, or undefined. */
function urlPassword(url: string | undefined): string | undefined {
  try {
    return url ? decodeURIComponent(new URL(url).password) || undefined : undefined;
  } catch {
    return undefined;
  }
}

class PromptTransform implements Transform {
  #client: OpenAI;
  #system: string;
  #model: string;
  #user: string | undefined;
  #temperature: number | undefined;
  #concurrency: number;
  #secrets: (string | undefined)[];
  #where: string;
  /** Chat-completion requests that returned a completion, for metrics and tests. */
  completed = 0;

  constructor(ctx: ConnectorContext, env: (name: string) => string | undefined) {
    const system = stringOf(ctx.config, "system");
    if (system === undefined) throw new ConnectorError("config", "`system` must be a string");
    this.#system = system;
    const resource = ctx.resources.connection ?? {};
    const baseURL = stringOf(resource, "base_url", env("OPENAI_BASE_URL"));
    const apiKey = stringOf(resource, "api_key", env("OPENAI_API_KEY"));
    this.#model = stringOf(ctx.config, "model") ?? stringOf(resource, "model") ??
      env("HEDDLE_LLM_MODEL") ?? DEFAULT_MODEL;
    this.#user = stringOf(ctx.config, "user");
    const temperature = ctx.config.temperature;
    this.#temperature = typeof temperature === "number" ? temperature : undefined;
    this.#concurrency = Math.max(1, intOf(ctx.config, "max_concurrency", 4));
    // A password inside the base URL is a secret like the key: messages never show it.
    this.#secrets = [apiKey, urlPassword(baseURL)];
    this.#where = `llm ${redactUrls(baseURL ?? "api.openai.com")} (model \`${this.#model}\`)`;
    this.#client = new OpenAI({
      baseURL,
      // A local OpenAI-compatible server often needs no key; the client insists on one.
      apiKey: apiKey ?? "not-set",
      timeout: Math.max(1, intOf(ctx.config, "timeout", 60_000)),
      maxRetries: Math.max(0, intOf(ctx.config, "max_retries", 3)),
    });
  }

  async #complete(row: Record<string, unknown>, signal: AbortSignal): Promise<string> {
    try {
      const reply = await this.#client.chat.completions.create({
        model: this.#model,
        messages: [
          { role: "system", content: this.#system },
          { role: "user", content: this.#user ? render(this.#user, row) : JSON.stringify(row) },
        ],
        ...(this.#temperature === undefined ? {} : { temperature: this.#temperature }),
      }, { signal });
      const text = reply.choices?.[0]?.message?.content;
      if (typeof text !== "string") {
        throw new ConnectorError("unavailable", `${this.#where}: the reply has no message content`);
      }
      this.completed++;
      return text;
    } catch (error) {
      if (error instanceof ConnectorError) throw error;
      const status = (error as { status?: unknown }).status;
      const code = typeof status === "number" && status >= 400 && status < 500 && status !== 429 &&
          status !== 408
        ? "config"
        : "unavailable";
      throw remoteError(code, this.#where, error, this.#secrets);
    }
  }

  async apply(input: Table, signal: AbortSignal): Promise<Table> {
    const rows = rowsOf(input);
    const completions = await mapLimited(rows, this.#concurrency, (r) => this.#complete(r, signal));
    const schema = new Schema([
      ...input.schema.fields.filter((f) => f.name !== "completion"),
      new Field("completion", new Utf8(), false),
    ]);
    const raw = rawRowsOf(input);
    return tableFromRows(schema, raw.map((r, i) => ({ ...r, completion: completions[i] })));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Opens the transform with `env` for the environment defaults (tests pass their own). */
export function openPrompt(
  ctx: ConnectorContext,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): PromptTransform {
  return new PromptTransform(ctx, env);
}

/** `llm.prompt {system, ...}`: appends each row's completion as `completion: utf8`. */
export const llmPrompt: ConnectorFactory = {
  role: "transform",
  open(ctx) {
    return Promise.resolve(openPrompt(ctx));
  },
};
