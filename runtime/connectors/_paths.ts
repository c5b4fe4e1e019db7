/**
 * The one check between a `file` step's `path` and the file system on a daemon: the path,
 * with `..` and symbolic links resolved, must lie under a directory the operator allows
 * (`--allow-path`). It exists so that a deployed program cannot read or write the daemon
 * user's other files. Without an allow list (`heddle run`, the user's own process) paths are
 * used as written.
 */
import { isInside, realPathOf } from "../fs/mod.ts";
import { ConnectorError } from "./_types.ts";

/** `path` resolved for use, or a config error when it leaves the allowed directories. */
export function allowedPath(path: string, allow: readonly string[] | undefined): string {
  if (allow === undefined) return path;
  let real: string;
  try {
    real = realPathOf(path);
  } catch (e) {
    throw new ConnectorError("config", `cannot resolve \`${path}\`: ${(e as Error).message}`);
  }
  if (isInside(real, allow)) return real;
  throw new ConnectorError(
    "config",
    `\`${path}\` is outside the directories this node allows (${allow.join(", ")}); ` +
      "the operator adds directories with --allow-path",
  );
}
