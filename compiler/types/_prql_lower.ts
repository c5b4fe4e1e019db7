/**
 * Lowers inline PRQL blocks to RQ (PRQL's relational query) through prql-js, cached per block
 * text and batched. Why batched: most of a `pl_to_rq` call goes to loading PRQL's standard
 * library (about 15 ms of CPU), whatever the query, so a 10,000-line program with 400 blocks
 * spent seconds on it. `lowerAll` parses each block alone (most without prql-js, see
 * `_prql_parse.ts`), then lowers many in one call: one PL
 * tree where each block is a `let` relation whose tables (`input`, joined steps) are renamed
 * apart so that no block sees another's columns, all `append`ed as one constant column each (so
 * their own columns stay whole); the per-block RQ is cut out of the result and the names
 * restored. It must never cache anything that a block lowered alone would not give: a batch that
 * fails is split until the failing blocks stand alone, and those are lowered (and their errors
 * located) one by one.
 */
import { prqlc, PrqlCrash } from "./_prqlc.ts";
import { parsePl } from "./_prql_parse.ts";
import { resolveRq } from "./_prql_resolve.ts";
import { fill, type Shape, shapeOf } from "./_prql_shape.ts";

export type Rq = Record<string, unknown>;

export type Lowered = { rq: Rq } | { error: Rq[] } | { crash: string };

const cache = new Map<string, Lowered>();
/** RQ (JSON text with sentinels) by block shape (`_prql_shape.ts`). */
const shapes = new Map<string, string>();
/**
 * Cleared by tests that compare with prql-js lowering each block's own text: no shapes, and
 * no block lowered here (`lowerHere`).
 */
let byShape = true;

/** The text prql-js is given for a block: what the cache is keyed by. */
export function normalise(source: string): string {
  // Whole-line `//` comments are Heddle's, not PRQL's (where `//` divides): blank them in place.
  return disambiguateJoins(source.replace(/^[ \t]*\/\/.*$/gm, (m) => " ".repeat(m.length)));
}

/**
 * PRQL 0.12 finds `(==key)` ambiguous once an earlier join brought a second `key`. Heddle
 * defines `join step (==key)` as equality with the stream's own `key`, so the shorthand is
 * spelled out as `(input.key == step.key)`; the text keeps its length-independent meaning
 * and spans of everything before the rewrite stay valid.
 */
export function disambiguateJoins(text: string): string {
  return text.replace(
    /\bjoin(\s+(?:side:\w+\s+)?)([A-Za-z_]\w*)\s*\(\s*==\s*([A-Za-z_]\w*)\s*\)/g,
    (_m, gap, step, key) => `join${gap}${step} (input.${key} == ${step}.${key})`,
  );
}

/** Forgets every lowered block, so that the next check is cold (tests and benchmarks). */
export function forgetLowered(): void {
  cache.clear();
  shapes.clear();
}

/**
 * Whether blocks are lowered by shape and, in the common subset, here (the default); tests
 * compare with prql-js lowering every block alone.
 */
export function lowerByShape(on: boolean): void {
  byShape = on;
  forgetLowered();
}

/** The shape of a block's PL, when shapes are in use and it has one. */
function shapeFor(pl: string): Shape | null {
  return byShape ? shapeOf(pl) : null;
}

/** Caches the RQ of a shape's lowering and of the blocks it serves; false when it cannot. */
function rememberShape(shape: Shape, rq: string, blocks: Array<{ text: string; shape: Shape }>) {
  if (fill(rq, shape.literals) === null) return false;
  shapes.set(shape.key, rq);
  for (const b of blocks) {
    const filled = fill(rq, b.shape.literals);
    if (filled !== null) remember(b.text, { rq: JSON.parse(filled) });
  }
  return true;
}

function remember(text: string, lowered: Lowered): Lowered {
  if (cache.size > 5000) cache.clear();
  if (shapes.size > 5000) shapes.clear();
  cache.set(text, lowered);
  journal?.push([text, lowered]);
  return lowered;
}

/** Blocks lowered since the last `takeLowered`; null until it is first called. */
let journal: Array<[string, Lowered]> | null = null;

/**
 * The blocks lowered since the last call (plain data), for another thread's cache: the
 * language server's checker hands them to the thread that answers requests, which would
 * otherwise lower every block of a large program a second time. The first call starts the
 * record and returns nothing.
 */
export function takeLowered(): Array<[string, Lowered]> {
  const taken = journal ?? [];
  journal = [];
  return taken;
}

/** Adds blocks another thread lowered (`takeLowered`) to this thread's cache. */
export function addLowered(entries: Array<[string, Lowered]>): void {
  for (const [text, lowered] of entries) {
    if (cache.size > 5000) cache.clear();
    cache.set(text, lowered);
  }
}

/**
 * One block's RQ, or its PRQL errors, or the crash it caused. Only the two stages a check
 * reads run (PL, then RQ); SQL is never needed to type a block.
 */
export function lowerPrql(source: string): Lowered {
  const text = normalise(source);
  const hit = cache.get(text);
  if (hit) return hit;
  const own = lowerHere(text);
  if (own) return remember(text, own);
  let out: Lowered;
  try {
    const pl = toPl(text);
    const shape = shapeFor(pl);
    const known = shape && shapes.get(shape.key);
    if (shape && known) {
      const filled = fill(known, shape.literals);
      if (filled !== null) return remember(text, { rq: JSON.parse(filled) });
    } else if (shape) {
      let rq: string | null = null;
      try {
        rq = prqlc.plToRq(shape.pl);
      } catch {
        // The block as it is decides what is wrong with it, below.
      }
      if (rq !== null && rememberShape(shape, rq, [{ text, shape }])) return cache.get(text)!;
    }
    out = { rq: JSON.parse(prqlc.plToRq(pl)) };
  } catch (e) {
    // PL carries no spans, so `pl_to_rq` reports a resolver error without a place: only then
    // is the block compiled from its text, which locates the error.
    out = errorOf(e);
    if ("error" in out && out.error.every((x) => !x.span)) {
      try {
        prqlc.compile(text);
      } catch (located) {
        out = errorOf(located);
      }
    }
  }
  remember(text, out);
  return out;
}

/**
 * A block's RQ when both its parsing and its lowering are in the subsets done here
 * (`_prql_parse.ts`, `_prql_resolve.ts`): no prql-js call at all.
 */
function lowerHere(text: string): Lowered | null {
  if (!byShape) return null;
  const pl = parsePl(text);
  const rq = pl === null ? null : resolveRq(pl);
  return rq && { rq };
}

/**
 * The RQ of a block behind the PRQL engine's prelude, which declares `input`'s `columns` and
 * the other `relations`' (`runtime/prql`), when the block is in the subsets parsed and lowered here; null when
 * prql-js must compile it. A run then never starts prql-js for such a block.
 */
export function lowerDeclared(
  text: string,
  columns: string[],
  relations: Record<string, string[]> = {},
): Rq | null {
  const pl = parsePl(text);
  return pl === null ? null : resolveRq(pl, { columns, relations });
}

/** A block's PL: parsed here when it is in the common subset, else by prql-js. */
function toPl(text: string): string {
  return parsePl(text) ?? prqlc.prqlToPl(text);
}

function errorOf(e: unknown): Lowered {
  if (e instanceof PrqlCrash) return { crash: e.reason };
  try {
    return { error: JSON.parse((e as Error).message).inner };
  } catch {
    return { error: [{ reason: String((e as Error).message ?? e) }] };
  }
}

/**
 * Blocks per prql-js call. With the appends as a balanced tree the cost per block stays flat
 * (measured up to 256: about 15 ms per call plus 0.4 ms per block); a bound keeps one failing
 * block's bisection short.
 */
export const BATCH = 256;
const PREFIX = "__he";

/**
 * The relation names a block reads (`from x`, `join x`), or null when it cannot share a call:
 * it reads a sub-query, nests deeply (a crash would cost every block of the batch a retry), or
 * already holds the names batching makes up.
 */
function tablesOf(text: string): Set<string> | null {
  if (text.includes(PREFIX) || /[([{]{8}/.test(text)) return null;
  const names = new Set<string>();
  for (const m of text.matchAll(/\b(from|join)\s+(?:side:\w+\s+)?(\S+)/g)) {
    if (!/^[A-Za-z_]\w*$/.test(m[2])) return null;
    names.add(m[2]);
  }
  return names.size > 0 ? names : null;
}

/**
 * A block ready to share a call: its tables and its parsed query (PL JSON) alone; with a
 * shape, the query is the shape's and `alike` the other new blocks of the same shape.
 */
interface Parsed {
  text: string;
  tables: Set<string>;
  query: string;
  shape: Shape | null;
  alike: Array<{ text: string; shape: Shape }>;
}

/**
 * Lowers every block not cached yet, many per prql-js call. Each block is parsed alone (the
 * parser's cost grows faster than the text) and the parsed queries are joined into one PL tree
 * for `pl_to_rq`. Blocks that fail in a batch are left uncached; `lowerPrql` then reports them
 * one by one.
 */
export function lowerAll(sources: Iterable<string>): void {
  const fresh = new Map<string, Set<string>>();
  for (const source of sources) {
    const text = normalise(source);
    if (cache.has(text)) continue;
    const own = lowerHere(text);
    if (own) remember(text, own);
    else {
      const tables = tablesOf(text);
      if (tables) fresh.set(text, tables);
    }
  }
  // One new block (an edit in the LSP) gains nothing from a batch: `lowerPrql` takes it.
  if (fresh.size < 2) return;
  const pending: Parsed[] = [];
  const byKey = new Map<string, Parsed>();
  for (const [text, tables] of fresh) {
    let pl: string;
    try {
      pl = toPl(text);
    } catch {
      continue;
    }
    const shape = shapeFor(pl);
    if (shape) {
      const known = shapes.get(shape.key);
      const filled = known && fill(known, shape.literals);
      if (filled) {
        remember(text, { rq: JSON.parse(filled) });
        continue;
      }
      const first = byKey.get(shape.key);
      if (first) {
        first.alike.push({ text, shape });
        continue;
      }
    }
    const stmts = JSON.parse(shape?.pl ?? pl).stmts as Rq[];
    const def = stmts.length === 1 ? stmts[0].VarDef as Rq | undefined : undefined;
    if (def?.kind !== "Main") continue;
    const block = { text, tables, query: JSON.stringify(def.value), shape, alike: [] };
    pending.push(block);
    if (shape) byKey.set(shape.key, block);
  }
  for (let i = 0; i < pending.length; i += BATCH) lowerBatch(pending.slice(i, i + BATCH));
}

/** A PL call `name(args)`, as prql-js writes it. */
const call = (name: string, ...args: unknown[]) => ({ FuncCall: { name: { Ident: name }, args } });

function lowerBatch(blocks: Parsed[]): void {
  if (blocks.length < 2) return;
  // Each block becomes `let __heK = <its query>`, its tables renamed `__heK_<name>`.
  const lets = blocks.map(({ query, tables }, k) => {
    let renamed = query;
    for (const t of tables) {
      renamed = renamed.replaceAll(`{"Ident":"${t}"}`, `{"Ident":"${PREFIX}${k}_${t}"}`);
    }
    return `{"VarDef":{"kind":"Let","name":"${PREFIX}${k}","value":${renamed}}}`;
  });
  // Main appends every relation, each reduced to one constant column so that none adds
  // columns to another: `from __he0 | select {one = 1} | append (from __he1 | ...)`. The
  // appends form a balanced tree, not a chain: prql-js lowers a chain of appends in time that
  // grows faster than its length, and a few hundred overflow its stack.
  const one = call("select", { Tuple: [{ Literal: { Integer: 1 }, alias: `${PREFIX}_one` }] });
  const tree = (lo: number, hi: number): unknown[] => {
    if (hi - lo === 1) return [call("from", { Ident: `${PREFIX}${lo}` }), one];
    const mid = (lo + hi) >> 1;
    return [...tree(lo, mid), call("append", { Pipeline: { exprs: tree(mid, hi) } })];
  };
  const exprs = tree(0, blocks.length);
  const main = { VarDef: { kind: "Main", name: "main", value: { Pipeline: { exprs } } } };
  const pl = `{"name":"Project","stmts":[${lets.join(",")},${JSON.stringify(main)}]}`;
  let rq: Rq;
  try {
    rq = JSON.parse(prqlc.plToRq(pl));
  } catch {
    const half = blocks.length >> 1;
    lowerBatch(blocks.slice(0, half));
    lowerBatch(blocks.slice(half));
    return;
  }
  const tables = new Map<unknown, Rq>();
  for (const t of rq.tables as Rq[]) tables.set(t.id, t);
  for (const t of rq.tables as Rq[]) {
    const k = /^__he(\d+)$/.exec(String(t.name))?.[1];
    if (k === undefined) continue;
    const relation = t.relation as Rq;
    // The block's own query: its relation, and the tables it reads (the ids stay valid).
    const read = new Set<unknown>();
    for (const step of ((relation.kind as Rq).Pipeline as Rq[] | undefined) ?? []) {
      const from = step.From as Rq | undefined;
      const join = (step.Join as Rq | undefined)?.with as Rq | undefined;
      if (from) read.add(from.source);
      if (join) read.add(join.source);
    }
    const own = { def: rq.def, tables: [...read].map((id) => tables.get(id)), relation };
    const restored = JSON.stringify(own).replaceAll(`${PREFIX}${k}_`, "");
    const block = blocks[Number(k)];
    if (!block.shape) remember(block.text, { rq: JSON.parse(restored) });
    else {rememberShape(block.shape, restored, [
        { text: block.text, shape: block.shape },
        ...block.alike,
      ]);}
  }
}
