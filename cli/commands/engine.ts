/**
 * The commands whose engine is still being built. Each has its real name, arguments and
 * help, and says in one line that it cannot run yet (exit 2): nothing pretends to work.
 */
import { Command } from "@commander-js/extra-typings";
import { CliError, ExitCode, type Terminal } from "../_terminal.ts";
import { example } from "../_options.ts";

function notYet(name: string): never {
  throw new CliError(
    `\`heddle ${name}\`: the engine for this command does not exist yet`,
    ExitCode.usage,
  );
}

const specs: { name: string; description: string; args: string; example: string }[] = [
  {
    name: "dev",
    description: "Start the developer servers: the LSP and the DAP.",
    args: "",
    example: "heddle dev --lsp --stdio",
  },
];

export const engineCommands = specs.map((spec) => (_term: Terminal, _exit: { code: number }) => {
  const command = new Command(spec.name).description(spec.description)
    .addHelpText("after", example(spec.example))
    .allowUnknownOption()
    .allowExcessArguments();
  if (spec.args) command.argument(spec.args);
  return command.action(() => notYet(spec.name));
});
