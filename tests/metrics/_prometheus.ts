/**
 * A real Prometheus (Debian's `prometheus`, installed by `.ci/run`) started by the test
 * itself with a temporary config that scrapes one target every second, with the node's
 * token as its bearer credentials, and keeps its data in a temporary directory. It listens
 * on a free loopback port and is stopped when the test ends.
 */
import { freePort } from "../e2e/_fixtures.ts";

export const PROMETHEUS = Deno.env.get("HEDDLE_PROMETHEUS") ?? "/usr/bin/prometheus";

export interface Prometheus {
  /** Runs an instant PromQL query; returns the result vector's samples. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  stop(): Promise<void>;
}

/** Starts Prometheus scraping `target` (`host:port`) with `token` as bearer credentials. */
export async function startPrometheus(target: string, token: string): Promise<Prometheus> {
  const dir = await Deno.makeTempDir({ prefix: "heddle-prometheus-" });
  await Deno.writeTextFile(`${dir}/token`, token);
  await Deno.writeTextFile(
    `${dir}/prometheus.yml`,
    [
      "global:",
      "  scrape_interval: 1s",
      "scrape_configs:",
      "  - job_name: heddle",
      "    authorization:",
      `      credentials_file: ${dir}/token`,
      "    static_configs:",
      `      - targets: ["${target}"]`,
      "",
    ].join("\n"),
  );
  const port = freePort();
  const child = new Deno.Command(PROMETHEUS, {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  const logged = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) log.push(chunk);
  })();
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (true) {
    const ready = await fetch(`${base}/-/ready`).then(async (r) => (await r.body?.cancel(), r.ok))
      .catch(() => false);
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill();
      throw new Error(`prometheus did not get ready:\n${log.join("")}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    async query(promql) {
      const response = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = await response.json();
      if (body.status !== "success") throw new Error(`query failed: ${JSON.stringify(body)}`);
      return body.data.result;
    },
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await logged;
      await Deno.remove(dir, { recursive: true });
    },
  };
}
