/**
 * Tests that need a system program the services scripts do not start (Debian's `chromium`
 * for the UI, `prometheus` for metrics; `.ci/run` installs both): declared ignored, with one
 * line saying why, when the program is missing, and failing instead under
 * `HEDDLE_REQUIRE_SERVICES=1`, so a run without them cannot look complete.
 */

function present(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** `Deno.test` that runs only when every program in `programs` exists (see above). */
export function toolTest(name: string, programs: string[], fn: () => Promise<void>): void {
  const missing = programs.filter((p) => !present(p));
  const required = Deno.env.get("HEDDLE_REQUIRE_SERVICES") === "1";
  if (missing.length > 0 && !required) {
    console.error(`skipping "${name}": missing ${missing.join(", ")} (apt-get install them)`);
  }
  Deno.test({
    name,
    ignore: missing.length > 0 && !required,
    // Browsers and servers driven over HTTP keep sockets and timers until they are closed.
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      if (missing.length > 0) {
        throw new Error(`missing ${missing.join(", ")}: apt-get install them`);
      }
      await fn();
    },
  });
}
