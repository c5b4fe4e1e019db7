/**
 * The PRQL blocks the tests of Heddle's own PRQL parsing and lowering compare with prql-js:
 * every block of a program's text, and the blocks of the examples and test corpora.
 */
import { parse } from "../../compiler/syntax/mod.ts";
import { normalise } from "../../compiler/types/_prql_lower.ts";
import { corpus } from "../_expect.ts";

/** The text of every PRQL block in `source`, as the compiler hands it to prql-js. */
export function blocks(source: string): string[] {
  const out: string[] = [];
  const walk = (node: unknown) => {
    if (!node || typeof node !== "object") return;
    if (Array.isArray(node)) return node.forEach(walk);
    const n = node as Record<string, unknown>;
    if (n.kind === "Prql" && typeof n.text === "string") out.push(normalise(n.text));
    Object.values(n).forEach(walk);
  };
  walk(parse(source).value);
  return out;
}

/** Every distinct PRQL block of the examples and of the ok, err and contract corpora. */
export function corpusBlocks(): string[] {
  const examples = [...Deno.readDirSync(new URL("../../examples/", import.meta.url))]
    .filter((e) => e.name.endsWith(".he"))
    .map((e) => Deno.readTextFileSync(new URL(`../../examples/${e.name}`, import.meta.url)));
  const sources = [
    ...examples,
    ...corpus("ok").map((f) => f.source),
    ...corpus("err").map((f) => f.source),
    ...corpus("err/contracts").map((f) => f.source),
  ];
  return [...new Set(sources.flatMap(blocks))];
}
