/**
 * `heddle inspect`: shows what the compiler made of a program, one representation at a
 * time: the syntax tree (`--ast`), the optimised IR with every optimisation decision
 * (`--ir`), as text for people, JSON for tools, or a graph picture (dot, mermaid), or a
 * workflow's stage groups and where a control plane would place them (`--plan`).
 */
import { Command, Option } from "@commander-js/extra-typings";
import { irToDot, irToJson, irToMermaid, irToText } from "../../compiler/mod.ts";
import { CliError, ExitCode, jsonLine, readSourceFile, type Terminal } from "../_terminal.ts";
import { example, outputOption } from "../_options.ts";
import { reportDiagnostics } from "../_report.ts";
import { treeToText } from "../_tree.ts";
import { compileSource } from "../_compile.ts";
import { place, PlacementError } from "../../runtime/control/mod.ts";
import { withCredentialOptions } from "../_credentials.ts";
import { placementText } from "../_placement.ts";
import { withServer } from "./workflow.ts";

export function inspectCommand(term: Terminal, exit: { code: number }) {
  return withCredentialOptions(
    new Command("inspect")
      .description(
        "Show a program's syntax tree (--ast), optimised IR (--ir) or stage placement (--plan).",
      )
      .argument("<file>", "program to inspect")
      .option("--ast", "print the syntax tree")
      .option("--ir", "print the optimised IR and the optimiser's decisions")
      .option(
        "--plan",
        "print the workflow's stage groups; with --server, the workers the control plane " +
          "would place them on (the workflow as deployed there)",
      )
      .option("--workflow <name>", "with --plan: the workflow (default: the program's only one)")
      .option(
        "--server <addresses>",
        "with --plan: the control plane to ask (several, comma-separated: the one that leads)",
      ),
  )
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
        "heddle inspect --plan --server 10.0.0.1:7447 examples/fraud_detection.he",
      ),
    )
    .action(async (file, options) => {
      if ([options.ast, options.ir, options.plan].filter((o) => o).length !== 1) {
        throw new CliError("say what to inspect: --ast, --ir or --plan", ExitCode.usage);
      }
      const source = await readSourceFile(file);
      const { value, diagnostics } = compileSource(source, file);
      if (options.plan && value.optimised) {
        const ir = value.optimised;
        const workflows = ir.graphs.filter((g) => g.kind === "workflow").map((g) => g.name);
        const workflow = options.workflow ?? (workflows.length === 1 ? workflows[0] : null);
        if (workflow === null || !workflows.includes(workflow)) {
          throw new CliError(
            `name the workflow with --workflow (the program has: ${
              workflows.join(", ") || "none"
            })`,
            ExitCode.usage,
          );
        }
        let placement;
        if (options.server) {
          const server = { ...options, server: options.server };
          placement = JSON.parse(await withServer(server, (api) => api.planRun(workflow)));
        } else {
          try {
            placement = place(ir, workflow, null);
          } catch (e) {
            if (e instanceof PlacementError) throw new CliError(e.message);
            throw e;
          }
        }
        if (options.output === "json") term.out(jsonLine(placement));
        else term.out(placementText(placement));
      } else if (options.ast) {
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
