/**
 * Secret values a deploy carries in plain text (a `password: "..."` literal, a `--set
 * pg_db.password=...` override, credentials inside a URL such as an LLM `base_url`) never
 * reach the control plane's database: before a workflow is stored, each one is replaced in
 * the IR by a reference (`{"$sealed": "pg_db.password"}`) and blanked in the stored source,
 * and the values stay in the control plane's memory until a run needs them. A restarted
 * control plane has lost them and says so instead of running without them; values read
 * with `secret("NAME")` are references already and survive restarts.
 */
import { hasUrlCredentials, redact } from "../redact/mod.ts";

/** Config keys whose values are secrets (the built-in contracts say "use `secret(...)`"). */
const SECRET_KEY = /password|passwd|secret|token|api_?key|credential|private_?key/i;
/** What a sealed IR holds in place of a secret value. */
interface SealedRef {
  $sealed: string;
}

function isSealed(value: unknown): value is SealedRef {
  return typeof value === "object" && value !== null && "$sealed" in value;
}

/** A workflow's IR and source without secrets, and the secrets by reference. */
export interface Sealed {
  irJson: string;
  source: string;
  /** Reference to value; empty when the program carried no secret in plain text. */
  values: Map<string, string>;
}

/** IR field names left out of a reference's name. */
const STRUCTURE = new Set(["resources", "graphs", "stages", "calls", "config"]);

function idOf(node: unknown): string | undefined {
  if (typeof node !== "object" || node === null) return undefined;
  const id = (node as { id?: unknown }).id;
  return typeof id === "string" ? id : undefined;
}

function isEnvRef(node: object): node is { env: string; secret: boolean; default: unknown } {
  return "env" in node && "secret" in node;
}

/**
 * Replaces every plain-text secret in the `config` objects of `ir` (a string under a
 * secret-named key, or a string holding URL credentials) with a reference, and blanks those
 * values and `alsoRedact` in `source`. `env(...)`/`secret(...)` references stay as they
 * are (a default under a secret-named key is sealed). `ir` is not changed.
 */
export function sealSecrets(ir: unknown, source: string, alsoRedact: string[] = []): Sealed {
  const values = new Map<string, string>();
  const seal = (text: string, path: string[]): SealedRef => {
    // Named as people know it: `pg_db.password`, `Ask.1.api_key`.
    const name = path.filter((p) => !STRUCTURE.has(p)).join(".");
    let ref = name;
    for (let n = 2; values.has(ref) && values.get(ref) !== text; n++) ref = `${name}#${n}`;
    values.set(ref, text);
    return { $sealed: ref };
  };
  // `inConfig`: below a `config` object; `secretKey`: below a secret-named key in one.
  const walk = (node: unknown, path: string[], inConfig: boolean, secretKey: boolean): unknown => {
    if (typeof node === "string") {
      const secret = inConfig && node !== "" && (secretKey || hasUrlCredentials(node));
      return secret ? seal(node, path) : node;
    }
    if (Array.isArray(node)) {
      return node.map((v, i) => walk(v, [...path, idOf(v) ?? String(i)], inConfig, secretKey));
    }
    if (typeof node !== "object" || node === null) return node;
    if (inConfig && isEnvRef(node)) {
      return { ...node, default: walk(node.default, [...path, "default"], true, secretKey) };
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      const child = [...path, k];
      out[k] = inConfig
        ? walk(v, child, true, secretKey || SECRET_KEY.test(k))
        : walk(v, child, k === "config", false);
    }
    return out;
  };
  const sealed = walk(ir, [], false, false);
  const redacted = redact(source, [...values.values(), ...alsoRedact]);
  return { irJson: JSON.stringify(sealed), source: redacted, values };
}

/** Puts the values back into a sealed IR; throws naming the references it lacks. */
export function unsealSecrets(irJson: string, values: Map<string, string>): string {
  const missing: string[] = [];
  const ir = JSON.parse(irJson, (_key, value) => {
    if (!isSealed(value)) return value;
    const found = values.get(value.$sealed);
    if (found === undefined) missing.push(value.$sealed);
    return found ?? null;
  });
  if (missing.length > 0) throw new MissingSecrets(missing);
  return JSON.stringify(ir);
}

/** A sealed IR whose values this control plane does not hold (it restarted). */
export class MissingSecrets extends Error {
  constructor(readonly refs: string[]) {
    super(
      `this workflow was deployed with secret values in plain text (${refs.join(", ")}), ` +
        "which the control plane keeps in memory only and lost when it restarted: deploy it " +
        'again, or give them as secret("NAME") so the daemon reads them from its environment',
    );
  }
}
