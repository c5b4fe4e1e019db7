/**
 * A minimal Debug Adapter Protocol client, as an editor plays it: it starts the real
 * `heddle dev --dap` process, frames requests onto its stdin and matches responses and
 * events read from its stdout.
 */
import { frame, framedMessages } from "../../cli/framing.ts";

const main = new URL("../../cli/main.ts", import.meta.url).pathname;

export interface DapMessage {
  seq: number;
  type: "response" | "event";
  command?: string;
  request_seq?: number;
  success?: boolean;
  message?: string;
  event?: string;
  // deno-lint-ignore no-explicit-any
  body?: any;
}

export class DapClient {
  #seq = 1;
  #pending = new Map<number, (m: DapMessage) => void>();
  #events: DapMessage[] = [];
  #waiters: Array<() => void> = [];
  #ended = false;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly child: Deno.ChildProcess;
  readonly stderr: Promise<string>;
  readonly done: Promise<void>;

  constructor(env: Record<string, string>) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "dev", "--dap"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...env },
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    this.stderr = new Response(this.child.stderr).text();
    this.done = this.#read();
  }

  async #read(): Promise<void> {
    for await (const raw of framedMessages(this.child.stdout)) {
      const m = raw as DapMessage;
      if (m.type === "response") {
        this.#pending.get(m.request_seq!)?.(m);
        this.#pending.delete(m.request_seq!);
      } else if (m.type === "event") {
        this.#events.push(m);
        for (const wake of this.#waiters.splice(0)) wake();
      }
    }
    this.#ended = true;
    for (const wake of this.#waiters.splice(0)) wake();
  }

  request(command: string, args: Record<string, unknown> = {}): Promise<DapMessage> {
    const seq = this.#seq++;
    const answer = new Promise<DapMessage>((resolve) => this.#pending.set(seq, resolve));
    this.#writer.write(frame({ seq, type: "request", command, arguments: args }));
    return answer;
  }

  /** A successful response's body; a failed response throws its message. */
  async call(command: string, args: Record<string, unknown> = {}) {
    const r = await this.request(command, args);
    if (!r.success) throw new Error(`${command} failed: ${r.message}`);
    return r.body;
  }

  /** The first event named `name` (already received or still to come) that `accept` takes. */
  async event(name: string, accept: (m: DapMessage) => boolean = () => true) {
    while (true) {
      const i = this.#events.findIndex((m) => m.event === name && accept(m));
      if (i >= 0) return this.#events.splice(i, 1)[0];
      if (this.#ended) throw new Error(`the adapter ended before a \`${name}\` event`);
      await new Promise<void>((wake) => this.#waiters.push(wake));
    }
  }

  /** Every event named `name` received so far. */
  seen(name: string): DapMessage[] {
    return this.#events.filter((m) => m.event === name);
  }

  async close(): Promise<number> {
    await this.#writer.close().catch(() => {});
    const status = await this.child.status;
    await this.done;
    return status.code;
  }
}
