/**
 * `text.upper` and `text.lower` as DuckDB computes them: each code point on its own, by
 * Unicode's simple case mapping (utf8proc's), never JavaScript's full and contextual one,
 * which turns `ß` into `SS`, `İ` into `i̇` and a final `Σ` into `ς`. So an engine result
 * equals the SQL the same block compiles to.
 */

/** Where a code point's simple uppercase differs from JavaScript's one-character result. */
function simpleUpperOf(c: number): number {
  if (c === 0xdf) return 0x1e9e; // ß -> ẞ (utf8proc, as DuckDB)
  // Greek with a subscript iota: the simple mapping is the titlecase letter beside it.
  if ((c >= 0x1f80 && c <= 0x1faf && (c & 0xf) < 8)) return c + 8;
  if (c === 0x1fb3 || c === 0x1fc3 || c === 0x1ff3) return c + 9;
  return c; // every other expanding character has no simple uppercase
}

function mapped(s: string, full: (x: string) => string, simple: (c: number) => number) {
  let out = "";
  for (const ch of s) {
    const m = full(ch);
    // One code point (one or two UTF-16 units): that is its simple mapping as well.
    out += m.length === 1 || (m.length === 2 && m.codePointAt(0)! > 0xffff)
      ? m
      : String.fromCodePoint(simple(ch.codePointAt(0)!));
  }
  return out;
}

export function upper(s: string): string {
  const u = s.toUpperCase();
  // Equal lengths: no character expanded, and uppercase has no context.
  return u.length === s.length ? u : mapped(s, (x) => x.toUpperCase(), simpleUpperOf);
}

export function lower(s: string): string {
  const l = s.toLowerCase();
  // `İ` expands (its simple lowercase is `i`); `Σ` depends on its neighbours (final sigma).
  return l.length === s.length && !s.includes("Σ")
    ? l
    : mapped(s, (x) => x.toLowerCase(), (c) => (c === 0x130 ? 0x69 : c));
}
