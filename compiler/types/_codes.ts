/**
 * The tables of type diagnostic codes (HE02xx) and SQL diagnostic codes (HE03xx). Codes
 * are stable: tests and docs/contracts.md refer to them; never renumber or reuse one.
 */
export const TYPE_CODES = {
  prql: {
    code: "HE0201",
    title: "PRQL error",
    explanation:
      "The PRQL compiler rejected the block (an unknown or dropped column, a syntax error, an ambiguous name).",
  },
  typeConflict: {
    code: "HE0202",
    title: "type conflict",
    explanation: "Two places demand incompatible types of the same field; the labels name both.",
  },
  missingField: {
    code: "HE0203",
    title: "missing field",
    explanation: "A contract or a PRQL block needs a field that the rows flowing in do not have.",
  },
  unknownTable: {
    code: "HE0204",
    title: "unknown table in PRQL",
    explanation:
      "A PRQL block reads from `input` and may join declared steps; any other table name is unknown.",
  },
  joinKey: {
    code: "HE0205",
    title: "join key missing",
    explanation: "A join key is missing on one side of a PRQL `join`.",
  },
  notJoinable: {
    code: "HE0206",
    title: "step cannot be joined",
    explanation: "Only lookup steps (parameterised queries) may be joined in PRQL.",
  },
  annotation: {
    code: "HE0207",
    title: "annotation does not match",
    explanation: "The rows do not match the annotated row type.",
  },
  prqlCrash: {
    code: "HE0208",
    title: "PRQL compiler failed",
    explanation:
      "prql-js itself failed on the block (usually brackets nested about 20 deep); it is restarted and other blocks are checked as usual.",
  },
  misspelt: {
    code: "HE0210",
    title: "possibly misspelt column",
    explanation:
      "A PRQL block reads a column that nothing else uses, while the rows have a column of a close name that a contract pins or other reads use (warning).",
  },
  deadline: {
    code: "HE0209",
    title: "check took too long",
    explanation:
      "Checking ran past the caller's deadline (`check()`'s `limits.timeoutMs`) and stopped; split the program or raise the limit.",
  },
} as const;

export const SQL_CODES = {
  noSnapshot: {
    code: "HE0301",
    title: "query types unknown",
    explanation:
      "No schema snapshot entry for this query: its columns stay open. Run `heddle check --introspect` (warning).",
  },
  paramMissing: {
    code: "HE0302",
    title: "SQL parameter not bound",
    explanation:
      "An `@name` parameter must be a field of the rows flowing in (for a join target: the left input of the join).",
  },
  paramType: {
    code: "HE0303",
    title: "SQL parameter of the wrong type",
    explanation: "The field bound to an `@name` parameter has a type the database does not accept.",
  },
  selectList: {
    code: "HE0304",
    title: "SELECT list unreadable",
    explanation: "Every output column needs a name: a column or `expr AS name`.",
  },
  snapshotInvalid: {
    code: "HE0305",
    title: "schema snapshot invalid",
    explanation: "The `<program>.schema.json` file is not a valid snapshot.",
  },
  snapshotStale: {
    code: "HE0306",
    title: "snapshot disagrees with query",
    explanation:
      "The snapshot's columns differ from the query's SELECT list; refresh it with `heddle check --introspect`.",
  },
  introspectionFailed: {
    code: "HE0307",
    title: "introspection failed",
    explanation:
      "`heddle check --introspect` could not describe a query: the database is unreachable, rejects the login, or the SQL is wrong.",
  },
} as const;
