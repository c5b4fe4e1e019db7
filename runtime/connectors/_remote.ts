/**
 * What every connector to an outside service needs: reading a resource's config (with
 * `secret(...)` references that reached it unresolved), and error messages that never echo
 * a secret. It exists so that redaction is done once, the same way, for every client
 * library: a driver's error text may carry a connection string or a password, and it must
 * never reach a log, an event or a handler's `_error_message` with the secret in it.
 */
import { ConnectorError, type ConnectorErrorCode, type RemoteFailure } from "./_types.ts";
import { redact } from "../redact/mod.ts";

export { redact, redactUrls } from "../redact/mod.ts";

/**
 * A config value as a plain value. Resources reached through a lookup join can still hold
 * the IR's symbolic `{env, secret, default}` form; it is resolved from the environment here.
 */
export function configValue(value: unknown, env = (n: string) => Deno.env.get(n)): unknown {
  if (value && typeof value === "object" && "env" in value && "secret" in value) {
    const ref = value as unknown as { env: string; default: string | null };
    return env(ref.env) ?? ref.default ?? undefined;
  }
  return value;
}

/** A string config key, or `fallback` when absent; a wrong type is a config error. */
export function stringOf(
  config: Record<string, unknown>,
  key: string,
  fallback?: string,
): string | undefined {
  const value = configValue(config[key]);
  if (value === undefined || value === null) return fallback;
  if (typeof value === "number") return String(value);
  if (typeof value !== "string") {
    throw new ConnectorError("config", `\`${key}\` must be a string`);
  }
  return value;
}

/** An integer config key (a `--set` override or an env reference may give it as text). */
export function intOf(config: Record<string, unknown>, key: string, fallback: number): number {
  const value = configValue(config[key]);
  if (value === undefined || value === null || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new ConnectorError("config", `\`${key}\` must be an integer`);
  return n;
}

/** A `ConnectorError` whose message (and cause's message) has the secrets removed. */
export function remoteError(
  code: ConnectorErrorCode,
  what: string,
  error: unknown,
  secrets: (string | undefined)[],
): ConnectorError {
  const raw = error instanceof Error ? error.message : String(error);
  const message = redact(`${what}: ${raw || (error as Error)?.name || "unknown error"}`, secrets);
  // The original error is not kept as the cause: its fields may hold the secret verbatim.
  return new ConnectorError(code, message, { remote: remoteFailure(what, error, secrets) });
}

/** The codes of a remote's error, and whether it is a connection failure (`RemoteFailure`). */
function remoteFailure(
  what: string,
  error: unknown,
  secrets: (string | undefined)[],
): RemoteFailure {
  const { code, status, name } = (error ?? {}) as {
    code?: unknown;
    status?: unknown;
    name?: unknown;
  };
  const id = typeof code === "string" && /^[A-Za-z0-9_.-]{1,40}$/.test(code)
    ? code
    : typeof code === "number" || typeof status === "number"
    ? String(code ?? status)
    : null;
  const network = (id !== null && /^E[A-Z_]+$/.test(id)) ||
    /Connection|Timeout|Abort/.test(String(name ?? ""));
  return { what: redact(what, secrets), code: id, network };
}
