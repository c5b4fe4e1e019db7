/**
 * A PRQL block's shape: its PL with the literal operands of comparisons and arithmetic
 * (`amount > 10000`, `name == "x"`) replaced by sentinels. Blocks that differ only in such
 * literals lower to the same RQ but for those literals, so one prql-js lowering serves every
 * block of a shape (`_prql_lower.ts` caches RQ by shape): a program that filters on many
 * thresholds, and above all typing a number or a string into a block, which used to cost a
 * prql-js lowering (its standard library load) per keystroke.
 *
 * It must never hand out RQ that prql-js would not give for the block itself: `fill` puts the
 * literals back only when each sentinel appears exactly once in the RQ and nothing derived
 * from one does (prql-js folded or moved it), else the block is lowered as it is. Only binary
 * operands are replaced, never `take` ranges or other arguments whose values prql-js reads.
 * `tests/compiler/prql_lowering_test.ts` compares every corpus program with lowering each
 * block's own text.
 */

/** Integer sentinels are this plus the literal's index; nothing else may contain its digits. */
const INTEGER = 987654321000;
const MARK = "98765432";
const STRING = "__heL";

const sentinel = (literal: string, k: number) =>
  literal.startsWith('{"Integer"') ? `{"Integer":${INTEGER + k}}` : `{"String":"${STRING}${k}__"}`;

export interface Shape {
  /** What blocks of one shape share: the PL with sentinels and without its text span. */
  key: string;
  /** The PL with sentinels, to lower. */
  pl: string;
  /** Each replaced literal's JSON (`{"Integer":5}`), by sentinel index. */
  literals: string[];
}

/** The shape of a block's PL, or null when it has no literal operand to replace. */
export function shapeOf(pl: string): Shape | null {
  if (pl.includes(MARK) || pl.includes(STRING)) return null;
  const literals: string[] = [];
  const shaped = pl.replace(
    /"(left|right)":\{"Literal":(\{"(?:Integer":-?\d+|String":"(?:[^"\\]|\\.)*")\})\}/g,
    (_match, side: string, literal: string) => {
      literals.push(literal);
      return `"${side}":{"Literal":${sentinel(literal, literals.length - 1)}}`;
    },
  );
  if (literals.length === 0) return null;
  return { key: shaped.replace(/"span":"[^"]*"/g, ""), pl: shaped, literals };
}

/**
 * The RQ of a block of `rq`'s shape with `literals` put back, or null when `rq` does not hold
 * each sentinel exactly once, untouched (the block must then be lowered as it is).
 */
export function fill(rq: string, literals: string[]): string | null {
  let out = rq;
  for (let k = 0; k < literals.length; k++) {
    const parts = out.split(sentinel(literals[k], k));
    if (parts.length !== 2) return null;
    out = parts.join(literals[k]);
  }
  return out.includes(MARK) || out.includes(STRING) ? null : out;
}
