/**
 * `heddle plugin new|manifest`: creates a plugin package that a worker can run as it is
 * (runtime/plugins `scaffoldPlugin`), and regenerates a package's heddle.manifest.json from
 * its code with the package's own SDK (TypeScript: sdk/typescript/manifest.ts; Python:
 * `python3 -m heddle_sdk manifest`), so that the manifest the compiler reads never drifts from
 * the steps the plugin serves. Paths go to stdout, messages to stderr. It must never write into
 * an existing package directory, and never leave a half-written manifest behind.
 */
import { Command, Option } from "@commander-js/extra-typings";
import { join, resolve } from "node:path";
import { MANIFEST_FILE } from "../../compiler/modules/mod.ts";
import { buildCacheRoot, pluginAssets, scaffoldPlugin } from "../../runtime/plugins/mod.ts";
import { manifestText } from "../../sdk/typescript/manifest.ts";
import { CliError, ExitCode, jsonLine, type Terminal } from "../_terminal.ts";
import { example, outputOption } from "../_options.ts";

export function pluginCommand(term: Terminal, exit: { code: number }) {
  const plugin = new Command("plugin")
    .description("Create plugin packages and keep their manifests in step with their code.")
    // The program configures its direct commands (exit codes, output) after this returns:
    // hand those settings down when a subcommand is chosen.
    .hook("preSubcommand", (self, sub) => {
      sub.copyInheritedSettings(self);
    })
    .addHelpText(
      "after",
      example(
        "heddle plugin new --lang python fraud-score --dir plugins",
        "heddle plugin manifest plugins/fraud-score",
      ),
    );

  plugin.addCommand(
    new Command("new")
      .description("Create a plugin package with one sample step, its manifest and a test.")
      .argument("<name>", "the package name: lowercase words joined by dashes (fraud-score)")
      .addOption(
        new Option("-l, --lang <language>", "the plugin's language")
          .choices(["python", "typescript", "go", "rust"] as const)
          .makeOptionMandatory(),
      )
      .option("-d, --dir <dir>", "where to create the package folder", ".")
      .addOption(outputOption())
      .addHelpText(
        "after",
        example(
          "heddle plugin new --lang typescript enrich --dir plugins\n" +
            '  # then: import "enrich/transform" enrich   (in a program next to plugins/)',
        ),
      )
      .action((name, options) => {
        if (!isDirectory(options.dir)) {
          throw new CliError(`cannot create a plugin in \`${options.dir}\`: no such directory`);
        }
        const made = scaffoldPlugin({ lang: options.lang, name, dir: options.dir });
        if (!made.ok) {
          const usage = made.message.includes("must be lowercase");
          throw new CliError(made.message, usage ? ExitCode.usage : ExitCode.failure);
        }
        if (options.output === "json") {
          term.out(jsonLine({ dir: made.dir, lang: options.lang, files: made.files }));
        } else {
          for (const f of made.files) term.out(`${join(made.dir, f)}\n`);
          term.err(
            `created ${options.lang} plugin \`${name}\` in ${made.dir}; ` +
              `import its steps as "${name}/transform"\n`,
          );
        }
        exit.code = ExitCode.ok;
      }),
  );

  plugin.addCommand(
    new Command("manifest")
      .description(`Regenerate a plugin package's ${MANIFEST_FILE} from its code.`)
      .argument("<dir>", "the plugin package directory")
      .addOption(outputOption())
      .addHelpText("after", example("heddle plugin manifest examples/plugins/ts-enrich"))
      .action(async (dir, options) => {
        if (!isDirectory(dir)) {
          throw new CliError(`\`${dir}\` is not a plugin directory: no such directory`, 2);
        }
        const path = join(dir, MANIFEST_FILE);
        const before = readOrNull(path);
        const text = await generate(resolve(dir), before);
        Deno.writeTextFileSync(`${path}.tmp`, text);
        Deno.renameSync(`${path}.tmp`, path);
        const changed = before === null || !sameJson(before, text);
        if (options.output === "json") {
          term.out(jsonLine({ manifest: path, changed }));
        } else {
          term.out(`${path}\n`);
          term.err(changed ? `wrote ${path}\n` : `${path} was already up to date\n`);
        }
        exit.code = ExitCode.ok;
      }),
  );
  return plugin;
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function readOrNull(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/** Equal as JSON values: SDKs order object keys differently (Go sorts them), arrays not. */
function sameJson(a: string, b: string): boolean {
  const sorted = (_key: string, value: unknown) =>
    value && typeof value === "object" && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([x], [y]) => x < y ? -1 : x > y ? 1 : 0))
      : value;
  try {
    return JSON.stringify(JSON.parse(a), sorted) === JSON.stringify(JSON.parse(b), sorted);
  } catch {
    return false;
  }
}

/**
 * The package's language and entry: from its current manifest when it has one, else from its
 * files (`main.ts`, or a Python package with a `__main__.py`).
 */
function entryOf(dir: string, manifest: string | null): { lang: string; entry: string } {
  if (manifest !== null) {
    try {
      const parsed = JSON.parse(manifest);
      const entry: string[] = parsed.entry ?? [];
      if (parsed.runtime === "typescript") return { lang: "typescript", entry: entry.at(-1)! };
      if (parsed.runtime === "python") return { lang: "python", entry: entry.at(-1)! };
      if (parsed.runtime === "go" || parsed.runtime === "rust") {
        return { lang: parsed.runtime, entry: "" };
      }
    } catch {
      // A broken manifest is what regeneration is for: fall back to the files.
    }
  }
  if (readOrNull(join(dir, "go.mod")) !== null) return { lang: "go", entry: "" };
  if (readOrNull(join(dir, "Cargo.toml")) !== null) return { lang: "rust", entry: "" };
  if (isDirectory(dir) && readOrNull(join(dir, "main.ts")) !== null) {
    return { lang: "typescript", entry: "main.ts" };
  }
  for (const e of Deno.readDirSync(dir)) {
    if (e.isDirectory && readOrNull(join(dir, e.name, "__main__.py")) !== null) {
      return { lang: "python", entry: e.name };
    }
  }
  throw new CliError(
    `\`${dir}\` is not a plugin package: it has no ${MANIFEST_FILE}, main.ts or Python package`,
  );
}

async function generate(dir: string, manifest: string | null): Promise<string> {
  const { lang, entry } = entryOf(dir, manifest);
  if (lang === "typescript") {
    try {
      return await manifestText(join(dir, entry));
    } catch (error) {
      throw new CliError(`cannot read the steps of \`${join(dir, entry)}\`: ${messageOf(error)}`);
    }
  }
  const inherited = Deno.env.get("PYTHONPATH");
  // Each SDK prints the manifest from the same declarations its process serves.
  const [command, ...args] = {
    python: ["python3", "-m", "heddle_sdk", "manifest", entry],
    go: ["go", "run", ".", "manifest"],
    rust: ["cargo", "run", "--release", "--quiet", "--", "manifest"],
  }[lang as "python" | "go" | "rust"];
  let out;
  try {
    out = await new Deno.Command(command, {
      args,
      cwd: dir,
      env: {
        PYTHONPATH: [pluginAssets().pythonPath, inherited].filter((p) => p).join(":"),
        CARGO_TARGET_DIR: Deno.env.get("CARGO_TARGET_DIR") ?? `${buildCacheRoot()}/cargo-target`,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new CliError(`cannot run ${command}: ${messageOf(error)}`);
  }
  if (!out.success) {
    const lines = new TextDecoder().decode(out.stderr).trim().split("\n");
    throw new CliError(`cannot read the steps of ${lang} package \`${dir}\`: ${lines.at(-1)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
