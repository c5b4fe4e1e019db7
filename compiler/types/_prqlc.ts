/**
 * prql-js (PRQL's compiler, built to WebAssembly) behind one boundary that no input can break.
 * A trap inside the instance (deeply nested brackets overflow its stack and show as "memory
 * access out of bounds") leaves its memory and shadow stack corrupt, and every later call in
 * the process would fail or answer wrongly. So a trap discards the instance, a fresh one is
 * loaded (the package's own bindings evaluated anew, which instantiates a new module), and the
 * input is tried once more there before it is blamed. It must never hand out anything computed
 * by an instance that trapped: the compiler and the PRQL engine both call prql-js through here.
 */
import { createRequire } from "node:module";

type Bindings = typeof import("prql-js");

const require = createRequire(import.meta.url);
const entry = require.resolve("prql-js");

/** The input made prql-js itself fail twice, on the old and on a fresh instance. */
export class PrqlCrash extends Error {
  constructor(readonly reason: string) {
    super(`the PRQL compiler failed on this input (${reason})`);
  }
}

/**
 * Loaded on the first call, not with this module: most checks lower every block without
 * prql-js (`_prql_resolve.ts`), and loading it compiles several megabytes of WebAssembly.
 */
let loaded: Bindings | null = null;
let instances = 1;

/** Evaluates prql-js's bindings again: a new module state around a new WebAssembly instance. */
function reload(): void {
  delete require.cache[entry];
  loaded = require(entry);
  instances++;
}

/** A trap or an exhausted stack inside WebAssembly; PRQL's own errors are plain `Error`s. */
function isCrash(e: unknown): e is Error {
  return e instanceof WebAssembly.RuntimeError || e instanceof RangeError;
}

function guarded(call: (b: Bindings) => string | undefined): string {
  for (let attempt = 0;; attempt++) {
    try {
      loaded ??= require(entry) as Bindings;
      return call(loaded) ?? "";
    } catch (e) {
      if (!isCrash(e)) throw e;
      reload();
      if (attempt > 0) throw new PrqlCrash(e.message);
    }
  }
}

/** Calls made per prql-js function, for tests and benchmarks that count work. */
const calls = { prqlToPl: 0, plToRq: 0, rqToSql: 0, compile: 0 };

/**
 * prql-js's stage functions (PRQL's names: PL is the parsed tree, RQ the relational query).
 * PRQL errors are thrown as prql-js throws them (an `Error` whose message is JSON); an input
 * that crashes the compiler is thrown as `PrqlCrash`.
 */
export const prqlc = {
  prqlToPl: (text: string): string => (calls.prqlToPl++, guarded((b) => b.prql_to_pl(text))),
  plToRq: (pl: string): string => (calls.plToRq++, guarded((b) => b.pl_to_rq(pl))),
  rqToSql: (rq: string): string => (calls.rqToSql++, guarded((b) => b.rq_to_sql(rq))),
  /** All stages to generic SQL: slower, but its errors carry spans in `text`. */
  compile: (text: string): string => {
    calls.compile++;
    return guarded((b) => {
      const options = new b.CompileOptions();
      options.target = "sql.generic";
      options.signature_comment = false;
      return b.compile(text, options);
    });
  },
  /** How many WebAssembly instances this process has made: 1 until an input crashed one. */
  get instances(): number {
    return instances;
  },
  /** A copy of the call counts so far. */
  get calls(): Readonly<typeof calls> {
    return { ...calls };
  },
};
