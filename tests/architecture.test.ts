/**
 * The architecture's invariants, read from the code itself (as rust-analyzer does): the
 * compiler's phases import one way, the compiler knows nothing of the runtime, the CLI or
 * the LSP, and a folder's private `_files` are used only inside that folder.
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url).pathname;

/** Compiler folders in phase order: a folder may import only folders at or before it. */
const compilerOrder = [
  "diagnostics",
  "syntax",
  "modules",
  "resolve",
  "types",
  "ir",
  "optimise",
  "service",
];

interface Import {
  from: string;
  to: string;
}

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(root + dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory && entry.name !== "node_modules" && !entry.name.startsWith(".")) {
      yield* sourceFiles(path);
    } else if (entry.isFile && /\.tsx?$/.test(entry.name)) yield path;
  }
}

async function importsOf(dirs: string[]): Promise<Import[]> {
  const found: Import[] = [];
  for (const dir of dirs) {
    const exists = await Deno.stat(root + dir).then(() => true, () => false);
    if (!exists) continue;
    for await (const file of sourceFiles(dir)) {
      const text = await Deno.readTextFile(root + file);
      for (const m of text.matchAll(/(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/g)) {
        const target = new URL(m[1], `file:///${file}`).pathname.slice(1);
        found.push({ from: file, to: target });
      }
    }
  }
  return found;
}

function folderOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}

Deno.test("the compiler imports nothing from the runtime, the CLI or the SDKs", async () => {
  const bad = (await importsOf(["compiler"])).filter((i) => !i.to.startsWith("compiler/"));
  assert.deepEqual(bad, []);
});

Deno.test("compiler phases import only earlier phases", async () => {
  const rank = (path: string) => compilerOrder.indexOf(path.split("/")[1]);
  const bad = (await importsOf(["compiler"])).filter((i) =>
    rank(i.from) >= 0 && rank(i.to) > rank(i.from)
  );
  assert.deepEqual(bad, []);
});

Deno.test("the runtime uses only the compiler's public entry points", async () => {
  const bad = (await importsOf(["runtime", "cli"])).filter((i) =>
    i.to.startsWith("compiler/") && !/^compiler\/([a-z_]+\/)?mod\.ts$/.test(i.to) &&
    !i.to.endsWith("/ast.ts") && !i.to.endsWith("/_types.ts")
  );
  assert.deepEqual(bad, []);
});

Deno.test("private _files are imported only from their own folder tree", async () => {
  const all = await importsOf(["compiler", "runtime", "cli", "sdk", "bench"]);
  const bad = all.filter((i) => {
    const name = i.to.slice(i.to.lastIndexOf("/") + 1);
    // _types.ts holds shared type declarations and is public by design.
    return name.startsWith("_") && name !== "_types.ts" && !i.from.startsWith(folderOf(i.to));
  });
  assert.deepEqual(bad, []);
});

Deno.test("no code or test reads a file by an absolute path outside the repository", async () => {
  // A checkout can live anywhere, so a literal rooted at the original machine's layout (or any
  // /home, /work, /root) works on one machine only.
  const bad: string[] = [];
  for (const dir of ["compiler", "runtime", "cli", "sdk", "bench", "tests"]) {
    for await (const file of sourceFiles(dir)) {
      const text = await Deno.readTextFile(root + file);
      for (const m of text.matchAll(/["'`](\/(?:work|home|root)\/[^"'`]*)["'`]/g)) {
        bad.push(`${file}: ${m[1]}`);
      }
    }
  }
  assert.deepEqual(bad, []);
});

Deno.test("prql-js is imported only by the guard that replaces a crashed instance", async () => {
  const bad: string[] = [];
  for (const dir of ["compiler", "runtime", "cli", "sdk", "bench"]) {
    for await (const file of sourceFiles(dir)) {
      if (file === "compiler/types/_prqlc.ts") continue;
      const text = await Deno.readTextFile(root + file);
      if (/from\s+"prql-js"|import\(\s*"prql-js"\s*\)|require\([^)]*"prql-js"/.test(text)) {
        bad.push(file);
      }
    }
  }
  assert.deepEqual(bad, []);
});
