/**
 * Shared setup for the registry tests: every test gets its own name prefix and spill
 * directory, so tests never see each other's segments (or another engineer's), and
 * `withRegistry` checks that nothing with that prefix is left in /dev/shm or on disk after
 * the registry closes. Fixtures must never touch segments outside their own prefix.
 */

import assert from "node:assert/strict";
import { Vector } from "apache-arrow";
import { Registry, type RegistryOptions, SHM_DIR } from "../../runtime/registry/mod.ts";

export interface Place {
  prefix: string;
  spillDir: string;
}

/** A fresh, unique prefix and spill directory. */
export function freshPlace(): Place {
  const tag = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  // The registry creates the spill directory when it first spills; `forget` removes it.
  return { prefix: `heddle-test${tag}`, spillDir: `${tmp}/heddle-spill-${tag}` };
}

/** Removes the place's spill directory, which holds nothing once `leftovers` is empty. */
export function forget(place: Place): void {
  try {
    Deno.removeSync(place.spillDir, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

function names(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((entry) => entry.name);
  } catch {
    return [];
  }
}

/** Names in /dev/shm and files in the spill directory that carry the place's prefix. */
export function leftovers(place: Place): string[] {
  return [...names(SHM_DIR), ...names(place.spillDir)].filter((name) =>
    name.startsWith(`${place.prefix}-`)
  );
}

/** Owner lock files of the place's prefix (`/dev/shm/.heddle-owners/<prefix>-<owner>.lock`). */
export function ownerFiles(place: Place): string[] {
  return names(`${SHM_DIR}/.heddle-owners`).filter((name) => name.startsWith(`${place.prefix}-`));
}

/** Runs `body` with a registry in a fresh place; asserts that nothing leaked afterwards. */
export async function withRegistry(
  options: Omit<RegistryOptions, "prefix" | "spillDir">,
  body: (registry: Registry, place: Place) => void | Promise<void>,
): Promise<void> {
  const place = freshPlace();
  const registry = new Registry({ ...options, ...place });
  try {
    await body(registry, place);
  } finally {
    registry.close();
  }
  assert.deepEqual(leftovers(place), [], "segments or spill files leaked");
  assert.deepEqual(ownerFiles(place), [], "the owner file outlived close()");
  forget(place);
}

/** Turns Arrow values (rows, vectors, typed arrays) into plain values for deep comparison. */
export function plain(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date) return value.toISOString();
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<unknown>);
  if (value instanceof Vector) return Array.from(value, plain);
  if ("toJSON" in value && typeof value.toJSON === "function") return plain(value.toJSON());
  if (Array.isArray(value)) return value.map(plain);
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, plain(inner)]));
}
