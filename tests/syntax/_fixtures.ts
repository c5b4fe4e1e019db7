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
