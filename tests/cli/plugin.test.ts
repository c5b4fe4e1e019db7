/**
 * `heddle plugin new` and `heddle plugin manifest` through the real command line: scaffolded
 * packages of every language have a manifest that `heddle check` accepts in a program that
 * imports them, existing directories and bad names are refused with one-line errors, and a
 * manifest regenerates from the package's code.
 */
import assert from "node:assert/strict";
import { heddle } from "../_cli.ts";

const program = (name: string) =>
  `import "fhub/file" file
import "${name}/transform" plugin

workflow W {
  file.read { path: "in.csv", format: "csv" }
  | (
    from input
    derive {value = amount * 2.0}
    select {value}
  )
  | plugin.double
  | file.write { path: "out.jsonl", format: "jsonl" }
}
`;

const short: Record<string, string> = { python: "py", typescript: "ts", go: "go", rust: "rs" };
for (const lang of ["python", "typescript", "go", "rust"]) {
  Deno.test(`heddle plugin new --lang ${lang} creates a package that heddle check accepts`, async () => {
    const dir = Deno.makeTempDirSync({ prefix: "heddle-cli-plugin-" });
    try {
      const name = `demo-${short[lang]}`;
      const made = await heddle(["plugin", "new", "--lang", lang, name, "--dir", dir]);
      assert.equal(made.code, 0, made.stderr);
      const files = made.stdout.trim().split("\n");
      assert.ok(files.includes(`${dir}/${name}/heddle.manifest.json`), made.stdout);
      assert.match(made.stderr, new RegExp(`created ${lang} plugin \`${name}\``));
      const manifest = JSON.parse(Deno.readTextFileSync(`${dir}/${name}/heddle.manifest.json`));
      assert.equal(manifest.runtime, lang);

      Deno.writeTextFileSync(`${dir}/main.he`, program(name));
      const checked = await heddle(["check", `${dir}/main.he`]);
      assert.equal(checked.code, 0, checked.stdout + checked.stderr);

      const regenerated = await heddle(["plugin", "manifest", `${dir}/${name}`, "-o", "json"]);
      assert.equal(regenerated.code, 0, regenerated.stderr);
      assert.deepEqual(JSON.parse(regenerated.stdout), {
        manifest: `${dir}/${name}/heddle.manifest.json`,
        changed: false,
      });
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
}

Deno.test("heddle plugin new refuses an existing directory and a bad name in one line", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "heddle-cli-plugin-" });
  try {
    Deno.mkdirSync(`${dir}/taken`);
    const taken = await heddle(["plugin", "new", "--lang", "python", "taken", "--dir", dir]);
    assert.equal(taken.code, 1);
    assert.equal(taken.stdout, "");
    assert.equal(taken.stderr.trim().split("\n").length, 1, taken.stderr);
    assert.match(taken.stderr, /cannot create `.*\/taken`: it already exists/);
    assert.deepEqual([...Deno.readDirSync(`${dir}/taken`)], [], "nothing written into it");

    const bad = await heddle(["plugin", "new", "--lang", "typescript", "Bad_Name", "--dir", dir]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /must be lowercase/);

    const noLang = await heddle(["plugin", "new", "x", "--dir", dir]);
    assert.equal(noLang.code, 2);
    assert.match(noLang.stderr, /--lang/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("heddle plugin manifest rewrites a stale manifest from the plugin's code", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "heddle-cli-plugin-" });
  try {
    assert.equal((await heddle(["plugin", "new", "-l", "typescript", "fresh", "-d", dir])).code, 0);
    const path = `${dir}/fresh/heddle.manifest.json`;
    const good = JSON.parse(Deno.readTextFileSync(path));
    Deno.writeTextFileSync(path, JSON.stringify({ ...good, modules: {} }));
    const result = await heddle(["plugin", "manifest", `${dir}/fresh`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), path);
    assert.match(result.stderr, /wrote/);
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(path)), good);

    const missing = await heddle(["plugin", "manifest", `${dir}/nowhere`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no such directory/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("heddle plugin --help shows an example", async () => {
  const help = await heddle(["plugin", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Example:\n {2}\$ heddle plugin new --lang python/);
});
