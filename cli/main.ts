/**
 * Entry point of the `heddle` binary and of `deno task heddle`: both run exactly this, so
 * the compiled binary and the source tree behave the same. Every failure a user can cause
 * ends here as one line on stderr and a documented exit code, never a stack trace.
 */
import { CommanderError, type CommandUnknownOpts } from "@commander-js/extra-typings";
import { buildProgram } from "./program.ts";
import { CliError, ExitCode, processTerminal, type Terminal } from "./_terminal.ts";

/** Runs the command line with `args` and returns the process exit code. */
export async function main(args: string[], term: Terminal = processTerminal()): Promise<number> {
  const exit = { code: ExitCode.ok };
  const program = await buildProgram(term, exit, args);
  // Nested commands (`workflow runs`) too: a usage error anywhere exits 2, not commander's 1.
  const override = (command: CommandUnknownOpts) => {
    command.exitOverride();
    command.commands.forEach(override);
  };
  override(program);
  try {
    await program.parseAsync(args, { from: "user" });
    return exit.code;
  } catch (e) {
    if (e instanceof CommanderError) {
      const helpShown = e.code === "commander.helpDisplayed" || e.code === "commander.version" ||
        e.code === "commander.help";
      return helpShown ? ExitCode.ok : ExitCode.usage;
    }
    if (e instanceof CliError) {
      term.err(`heddle: ${e.message}\n`);
      return e.exitCode;
    }
    // Anything else is a bug in Heddle, not a user error: say so plainly, keep the trace.
    term.err(`heddle: internal error: ${e instanceof Error ? e.stack ?? e.message : e}\n`);
    term.err("This is a bug in Heddle; please report it with the command you ran.\n");
    return 70;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
