/**
 * docs/metrics.md lists exactly the metrics `/metrics` exports: a metric added without a
 * line in the doc, or a line left for a metric that is gone, fails here.
 */
import assert from "node:assert/strict";
import { Metrics } from "../../runtime/metrics/mod.ts";

Deno.test("docs/metrics.md lists exactly the registered metrics", async () => {
  const metrics = new Metrics({ control: { observe: () => () => {} } });
  const registered = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name).sort();
  metrics.close();
  const doc = await Deno.readTextFile(new URL("../../docs/metrics.md", import.meta.url));
  const documented = [...doc.matchAll(/^\| `(heddle_[a-z_]+)` \|/gm)].map((m) => m[1]).sort();
  assert.ok(registered.length >= 15, registered.join(", "));
  assert.ok(registered.every((name) => name.startsWith("heddle_")), registered.join(", "));
  assert.deepEqual(documented, registered);
});
