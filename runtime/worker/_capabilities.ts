/**
 * What plugin runtimes this host can start, which a cluster worker advertises when it
 * registers, so that the control plane places a stage group only where its plugins can
 * run (runtime/control/_placement.ts). A runtime counts when the program that starts or
 * builds its plugins answers `--version`; it never starts a plugin.
 */

/** The program each plugin runtime needs (its plugins' entry or build command). */
const RUNTIME_PROGRAMS: Record<string, string> = {
  python: "python3",
  typescript: "deno",
  go: "go",
  rust: "cargo",
};

/** The plugin runtimes whose program answers on this host, sorted. */
export async function detectRuntimes(): Promise<string[]> {
  const found = await Promise.all(
    Object.entries(RUNTIME_PROGRAMS).map(async ([runtime, program]) => {
      try {
        const { success } = await new Deno.Command(program, {
          args: ["--version"],
          stdout: "null",
          stderr: "null",
        }).output();
        return success ? runtime : null;
      } catch {
        return null;
      }
    }),
  );
  return found.filter((r): r is string => r !== null).sort();
}
