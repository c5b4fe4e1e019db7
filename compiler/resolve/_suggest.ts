/**
 * "Did you mean" suggestions by edit distance. Used for every unknown name so that typos
 * get the same help everywhere.
 */

/** Levenshtein distance, bounded by the caller's interest in close matches only. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/** The closest candidate within a third of the name's length, or null. */
export function closest(name: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(1, Math.floor(name.length / 3)) + 1;
  for (const c of candidates) {
    // The length difference is a lower bound of the distance: most candidates end here, so a
    // very long name or a very long list costs no quadratic comparisons.
    if (Math.abs(c.length - name.length) >= bestDistance) continue;
    const d = editDistance(name, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** A hint list: `did you mean \`x\`?` when something is close, else empty. */
export function didYouMean(name: string, candidates: Iterable<string>, prefix = ""): string[] {
  const c = closest(name, candidates);
  return c ? [`did you mean \`${prefix}${c}\`?`] : [];
}
