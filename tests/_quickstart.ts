/**
 * A private copy of the quickstart for tests that run it: outputs land in a fresh
 * directory instead of examples/data/out/, and its plugin is found through HEDDLE_PATH, as
 * a user's installed plugins would be.
 */
const examples = new URL("../examples/", import.meta.url).pathname;

/** The environment that finds the quickstart's plugin. */
export const quickstartEnv = { HEDDLE_PATH: `${examples}plugins` };

/** Copies the quickstart and its data into a fresh directory; returns the directory. */
export async function quickstartCopy(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "heddle-e2e-" });
  await Deno.mkdir(`${dir}/data`);
  for (const f of ["quickstart.he", "data/transactions.csv", "data/users.jsonl"]) {
    await Deno.copyFile(`${examples}${f}`, `${dir}/${f}`);
  }
  return dir;
}
