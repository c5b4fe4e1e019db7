/**
 * Reading a node's `/metrics` in the metrics tests: waiting for a line to appear, since
 * counters follow events and gauges are read at each scrape.
 */

/** Waits until `/metrics` of `node` (its UI origin) has a line matching `line`; returns it. */
export async function metricLine(
  node: { origin: string },
  auth: RequestInit,
  line: RegExp,
): Promise<string> {
  const deadline = Date.now() + 60_000;
  let text = "";
  while (Date.now() < deadline) {
    text = await (await fetch(`${node.origin}/metrics`, auth)).text();
    const found = text.match(line);
    if (found) return found[0];
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`no line matched ${line} in:\n${text}`);
}
