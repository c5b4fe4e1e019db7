/**
 * Options shared by several commands, defined once so that every command spells and
 * validates them the same way.
 */
import { Option } from "@commander-js/extra-typings";

/** `--output text|json`: how a reporting command prints its results. */
export function outputOption() {
  return new Option("-o, --output <format>", "output format").choices(["text", "json"] as const)
    .default("text" as const);
}

/** Appends a worked example to a command's `--help`. */
export function example(...lines: string[]): string {
  return `\nExample:\n${lines.map((l) => `  $ ${l}`).join("\n")}\n`;
}
