/**
 * The Debug Adapter Protocol server behind `heddle dev --dap`: reads requests from stdin,
 * answers on stdout, and leaves what a request means to the session (`_session.ts`). It
 * speaks the protocol directly (a few dozen lines of framing and dispatch) rather than
 * through `@vscode/debugadapter`, whose Node stream plumbing buys nothing here. Stdout
 * carries the protocol, so nothing else may write there, and no request may crash the
 * server: a user mistake is a failed response with a message, anything else is logged.
 */
import { frame, framedMessages } from "../framing.ts";
import { type LaunchArguments, RequestError, Session } from "./_session.ts";

interface Request {
  seq: number;
  type: "request";
  command: string;
  arguments?: Record<string, unknown>;
}

/**
 * Serves one debug session on stdin/stdout; resolves with the process exit code once the
 * client disconnected (or stdin closed) and the run has drained.
 */
export async function serveDebugAdapter(): Promise<number> {
  // Stdout carries the protocol: a stray log line there would corrupt a message.
  console.log = console.info = console.debug = console.error;
  const writer = Deno.stdout.writable.getWriter();
  let seq = 1;
  let writing = Promise.resolve();
  const send = (message: Record<string, unknown>) => {
    const bytes = frame({ seq: seq++, ...message });
    writing = writing.then(() => writer.write(bytes)).catch(() => {});
    return writing;
  };
  const session = new Session((event, body) => send({ type: "event", event, body }));

  for await (const message of framedMessages(Deno.stdin.readable)) {
    const request = message as Request;
    if (request?.type !== "request") continue;
    const args = request.arguments ?? {};
    const reply = (success: boolean, body?: unknown, error?: string) =>
      send({
        type: "response",
        request_seq: request.seq,
        command: request.command,
        success,
        ...(body !== undefined ? { body } : {}),
        ...(error !== undefined ? { message: error } : {}),
      });
    try {
      if (request.command === "disconnect" || request.command === "terminate") {
        session.stop();
        // Answer once the run has drained, so the client knows its outputs are complete.
        await session.ended;
        await reply(true);
        if (request.command === "disconnect") break;
        continue;
      }
      const body = await handle(session, request.command, args);
      await reply(true, body);
      // DAP: `initialized` follows the launch response; the client then sets breakpoints.
      if (request.command === "launch") await send({ type: "event", event: "initialized" });
    } catch (e) {
      if (!(e instanceof RequestError)) {
        console.error(`heddle: debug request ${request.command} failed:`, e);
      }
      await reply(false, undefined, e instanceof Error ? e.message : String(e));
    }
  }
  session.stop();
  const code = await session.ended;
  await writing;
  return code;
}

type Args = Record<string, unknown>;

async function handle(session: Session, command: string, args: Args): Promise<unknown> {
  const thread = () => Number(args.threadId);
  switch (command) {
    case "initialize":
      return session.initialize(args as { linesStartAt1?: boolean });
    case "launch":
      await session.launch(args as unknown as LaunchArguments);
      return undefined;
    case "setBreakpoints": {
      const source = args.source as { path?: string } | undefined;
      const breakpoints = session.setBreakpoints(
        source?.path,
        (args.breakpoints as Array<{ line: number; condition?: string }>) ?? [],
      );
      return { breakpoints };
    }
    case "setExceptionBreakpoints":
      return { breakpoints: [] };
    case "configurationDone":
      session.configurationDone();
      return undefined;
    case "threads":
      return { threads: session.threads() };
    case "stackTrace":
      return session.stackTrace(thread());
    case "scopes":
      return { scopes: session.scopes(Number(args.frameId)) };
    case "variables":
      return { variables: session.variables(Number(args.variablesReference)) };
    case "evaluate":
      return session.evaluate(
        String(args.expression ?? ""),
        args.frameId === undefined ? undefined : Number(args.frameId),
      );
    case "continue":
      return {
        allThreadsContinued: session.continue(
          args.threadId === undefined ? undefined : thread(),
          args.singleThread === true,
        ),
      };
    case "next":
    case "stepIn":
      session.next(thread(), args.singleThread === true);
      return undefined;
    case "stepOut":
      session.continue(thread(), args.singleThread === true);
      return undefined;
    case "pause":
      session.pause();
      return undefined;
    default:
      throw new RequestError(`the Heddle debugger does not support \`${command}\``);
  }
}
