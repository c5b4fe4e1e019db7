/**
 * The only place in Heddle that binds libc through Deno's FFI. Shared memory, file mappings
 * and process liveness all go through these few wrappers so that pointer handling, errno
 * and C strings are dealt with once. Every failing call throws `OsError` with the errno;
 * callers turn that into a typed `RegistryError`. This file must never hand out a raw
 * pointer that outlives its mapping: `Mapping` pairs the pointer with its size, and only
 * `unmap` ends it.
 */

/** Linux (x86-64 and aarch64 share these values). */
const O_RDONLY = 0;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_CLOEXEC = 0o2000000;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const SEEK_END = 2;
export const ENOENT = 2;
const ESRCH = 3;
export const EEXIST = 17;
export const ENOSPC = 28;

const MAP_FAILED = 0xffffffffffffffffn;

const symbols = {
  shm_open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  shm_unlink: { parameters: ["buffer"], result: "i32" },
  // `open` is variadic in C; passing the mode as a fixed third integer argument is what the
  // x86-64 and aarch64 calling conventions accept for integer varargs.
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  posix_fallocate: { parameters: ["i32", "i64", "i64"], result: "i32" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof symbols>["symbols"];

let libc: Libc | undefined;

/** Opens libc lazily so that importing the registry needs no FFI permission until used. */
function lib(): Libc {
  libc ??= Deno.dlopen("libc.so.6", symbols).symbols;
  return libc;
}

/** A failed libc call: the operation, its argument (a name or path) and errno. */
export class OsError extends Error {
  constructor(readonly op: string, readonly target: string, readonly errno: number) {
    super(`${op}(${target}) failed: ${describeErrno(errno)} (errno ${errno})`);
    this.name = "OsError";
  }
}

function describeErrno(errno: number): string {
  const text = lib().strerror(errno);
  return text === null ? "unknown error" : Deno.UnsafePointerView.getCString(text);
}

function errno(): number {
  const location = lib().__errno_location();
  return location === null ? 0 : new Deno.UnsafePointerView(location).getInt32();
}

function cString(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${text}\0`);
}

function check(result: number, op: string, target: string): number {
  if (result < 0) throw new OsError(op, target, errno());
  return result;
}

/** Opens a POSIX shared-memory object; "create" fails if the name already exists. */
export function shmOpen(name: string, mode: "create" | "read"): number {
  const flags = mode === "create" ? O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC : O_RDONLY | O_CLOEXEC;
  return check(lib().shm_open(cString(name), flags, 0o600), "shm_open", name);
}

export function shmUnlink(name: string): void {
  check(lib().shm_unlink(cString(name)), "shm_unlink", name);
}

/** Opens a regular file read-only (spill files are written with Deno's own file API). */
export function openReadOnly(path: string): number {
  return check(lib().open(cString(path), O_RDONLY | O_CLOEXEC, 0), "open", path);
}

export function closeFd(fd: number): void {
  lib().close(fd);
}

/**
 * Sizes a new segment and reserves its pages: without the reservation a full /dev/shm
 * would surface later as SIGBUS on the first write instead of as an error here.
 */
export function reserve(fd: number, size: number, target: string): void {
  check(lib().ftruncate(fd, BigInt(size)), "ftruncate", target);
  const failed = lib().posix_fallocate(fd, 0n, BigInt(size));
  if (failed !== 0) throw new OsError("posix_fallocate", target, failed);
}

/** The size of an open file or segment in bytes. */
export function fdSize(fd: number, target: string): number {
  const end = lib().lseek(fd, 0n, SEEK_END);
  if (end < 0n) throw new OsError("lseek", target, errno());
  return Number(end);
}

/** A live memory mapping. `buffer` is valid only until `unmap(mapping)`. */
export interface Mapping {
  readonly pointer: Deno.PointerObject;
  readonly size: number;
  readonly buffer: ArrayBuffer;
}

/** Maps `size` bytes of `fd` shared; writes reach the segment (and other processes). */
export function map(fd: number, size: number, writable: boolean, target: string): Mapping {
  const protection = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  const pointer = lib().mmap(null, BigInt(size), protection, MAP_SHARED, fd, 0n);
  if (pointer === null || Deno.UnsafePointer.value(pointer) === MAP_FAILED) {
    throw new OsError("mmap", target, errno());
  }
  return { pointer, size, buffer: Deno.UnsafePointerView.getArrayBuffer(pointer, size) };
}

export function unmap(mapping: Mapping): void {
  lib().munmap(mapping.pointer, BigInt(mapping.size));
}

/** True when a process with this pid exists (EPERM still means it exists). */
export function processAlive(pid: number): boolean {
  if (lib().kill(pid, 0) === 0) return true;
  return errno() !== ESRCH;
}
