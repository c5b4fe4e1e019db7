/**
 * A registry process for the janitor tests: it stores a spilled object and two resident
 * ones under the given prefix, prints "ready", then ends the way the test asks (waits to be
 * killed, throws, or simply finishes). It must never clean up other than through the
 * registry's own exit handling, since that handling is what the tests check.
 *
 * Usage: deno run -A _child.ts <prefix> <spillDir> <wait|wait-cleanup|throw|finish>
 */

import { tableFromArrays } from "apache-arrow";
import { installExitCleanup, Registry } from "../../runtime/registry/mod.ts";

const [prefix, spillDir, mode] = Deno.args;
const registry = new Registry({ prefix, spillDir, memoryBudget: 50_000 });
if (mode !== "wait") installExitCleanup(registry);

// The big object alone exceeds the budget, so it spills; the small ones stay resident.
registry.put(tableFromArrays({ v: new Float64Array(10_000) }), 1);
registry.put(tableFromArrays({ s: ["a", "b"] }), 1);
registry.put(tableFromArrays({ n: Int32Array.from([1, 2, 3]) }), 1);
console.log("ready");

if (mode === "throw") {
  setTimeout(() => {
    throw new Error("an uncaught failure in a stage");
  }, 10);
}
if (mode === "wait" || mode === "wait-cleanup") setInterval(() => {}, 1000);
