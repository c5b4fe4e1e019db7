/**
 * Helpers of the syntax tests only: tree comparisons with spans stripped and a seeded PRNG
 * (the corpora and inline expectations live in tests/_expect.ts). It must never hide a
 * difference: it normalises only what the formatter is allowed to change (spans, PRQL
 * indentation).
 */

/** A JSON copy of a tree without `span`/`textSpan`, with PRQL text reduced to its lines. */
export function stripSpans(tree: unknown): unknown {
  return JSON.parse(JSON.stringify(tree, (key, value) => {
    if (key === "span" || key === "textSpan") return undefined;
    if (key === "text" && typeof value === "string" && value.includes("\n")) {
      return value.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
    }
    return value;
  }));
}

/** A seeded PRNG (mulberry32), so that fuzz failures reproduce. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
