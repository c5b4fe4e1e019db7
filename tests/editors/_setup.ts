/**
 * What the editor setup tests (Neovim, Emacs) share: the program with a mistake they open,
 * the setup snippets read from docs/editors.md exactly as the page shows them, and a
 * temporary folder where a `heddle` on `bin/` runs this checkout, as `heddle` on PATH would.
 */
import assert from "node:assert/strict";

export const ROOT = new URL("../../", import.meta.url).pathname;

/** `file.wrte`: an error at line 5, column 10, with a did-you-mean. */
export const PROGRAM = `import "fhub/file" file

workflow W {
  file.read { path: "a.csv", format: "csv" }
  | file.wrte { path: "b.csv", format: "csv" }
}
`;

/** The first `lang` code block after the line of docs/editors.md that starts with `label`. */
export function docSnippet(label: string, lang: string): string {
  const doc = Deno.readTextFileSync(`${ROOT}docs/editors.md`);
  const at = doc.indexOf(`\n${label}`);
  assert.ok(at >= 0, `docs/editors.md has no "${label}" setup`);
  const block = new RegExp("```" + lang + "\\n([\\s\\S]*?)```").exec(doc.slice(at));
  assert.ok(block, `no ${lang} block after "${label}"`);
  return block[1];
}

/**
 * Runs `use` in a new folder holding `program.he`, `files` and `bin/heddle`; the folder is
 * removed afterwards. `path` is a PATH with that `bin/` first.
 */
export async function inEditorFolder<T>(
  files: Record<string, string>,
  use: (dir: string, path: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "heddle-editor-" });
  try {
    await Deno.mkdir(`${dir}/bin`);
    await Deno.writeTextFile(
      `${dir}/bin/heddle`,
      `#!/bin/sh\nexec "${Deno.execPath()}" run -A "${ROOT}cli/main.ts" "$@"\n`,
      { mode: 0o755 },
    );
    await Deno.writeTextFile(`${dir}/program.he`, PROGRAM);
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    return await use(dir, `${dir}/bin:${Deno.env.get("PATH")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
