/**
 * How the command line talks to people and to tools. Data goes to stdout, messages to
 * stderr; colour only when stderr is a terminal and `NO_COLOR` is unset (https://no-color.org).
 * Commands receive a `Terminal` instead of touching `Deno.stdout` so tests can capture output.
 */

export type OutputFormat = "text" | "json";

export interface Terminal {
  /** Writes data (results) to stdout. */
  out(text: string): void;
  /** Writes a message (progress, diagnostics for people, errors) to stderr. */
  err(text: string): void;
  /** Whether messages may use ANSI colour. */
  color: boolean;
  /** Whether stderr is an interactive terminal (progress may redraw lines). */
  interactive: boolean;
}

const encoder = new TextEncoder();

function writeAll(file: typeof Deno.stdout, text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
}

/** The terminal of this process. */
export function processTerminal(): Terminal {
  const interactive = Deno.stderr.isTerminal();
  return {
    out: (text) => writeAll(Deno.stdout, text),
    err: (text) => writeAll(Deno.stderr, text),
    color: interactive && !Deno.env.get("NO_COLOR"),
    interactive,
  };
}

/** Process exit codes, documented in docs/cli.md. */
export const ExitCode = {
  /** Everything worked. */
  ok: 0,
  /** The program has errors, or a run failed. */
  failure: 1,
  /** The command line was wrong: unknown option, missing argument, unreadable file. */
  usage: 2,
  /** A run was stopped on request (SIGINT, SIGTERM, `workflow stop`) and drained. */
  stopped: 3,
} as const;

/** A user-facing error that ends a command: printed as one line, never as a stack trace. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number = ExitCode.failure) {
    super(message);
  }
}

export function jsonLine(value: unknown): string {
  return JSON.stringify(value) + "\n";
}

/** Reads a file named on the command line, turning I/O failures into usage errors. */
export async function readSourceFile(path: string): Promise<string> {
  if (path === "-") return await new Response(Deno.stdin.readable).text();
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    const reason = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : e instanceof Error
      ? e.message
      : String(e);
    throw new CliError(`cannot read \`${path}\`: ${reason}`, ExitCode.usage);
  }
}
