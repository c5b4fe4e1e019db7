/**
 * Runs inside a private mount namespace whose /dev/shm is a 64 KiB tmpfs (see
 * no_space.test.ts): puts an object too big for it and prints, as one JSON line, what the
 * registry did. With a roomy spill directory the object must land there; with a full one the
 * put must fail with `no-space`.
 *
 * Usage: deno run -A _no_space_child.ts <spillDir>
 */

import { tableFromArrays } from "apache-arrow";
import { Registry, RegistryError, writeSegment } from "../../runtime/registry/mod.ts";

const [spillDir] = Deno.args;
const registry = new Registry({ prefix: "heddle-nospace", spillDir });
const big = tableFromArrays({ v: Float64Array.from({ length: 20_000 }, (_, i) => i) });
const report: Record<string, unknown> = {};
try {
  const handle = registry.put(big, 1);
  using lease = registry.open(handle.id);
  report.put = {
    state: registry.state(handle.id),
    segment: handle.segment,
    sum: lease.table.getChild("v")!.toArray().reduce((a: number, b: number) => a + b, 0),
  };
  registry.release(handle.id);
} catch (error) {
  report.put = {
    code: error instanceof RegistryError ? error.code : "other",
    message: String(error),
  };
}
try {
  writeSegment("/heddle-nospace-sdk-1", big);
  report.writeSegment = "written";
} catch (error) {
  report.writeSegment = error instanceof RegistryError ? error.code : String(error);
}
registry.close();
console.log(JSON.stringify(report));
