/**
 * Directories and files a Heddle process keeps for itself (its state directory, its spill
 * directory, its token): created so that only its own user can read them, and refused when
 * someone else got there first. A directory in a shared place such as `/tmp` can be made
 * in advance by another user to read, replace or delete what Heddle writes into it; this
 * module exists so that no caller uses such a directory by accident. It never follows a
 * symbolic link for the directory it checks, and it never loosens a mode.
 */

/** A directory or file that another user owns or can reach, so Heddle will not use it. */
export class UnsafePathError extends Error {}

/** Owner and group may read and write nothing: the bits a private entry must not have. */
const SHARED_BITS = 0o077;

/**
 * Makes `path` a directory only this user can use: creates it (and its parents) with mode
 * 0700, or checks an existing one is a real directory owned by this user and removes any
 * group or world bits from it. Throws `UnsafePathError` when it is a symbolic link, not a
 * directory, or owned by another user.
 */
export function ensurePrivateDir(path: string): void {
  Deno.mkdirSync(path, { recursive: true, mode: 0o700 });
  const info = Deno.lstatSync(path);
  if (info.isSymlink) {
    throw new UnsafePathError(`${path} is a symbolic link; Heddle uses only a real directory`);
  }
  if (!info.isDirectory) throw new UnsafePathError(`${path} is not a directory`);
  checkOwner(path, info);
  if ((info.mode ?? 0) & SHARED_BITS) Deno.chmodSync(path, 0o700);
}

function checkOwner(path: string, info: Deno.FileInfo): void {
  const uid = Deno.uid();
  if (uid !== null && info.uid !== uid) {
    throw new UnsafePathError(
      `${path} belongs to uid ${info.uid}, not to this user (uid ${uid}); another user may ` +
        "have created it to read or replace Heddle's files: remove it or choose another path",
    );
  }
}

/**
 * Reads a file that must stay private (a token, a key): refused when it is owned by another
 * user or readable by group or others, since its secret could then already be known.
 */
export function readPrivateFile(path: string): string {
  const info = Deno.statSync(path);
  checkOwner(path, info);
  if ((info.mode ?? 0) & SHARED_BITS) {
    throw new UnsafePathError(
      `${path} can be read by other users (mode ${((info.mode ?? 0) & 0o777).toString(8)}); ` +
        `make it private with \`chmod 600 ${path}\``,
    );
  }
  return Deno.readTextFileSync(path);
}

/** Writes a new file with mode 0600; fails if the file already exists. */
export function writePrivateFile(path: string, text: string): void {
  Deno.writeTextFileSync(path, text, { createNew: true, mode: 0o600 });
}

/**
 * The real path of `path` (absolute, or taken from the working directory): every `..` and
 * every symbolic link resolved, including a dangling link's target and `..` in the part
 * that does not exist yet, so that a check on the result holds for what opening `path`
 * would touch. Throws on a symbolic link loop.
 */
export function realPathOf(path: string, depth = 0): string {
  const absolute = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  if (depth > 40) throw new UnsafePathError(`${path}: too many levels of symbolic links`);
  try {
    return Deno.realPathSync(absolute);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const slash = absolute.lastIndexOf("/");
  const parent = slash === 0 ? "/" : absolute.slice(0, slash);
  const name = absolute.slice(slash + 1);
  const base = parent === absolute ? "/" : realPathOf(parent, depth + 1);
  const link = readLinkOrNull(`${base}/${name}`);
  if (link !== null) {
    // A dangling link: what it points to is what a write would create.
    return realPathOf(link.startsWith("/") ? link : `${base}/${link}`, depth + 1);
  }
  if (name === "..") return base.slice(0, base.lastIndexOf("/")) || "/";
  if (name === "." || name === "") return base;
  return base === "/" ? `/${name}` : `${base}/${name}`;
}

function readLinkOrNull(path: string): string | null {
  try {
    return Deno.readLinkSync(path);
  } catch {
    return null;
  }
}

/** Whether the real path `real` is one of `roots` (real paths) or lies under one. */
export function isInside(real: string, roots: readonly string[]): boolean {
  return roots.some((root) => real === root || real.startsWith(root === "/" ? "/" : `${root}/`));
}

/**
 * A reader that returns a file's text only when its real path lies under one of `roots`
 * (else null, as for a missing file): the compiler and the plugin host read plugin
 * manifests through it, so that a daemon never takes a module from a caller's directory.
 */
export function readUnder(roots: readonly string[]): (path: string) => string | null {
  const real = roots.flatMap((r) => {
    try {
      return [Deno.realPathSync(r)];
    } catch {
      return [];
    }
  });
  return (path) => {
    try {
      return isInside(realPathOf(path), real) ? Deno.readTextFileSync(path) : null;
    } catch {
      return null;
    }
  };
}
