/**
 * The bridge between arcsecond and Heddle's parser. Arcsecond's own `str`/`regex`
 * primitives decode the whole remaining input on every call (quadratic in file size) and
 * count bytes rather than UTF-16 units, so Heddle keeps its input (the source text for the
 * lexer, the token array for the grammar) in arcsecond's user-state slot and supplies
 * primitive parsers that read it directly. Everything else is ordinary arcsecond
 * combinators. This file must never know Heddle's grammar.
 */
import { InputTypes, Parser, type ParserState, updateError, updateParserState } from "arcsecond";

export { Parser };

/**
 * Arcsecond states need a DataView, which Heddle's primitives never read. One shared empty
 * view keeps each run allocation-free. (Arcsecond's `many` stops when `index` reaches the
 * view's length, so Heddle loops by hand instead of using it.)
 */
const NO_BYTES = new DataView(new ArrayBuffer(0));

/** A state positioned at `index` that carries `data` as the input. */
export function stateAt<D>(data: D, index: number): ParserState<null, null, D> {
  return {
    dataView: NO_BYTES,
    inputType: InputTypes.STRING,
    isError: false,
    error: null,
    result: null,
    data,
    index,
  };
}

/** Runs `parser` from `index` and returns its final state (success or error). */
export function runAt<T, E, D>(
  parser: Parser<T, E, D>,
  data: D,
  index: number,
): ParserState<T, E, D> {
  return parser.p(stateAt(data, index) as unknown as ParserState<T, E, D>);
}

/** A parser defined by one step function: a value and the next index, or an error. */
export function primitive<T, E, D>(
  step: (data: D, index: number) => { value: T; next: number } | { error: E },
): Parser<T, E, D> {
  return new Parser<T, E, D>((state) => {
    if (state.isError) return state;
    const out = step(state.data, state.index);
    if ("error" in out) return updateError(state, out.error);
    return updateParserState(state, out.value, out.next);
  });
}
