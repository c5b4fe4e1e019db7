/**
 * Taking secrets out of text before it becomes a message, an event, a log line or a
 * stored row: known secret values (raw, URL-encoded and JSON-escaped) and the password of
 * every URL (`http://user:PW@host`), which can hide in any config string. Connectors and
 * the control plane both redact with these, so a secret is masked the same way everywhere.
 */

/** `scheme://user:password@` in any text. */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)([^\s@/]+)@/gi;

/** Whether `text` holds a URL with a password. */
export function hasUrlCredentials(text: string): boolean {
  URL_CREDENTIALS.lastIndex = 0;
  const found = URL_CREDENTIALS.test(text);
  URL_CREDENTIALS.lastIndex = 0;
  return found;
}

/** `text` with the password of every URL in it replaced by `***`. */
export function redactUrls(text: string): string {
  return text.replace(URL_CREDENTIALS, "$1***@");
}

/**
 * `text` with every URL's password and each of `secrets` (raw, URL-encoded, JSON-escaped)
 * replaced by `***`. Values shorter than 3 characters are left alone: masking them would
 * garble every message without hiding anything worth hiding.
 */
export function redact(text: string, secrets: Iterable<string | undefined>): string {
  let out = redactUrls(text);
  for (const s of secrets) {
    if (!s || s.length < 3) continue;
    for (const form of new Set([s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)])) {
      out = out.split(form).join("***");
    }
  }
  return out;
}

/**
 * `value` (JSON-like: strings, numbers, arrays, plain objects) with every string in it
 * redacted as `redact` does. Parts without a change are returned as they are, so an event
 * with nothing to hide (every batch's progress) costs a walk, not a copy.
 */
export function redactValues<T>(value: T, secrets: readonly string[]): T {
  if (typeof value === "string") return redact(value, secrets) as T;
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    let out: unknown[] | null = null;
    value.forEach((item, i) => {
      const redacted = redactValues(item, secrets);
      if (redacted !== item) (out ??= [...value])[i] = redacted;
    });
    return (out ?? value) as T;
  }
  let out: Record<string, unknown> | null = null;
  for (const [key, item] of Object.entries(value)) {
    const redacted = redactValues(item, secrets);
    if (redacted !== item) (out ??= { ...value } as Record<string, unknown>)[key] = redacted;
  }
  return (out ?? value) as T;
}
