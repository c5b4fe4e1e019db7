/**
 * Runs the real `heddle` command line as a child process, the way users and editors do,
 * so tests see exactly its exit codes, stdout and stderr.
 */
const main = new URL("../cli/main.ts", import.meta.url).pathname;

/**
 * The state directory commands get unless a test gives one: a temporary one per test
 * process, so that `heddle run` records its runs there and never in the user's `~/.heddle`.
 */
let defaultState: string | undefined;
function stateEnv(): Record<string, string> {
  defaultState ??= Deno.makeTempDirSync({ prefix: "heddle-test-state-" });
  return { HEDDLE_STATE_DIR: defaultState };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  stdin?: string;
  env?: Record<string, string>;
  cwd?: string;
}

export async function heddle(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, ...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...stateEnv(), ...options.env },
    cwd: options.cwd,
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code, stdout: decode(stdout), stderr: decode(stderr) };
}

/** Spawns `heddle` with piped output and returns the child, for long-running commands. */
export function spawnHeddle(args: string[], options: CliOptions = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...stateEnv(), ...options.env },
    cwd: options.cwd,
  }).spawn();
}

/** Reads a child's stream line by line until `match` matches a line; returns the match. */
export async function waitForLine(
  stream: ReadableStream<Uint8Array>,
  match: RegExp,
): Promise<RegExpExecArray> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended before a line matched ${match}; got:\n${buffer}`);
      buffer += value;
      const found = match.exec(buffer);
      if (found) return found;
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Collects a child's stream as text while it runs, so a test can wait for a line and still
 * read everything the process printed afterwards (its closing summary).
 */
export class StreamText {
  text = "";
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) this.text += chunk;
    })();
  }

  /** Resolves when the text so far matches; fails if the stream ends first. */
  async waitFor(match: RegExp): Promise<RegExpExecArray> {
    let ended = false;
    this.done.then(() => ended = true, () => ended = true);
    while (true) {
      const found = match.exec(this.text);
      if (found) return found;
      if (ended) throw new Error(`stream ended before ${match} matched; got:\n${this.text}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
