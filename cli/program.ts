/**
 * The `heddle` command tree. Each subcommand lives in `commands/` and registers itself
 * here; this file only assembles them and sets the conventions every command shares
 * (usage errors exit 2, help on stdout, errors on stderr).
 *
 * Commands are imported lazily: a command line that names one loads only that command's
 * module, so `heddle check` never loads the runtime (gRPC, Arrow, connectors), which costs
 * more than checking a large program. Anything else (`--help`, an unknown name) loads all.
 */
import { Command, type CommandUnknownOpts } from "@commander-js/extra-typings";
import type { Terminal } from "./_terminal.ts";

export const VERSION = "0.1.0";

type MakeCommand = (term: Terminal, exit: { code: number }) => CommandUnknownOpts;

/** Each command's name and how to load it, in the order `--help` lists them. */
const COMMANDS: Array<[string, () => Promise<MakeCommand>]> = [
  ["check", async () => (await import("./commands/check.ts")).checkCommand],
  ["fmt", async () => (await import("./commands/fmt.ts")).fmtCommand],
  ["inspect", async () => (await import("./commands/inspect.ts")).inspectCommand],
  ["run", async () => (await import("./commands/run.ts")).runCommand],
  ["local", async () => (await import("./commands/node.ts")).localCommand],
  ["cluster", async () => (await import("./commands/node.ts")).clusterCommand],
  ["workflow", async () => (await import("./commands/workflow.ts")).workflowCommand],
  ["dev", async () => (await import("./commands/dev.ts")).devCommand],
  ["plugin", async () => (await import("./commands/plugin.ts")).pluginCommand],
];

/**
 * Builds the command tree for `args` (the command line after `heddle`); commands report
 * through `term` and set `exit.code`. Only the command `args` names is loaded, when it
 * names one: the tree is then complete for that command line, not for another.
 */
export async function buildProgram(
  term: Terminal,
  exit: { code: number },
  args?: readonly string[],
): Promise<Command> {
  const program = new Command("heddle")
    .description(
      "Heddle: a strictly typed dataflow language and the engine that runs it.\n" +
        "Docs: docs/cli.md, docs/language.md.",
    )
    .version(VERSION, "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({
      writeOut: (s) => term.out(s),
      writeErr: (s) => term.err(s),
      outputError: (s, write) => write(s.startsWith("error: ") ? `heddle: ${s.slice(7)}` : s),
    });
  // The top level takes no option with a value, so the first word that is not an option
  // is the command.
  const named = args?.find((a) => !a.startsWith("-"));
  const chosen = COMMANDS.filter(([name]) => name === named);
  for (const [, load] of chosen.length > 0 ? chosen : COMMANDS) {
    program.addCommand((await load())(term, exit));
  }
  return program;
}
