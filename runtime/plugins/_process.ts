/**
 * One plugin process: spawn, health-check, invoke, stop. It exists so that everything that can
 * go wrong with a foreign process (it dies, hangs, never listens) is decided here and turned
 * into a `PluginError`; the host above only sees answers or typed failures. It must never
 * leave a process running after `stop()`, and never reuse a process that failed.
 */

import type { ServiceError } from "@grpc/grpc-js";
import {
  call,
  connectPlugin,
  ENV,
  type InvokeRequest,
  type InvokeResponse,
  type PluginClient,
} from "./protocol/mod.ts";
import { PluginError } from "./_errors.ts";

/** Where a plugin process is in its life. */
export type PluginState =
  /** No process: never started, stopped after being idle, or the host closed. */
  | "stopped"
  /** Spawned; waiting for it to listen and answer `Health`. */
  | "starting"
  /** Serving, with no invocation in flight. */
  | "ready"
  /** Serving at least one invocation. */
  | "busy"
  /** Asked to exit (SIGTERM); not yet gone. */
  | "stopping"
  /** Died or was killed (crash, hang, malformed answer); the next use starts a new process. */
  | "failed";

export interface ProcessSpec {
  /** The package directory (the manifest's), where the entry command runs. */
  dir: string;
  entry: string[];
  socketPath: string;
  env: Record<string, string>;
  startTimeoutMs: number;
}

const STDERR_TAIL = 4096;
// deno-lint-ignore no-control-regex
const ANSI_ESCAPE = /\x1b\[[0-9;]*[A-Za-z]/g;
const GRPC_DEADLINE_EXCEEDED = 4;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class PluginProcess {
  state: PluginState = "starting";
  inFlight = 0;
  #child: Deno.ChildProcess;
  #client: PluginClient | undefined;
  #stderr = "";
  /** Resolves with the exit status when the process ends, for whatever reason. */
  readonly exited: Promise<Deno.CommandStatus>;
  readonly ready: Promise<void>;

  constructor(readonly spec: ProcessSpec, readonly label: string) {
    const [command, ...args] = spec.entry;
    // `deno` in a manifest means the Deno running this worker, whatever PATH says; inside a
    // compiled `heddle` binary there is no such Deno, so PATH's `deno` serves.
    const runningDeno = /(^|\/)deno$/.test(Deno.execPath());
    const program = command === "deno" && runningDeno ? Deno.execPath() : command;
    this.#child = new Deno.Command(program, {
      args,
      cwd: spec.dir,
      env: {
        ...spec.env,
        [ENV.socket]: spec.socketPath,
        [ENV.workerPid]: String(Deno.pid),
      },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#drainStderr();
    this.exited = this.#child.status.then((status) => {
      if (this.state !== "stopping" && this.state !== "stopped") this.state = "failed";
      this.#close();
      return status;
    });
    this.ready = this.#waitReady();
  }

  get pid(): number {
    return this.#child.pid;
  }

  /**
   * The last lines the plugin wrote to stderr, for error messages; colour codes are removed,
   * since the message ends up in logs, events and JSON rather than on the plugin's terminal.
   */
  get stderrTail(): string {
    return this.#stderr.replace(ANSI_ESCAPE, "").trim();
  }

  async #drainStderr(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.#child.stderr) {
        this.#stderr = (this.#stderr + decoder.decode(chunk, { stream: true })).slice(-STDERR_TAIL);
      }
    } catch {
      // The pipe breaks when the process is killed; the tail so far is what there is.
    }
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + this.spec.startTimeoutMs;
    let exited = false;
    this.exited.then(() => exited = true);
    while (Date.now() < deadline && !exited) {
      if (await this.#socketExists()) {
        this.#client ??= connectPlugin(this.spec.socketPath);
        try {
          await call(this.#client, "Health", {}, 1000);
          if (this.state === "starting") this.state = "ready";
          return;
        } catch {
          // Not listening yet: the socket file can appear before accept() is ready.
        }
      }
      await delay(25);
    }
    this.kill();
    const why = exited
      ? "exited before it listened"
      : `did not answer within ${this.spec.startTimeoutMs} ms`;
    throw new PluginError("start-failed", `plugin ${this.label} ${why}${this.#tail()}`, {
      step: "",
    });
  }

  async #socketExists(): Promise<boolean> {
    try {
      return (await Deno.lstat(this.spec.socketPath)).isSocket === true;
    } catch {
      return false;
    }
  }

  #tail(): string {
    return this.stderrTail ? `; its stderr ends with:\n${this.stderrTail}` : "";
  }

  /**
   * Sends one Invoke. A death of the process during the call, or a deadline passing, becomes
   * a PluginError; in both cases this process is finished and must not be used again.
   */
  async invoke(request: InvokeRequest, timeoutMs: number): Promise<InvokeResponse> {
    await this.ready;
    const client = this.#client!;
    this.inFlight++;
    this.state = "busy";
    const died = this.exited.then((status) => {
      throw new PluginError(
        "crashed",
        `plugin ${this.label} exited (${status.signal ?? `code ${status.code}`}) during ` +
          `\`${request.step}\`${this.#tail()}`,
        { step: request.step },
      );
    });
    try {
      return await Promise.race([
        call<InvokeRequest, InvokeResponse>(client, "Invoke", request, timeoutMs),
        died,
      ]);
    } catch (error) {
      if (error instanceof PluginError) throw error;
      const grpcError = error as ServiceError;
      this.kill();
      if (grpcError.code === GRPC_DEADLINE_EXCEEDED) {
        throw new PluginError(
          "timeout",
          `plugin ${this.label} did not finish \`${request.step}\` within ${timeoutMs} ms; ` +
            "it was killed and will be restarted on next use",
          { step: request.step, cause: error },
        );
      }
      throw new PluginError(
        "crashed",
        `plugin ${this.label} broke off \`${request.step}\`: ${
          grpcError.details ?? grpcError.message
        }` +
          this.#tail(),
        { step: request.step, cause: error },
      );
    } finally {
      died.catch(() => {});
      this.inFlight--;
      if (this.state === "busy" && this.inFlight === 0) this.state = "ready";
    }
  }

  /** Kills at once (a hung or misbehaving plugin); the process counts as failed. */
  kill(): void {
    if (this.state === "stopped") return;
    this.state = "failed";
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }

  /** Asks the process to exit, and kills it if it has not within `graceMs`. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.state === "stopped") return;
    const wasFailed = this.state === "failed";
    this.state = "stopping";
    // Close our side first: Deno's node:http2 can abort the whole worker process when a
    // server's GOAWAY arrives on a live session (nghttp2 assertion in find_stream_on_goaway).
    this.#client?.close();
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.exited;
    clearTimeout(timer);
    this.state = wasFailed ? "failed" : "stopped";
    await this.ready.catch(() => {});
  }

  #close(): void {
    this.#client?.close();
    this.#client = undefined;
    try {
      Deno.removeSync(this.spec.socketPath);
    } catch {
      // The plugin may have removed its socket itself.
    }
  }
}
