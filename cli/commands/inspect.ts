/**
 * `heddle inspect`: shows what the compiler made of a program, one representation at a
 * time: the syntax tree (`--ast`) or the optimised IR with every optimisation decision
 * (`--ir`), as text for people, JSON for tools, or a graph picture (dot, mermaid).
 */
import { Command, Option } from "@commander-js/extra-typings";
import { irToDot, irToJson, irToMermaid, irToText } from "../../compiler/mod.ts";
import { CliError, ExitCode, jsonLine, readSourceFile, type Terminal } from "../_terminal.ts";
import { example, outputOption } from "../_options.ts";
import { reportDiagnostics } from "../_report.ts";
import { treeToText } from "../_tree.ts";
import { compileSource } from "../_compile.ts";

export function inspectCommand(term: Terminal, exit: { code: number }) {
  return new Command("inspect")
    .description("Show a program's syntax tree (--ast) or optimised IR (--ir).")
    .argument("<file>", "program to inspect")
    .option("--ast", "print the syntax tree")
    .option("--ir", "print the optimised IR and the optimiser's decisions")
    .addOption(
      new Option("--graph <kind>", "with --ir: draw the DAG instead").choices(
        ["dot", "mermaid"] as const,
      ),
    )
    .addOption(outputOption())
    .addHelpText(
      "after",
      example(
        "heddle inspect --ast examples/fraud_detection.he",
        "heddle inspect --ir --graph mermaid examples/fraud_detection.he",
      ),
    )
    .action(async (file, options) => {
      if (options.ast === options.ir) {
        throw new CliError("say what to inspect: --ast or --ir", ExitCode.usage);
      }
      const source = await readSourceFile(file);
      const { value, diagnostics } = compileSource(source, file);
      if (options.ast) {
        if (options.output === "json") term.out(jsonLine({ ast: value.ast }));
        else term.out(treeToText(value.ast));
      } else if (value.optimised) {
        const ir = value.optimised;
        if (options.graph === "dot") term.out(irToDot(ir));
        else if (options.graph === "mermaid") term.out(irToMermaid(ir));
        else if (options.output === "json") term.out(irToJson(ir));
        else term.out(irToText(ir));
      }
      if (diagnostics.length > 0) {
        exit.code = reportDiagnostics(term, [{ file, source, diagnostics }], "text");
      }
    });
}
