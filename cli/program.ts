/**
 * The `heddle` command tree. Each subcommand lives in `commands/` and registers itself
 * here; this file only assembles them and sets the conventions every command shares
 * (usage errors exit 2, help on stdout, errors on stderr).
 */
import { Command } from "@commander-js/extra-typings";
import type { Terminal } from "./_terminal.ts";
import { checkCommand } from "./commands/check.ts";
import { fmtCommand } from "./commands/fmt.ts";
import { inspectCommand } from "./commands/inspect.ts";
import { devCommand } from "./commands/dev.ts";
import { runCommand } from "./commands/run.ts";
import { clusterCommand, localCommand } from "./commands/node.ts";
import { workflowCommand } from "./commands/workflow.ts";
import { pluginCommand } from "./commands/plugin.ts";

export const VERSION = "0.1.0";

/** Builds the command tree; commands report through `term` and set `exit.code`. */
export function buildProgram(term: Terminal, exit: { code: number }): Command {
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
  for (
    const make of [
      checkCommand,
      fmtCommand,
      inspectCommand,
      runCommand,
      localCommand,
      clusterCommand,
      workflowCommand,
      devCommand,
      pluginCommand,
    ]
  ) {
    program.addCommand(make(term, exit));
  }
  return program;
}
