/**
 * A registry process for the janitor tests: it stores a spilled object, two resident ones
 * and a pooled segment (the segment pool is on, as in `heddle run`) under the given prefix,
 * prints "ready <owner number>", then ends the way the test asks (waits to be
 * killed, throws, or simply finishes). It must never clean up other than through the
 * registry's own exit handling, since that handling is what the tests check.
 *
 * Usage: deno run -A _child.ts <prefix> <spillDir> <wait|wait-cleanup|throw|finish|plugins>
 * [owner number to ask for] ("plugins" also starts a plugin host, whose socket directory the
 * janitor must clean).
 */

import { tableFromArrays } from "apache-arrow";
import { installExitCleanup, Registry } from "../../runtime/registry/mod.ts";
import { PluginHost } from "../../runtime/plugins/mod.ts";

const [prefix, spillDir, mode, wanted] = Deno.args;
const registry = new Registry({
  prefix,
  spillDir,
  memoryBudget: 50_000,
  ownerPid: wanted === undefined ? undefined : Number(wanted),
  pool: true,
});
if (mode !== "wait" && mode !== "plugins") installExitCleanup(registry);
if (mode === "plugins") new PluginHost({ registry, search: { programDir: ".", modulePath: [] } });

// The big object alone exceeds the budget, so it spills; the small ones stay resident.
registry.put(tableFromArrays({ v: new Float64Array(10_000) }), 1);
registry.put(tableFromArrays({ s: ["a", "b"] }), 1);
registry.put(tableFromArrays({ n: Int32Array.from([1, 2, 3]) }), 1);
// Released by its consumer: renamed into the pool, not removed.
registry.release(registry.put(tableFromArrays({ p: Int32Array.from([9]) }), 1).id);
console.log(`ready ${registry.ownerPid}`);

if (mode === "throw") {
  setTimeout(() => {
    throw new Error("an uncaught failure in a stage");
  }, 10);
}
if (mode === "wait" || mode === "wait-cleanup" || mode === "plugins") setInterval(() => {}, 1000);
