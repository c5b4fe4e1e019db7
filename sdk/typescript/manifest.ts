/**
 * `deno run -A sdk/typescript/manifest.ts <entry.ts> [--out FILE]`: prints (or writes) the
 * manifest of the plugin that `<entry.ts>` exports as `plugin`. It imports the entry but never
 * serves or runs a step, so generating a manifest has no side effects.
 */

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { manifestOf, type Plugin } from "./mod.ts";

/** The manifest text of the plugin exported by the module at `entry` (a file path). */
export async function manifestText(entry: string): Promise<string> {
  const module = await import(pathToFileURL(resolve(entry)).href);
  const plugin = module.plugin as Plugin | undefined;
  if (plugin === undefined || !(plugin.steps instanceof Map)) {
    throw new Error(`\`${entry}\` does not export \`plugin\` (made with definePlugin)`);
  }
  return JSON.stringify(manifestOf(plugin), null, 2) + "\n";
}

if (import.meta.main) {
  const [entry, flag, out] = Deno.args;
  if (!entry || (flag !== undefined && (flag !== "--out" || !out))) {
    console.error("usage: deno run -A sdk/typescript/manifest.ts <entry.ts> [--out FILE]");
    Deno.exit(2);
  }
  try {
    const text = await manifestText(entry);
    if (out) Deno.writeTextFileSync(out, text);
    else console.log(text.trimEnd());
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(1);
  }
}
