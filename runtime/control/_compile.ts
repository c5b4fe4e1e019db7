/**
 * Compiling a program for deployment: the compiler's `check`, then the resource config
 * overrides of the environment it is deployed to (`--set pg_db.host=127.0.0.1`, an
 * `--env-file`). Overrides are checked like config written in the program (the resource
 * exists, the key is in its contract, the value has the key's type), so a typo in an
 * override is an error, not a silently ignored setting.
 *
 * A daemon compiles what the deploy carries and nothing of the deployer's disk: the
 * program's text, the files sent with it (its schema snapshot), and plugin manifests found
 * on the operator's module path only. Only `heddle run`, the user's own process, may read
 * the files next to the program (`readCallerFiles`).
 */
import {
  BUILTIN_MODULES,
  check,
  type Diagnostic,
  type Ir,
  type ModuleContract,
} from "../../compiler/mod.ts";
import { toJson } from "../../compiler/diagnostics/mod.ts";
import { readUnder } from "../fs/mod.ts";
import { ControlError, type DeployRequest, type WireDiagnostic } from "../protocol/mod.ts";
import { type Sealed, sealSecrets } from "./_secrets.ts";

export type Compiled =
  | {
    ok: true;
    workflows: string[];
    /** The IR and source without plain-text secrets, and those secrets (`_secrets.ts`). */
    sealed: Sealed;
    baseDir: string;
    diagnostics: WireDiagnostic[];
  }
  | { ok: false; diagnostics: WireDiagnostic[] };

function dirOf(file: string): string {
  const slash = file.lastIndexOf("/");
  return slash > 0 ? file.slice(0, slash) : slash === 0 ? "/" : Deno.cwd();
}

export interface CompileOptions {
  /** `HEDDLE_PATH`: the operator's module path. */
  heddlePath?: string;
  /** Whether the program's own directory may be read (plugins, snapshot): `heddle run`. */
  readCallerFiles?: boolean;
}

/** Reads the files a deploy carries, and otherwise only manifests on the module path. */
function deployReader(request: DeployRequest, heddlePath?: string) {
  const dir = dirOf(request.file);
  const sent = new Map((request.files ?? []).map((f) => [`${dir}/${f.name}`, f.content]));
  const operator = readUnder((heddlePath ?? "").split(":").filter((s) => s));
  return (path: string): string | null => sent.get(path) ?? operator(path);
}

const fileName = /^(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

export function compileForDeploy(request: DeployRequest, options: CompileOptions = {}): Compiled {
  const { heddlePath, readCallerFiles = false } = options;
  const bad = (request.files ?? []).find((f) => !fileName.test(f.name));
  if (bad) {
    throw new ControlError(
      `a deployed file's name must be a relative path without \`..\`: \`${bad.name}\``,
      "invalid",
    );
  }
  const { value, diagnostics } = check(request.source, request.file, {
    heddlePath,
    read: readCallerFiles ? undefined : deployReader(request, heddlePath),
  });
  const ir = value.optimised;
  const problems = [...diagnostics];
  // Literal secrets of the program text, before overrides replace them in the IR: they
  // must be blanked in the stored source all the same.
  const literal = ir ? sealSecrets(ir, "").values.values() : [];
  if (ir) problems.push(...applyOverrides(ir, request.overrides));
  const wire = toJson(problems, request.source, request.file);
  if (!ir || problems.some((d) => d.severity === "error")) return { ok: false, diagnostics: wire };
  return {
    ok: true,
    workflows: ir.graphs.filter((g) => g.kind === "workflow").map((g) => g.name),
    sealed: sealSecrets(ir, request.source, [...literal]),
    baseDir: readCallerFiles ? dirOf(request.file) : "",
    diagnostics: wire,
  };
}

function overrideError(message: string, hints: string[] = []): Diagnostic {
  return {
    code: "HE0501",
    severity: "error",
    message,
    span: { start: 0, end: 0 },
    labels: [],
    hints,
  };
}

/** Applies `resource.key=value` overrides to the IR's resources, reporting bad ones. */
export function applyOverrides(ir: Ir, overrides: string[]): Diagnostic[] {
  const problems: Diagnostic[] = [];
  for (const override of overrides) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(override);
    if (!match) {
      problems.push(overrideError(`override \`${override}\` is not \`resource.key=value\``));
      continue;
    }
    const [, id, key, text] = match;
    const resource = ir.resources.find((r) => r.id === id);
    if (!resource) {
      const known = ir.resources.map((r) => `\`${r.id}\``).join(", ") || "none";
      problems.push(
        overrideError(`override names resource \`${id}\`, which the program does not declare`, [
          `declared resources: ${known}`,
        ]),
      );
      continue;
    }
    const contract: ModuleContract | undefined = BUILTIN_MODULES.get(resource.module);
    const field = contract?.resources.get(resource.kind)?.config.find((f) => f.key === key);
    if (contract && !field) {
      const keys = contract.resources.get(resource.kind)?.config.map((f) => `\`${f.key}\``);
      problems.push(
        overrideError(`\`${resource.module}.${resource.kind}\` has no config key \`${key}\``, [
          `its keys: ${keys?.join(", ")}`,
        ]),
      );
      continue;
    }
    const type = field?.type ?? "string";
    if (type === "int" || type === "number") {
      const n = Number(text);
      if (text.trim() === "" || !Number.isFinite(n) || (type === "int" && !Number.isInteger(n))) {
        problems.push(
          overrideError(`override \`${id}.${key}\` expects ${type}, found \`${text}\``),
        );
        continue;
      }
      resource.config[key] = n;
    } else if (type === "bool") {
      if (text !== "true" && text !== "false") {
        problems.push(overrideError(`override \`${id}.${key}\` expects true or false`));
        continue;
      }
      resource.config[key] = text === "true";
    } else if (type === "duration") {
      const ms = durationMs(text);
      if (ms === null) {
        problems.push(
          overrideError(
            `override \`${id}.${key}\` expects a duration such as 30s, found \`${text}\``,
          ),
        );
        continue;
      }
      resource.config[key] = { duration_ms: ms };
    } else {
      resource.config[key] = text;
    }
  }
  return problems;
}

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `250ms`, `30s`, `5m`, `1h` in milliseconds, as the language writes durations. */
function durationMs(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  return match ? Number(match[1]) * unitMs[match[2]] : null;
}

/** Reads an env file: `resource.key=value` lines; `#` starts a comment line. */
export function parseEnvFile(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}
