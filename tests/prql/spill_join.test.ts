/**
 * `heddle run` of blocks that join a PostgreSQL lookup before a group, a window or an
 * aggregate without keys, under a memory budget far below their input: the stage fetches its
 * lookup per batch and spills the joined rows by key (or folds them), and its output is
 * byte for byte the unbounded run's (which fetches the lookup once for the whole input),
 * with NULL and non-ASCII keys, keys the lookup lacks, and no spill file left behind.
 * Before, a block with a lookup join was not even treated as blocking: it grouped each
 * batch on its own.
 */
import { strict as assert } from "node:assert";
import { serviceConfig, serviceTest } from "../services/mod.ts";
import { withPostgres } from "../connectors/_databases.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const COUNTRIES = ["FR", "DE", "日本", "Ωmega", "US", "é"];

function files(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch {
    return [];
  }
}

function program(database: string): string {
  const p = serviceConfig.postgres;
  const read = `file.read { path: "in.jsonl", format: "jsonl" }: ` +
    `{ id: int64, user_id: int64?, amount: float64 }`;
  const block = (name: string, prql: string) =>
    `workflow ${name} {
  ${read}
  | (from input | ${prql})
  | file.write { path: "${name}.jsonl", format: "jsonl" }
}
`;
  return `import "fhub/file" file
import "fhub/postgresql" pg

resource pg_db = pg.connection {
  host: "${p.host}"
  port: ${p.port}
  user: "${p.user}"
  database: "${database}"
  password: secret("PG_PASSWORD")
}

step users = <connection=pg_db> pg.query {
  query: "SELECT id AS user_id, country, score FROM users WHERE id = @user_id"
}

${
    block(
      "ByCountry",
      "select {id, user_id, amount} | join side:left users (==user_id) | group {country} (aggregate {n = count this, total = sum amount, best = max score})",
    )
  }
${
    block(
      "Ranked",
      "select {id, user_id, amount} | join users (==user_id) | group {country} (sort {-amount, id} | derive {r = row_number this}) | filter r <= 50",
    )
  }
${
    block(
      "Total",
      "select {id, user_id, amount} | join users (==user_id) | aggregate {n = count this, total = sum amount, lo = min country}",
    )
  }
`;
}

serviceTest(
  "heddle run joins a lookup and groups, windows or aggregates more rows than its budget, exactly as in memory",
  ["postgres"],
  async () => {
    const users = Array.from(
      { length: 3_000 },
      (_, i) =>
        `(${i + 1}, ${i % 13 === 0 ? "NULL" : `'${COUNTRIES[(i * 7) % COUNTRIES.length]}'`}, ${
          (i * 37) % 1000 / 10
        })`,
    );
    await withPostgres([
      "CREATE TABLE users (id bigint PRIMARY KEY, country text, score double precision)",
      `INSERT INTO users VALUES ${users.join(", ")}`,
    ], async (database) => {
      const dir = await Deno.makeTempDir({ prefix: "heddle-spill-join-" });
      try {
        const lines = Array.from({ length: 60_000 }, (_, k) =>
          JSON.stringify({
            id: k,
            user_id: k % 17 === 0 ? null : 1 + (k * 7919) % 3_500,
            amount: ((k * 104_729) % 10_007) / 10,
          }));
        await Deno.writeTextFile(`${dir}/in.jsonl`, lines.join("\n") + "\n");
        await Deno.writeTextFile(`${dir}/join.he`, program(database));
        const spill = `${dir}/heddle-spill-${Deno.uid()}`;
        const seen = new Set<string>();
        const run = async (workflow: string, budget: string[]) => {
          const watch = setInterval(() => {
            for (const f of files(spill)) seen.add(f.replace(/-\d+\.arrow$/, ""));
          }, 5);
          const out = await new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", `${ROOT}cli/main.ts`, "run", "join.he", "-w", workflow, ...budget],
            cwd: dir,
            env: { TMPDIR: dir, PG_PASSWORD: serviceConfig.postgres.password },
            stdout: "piped",
            stderr: "piped",
          }).output().finally(() => clearInterval(watch));
          assert.equal(out.code, 0, new TextDecoder().decode(out.stderr).slice(-2000));
          const text = await Deno.readTextFile(`${dir}/${workflow}.jsonl`);
          await Deno.remove(`${dir}/${workflow}.jsonl`);
          return text;
        };
        for (const [workflow, rows] of [["ByCountry", 7], ["Ranked", 350], ["Total", 1]] as const) {
          const free = await run(workflow, []);
          assert.equal(seen.size, 0, "the unbounded run spilled");
          const bounded = await run(workflow, ["--memory-budget", "1000000"]);
          assert.equal(free.trim().split("\n").length, rows, `${workflow}: ${free.slice(0, 300)}`);
          assert.equal(bounded, free, workflow);
          const spilled = [...seen].some((f) => f.startsWith("heddle-part-"));
          assert.equal(spilled, workflow !== "Total", `${workflow}: ${[...seen]}`);
          seen.clear();
          assert.deepEqual(files(spill), []);
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
