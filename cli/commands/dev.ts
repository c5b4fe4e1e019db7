/**
 * `heddle dev`: the developer servers that editors launch. `--lsp` serves the Language
 * Server Protocol on stdio (see docs/lsp.md); `--dap` the Debug Adapter Protocol (see
 * docs/editors.md). Once a server runs, stdout belongs to the protocol: nothing else may
 * write there.
 */
import { Command } from "@commander-js/extra-typings";
import { ExitCode, type Terminal } from "../_terminal.ts";
import { example } from "../_options.ts";

export function devCommand(term: Terminal, exit: { code: number }) {
  return new Command("dev")
    .description(
      "Run the developer servers that editors use: the language server (LSP) or the debugger (DAP).",
    )
    .option("--lsp", "serve the Language Server Protocol")
    .option("--stdio", "talk over standard input and output (the default transport)")
    .option("--dap", "serve the Debug Adapter Protocol")
    .addHelpText("after", example("heddle dev --lsp --stdio", "heddle dev --dap"))
    .action(async (options) => {
      if (options.dap && options.lsp) {
        term.err("heddle: choose one server: --lsp or --dap\n");
        exit.code = ExitCode.usage;
        return;
      }
      if (options.dap) {
        const { serveDebugAdapter } = await import("../dap/mod.ts");
        exit.code = await serveDebugAdapter();
        return;
      }
      if (!options.lsp) {
        term.err("heddle: choose a server: `heddle dev --lsp --stdio` or `heddle dev --dap`\n");
        exit.code = ExitCode.usage;
        return;
      }
      // Loaded on demand, so that other commands never pay for the protocol library.
      const { startLanguageServer } = await import("../lsp.ts");
      await startLanguageServer({ heddlePath: Deno.env.get("HEDDLE_PATH") ?? undefined });
    });
}
