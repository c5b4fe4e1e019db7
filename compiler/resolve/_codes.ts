/**
 * The table of name-resolution diagnostic codes (HE01xx). Codes are stable: tests and
 * docs/contracts.md refer to them, so a code is never renumbered or reused.
 */
export const RESOLVE_CODES = {
  unknownModule: {
    code: "HE0101",
    title: "unknown module",
    explanation:
      "An `import` path is neither a built-in `fhub/*` module nor found in a `heddle.manifest.json` on the module path.",
  },
  duplicate: {
    code: "HE0102",
    title: "declared twice",
    explanation:
      "Imports, resources, steps, handlers, types and workflows share one namespace; each name is declared once, and a stream may not take a declared name.",
  },
  unknownMember: {
    code: "HE0103",
    title: "unknown module member",
    explanation: "The module has no operation or resource kind of that name.",
  },
  unknownAlias: {
    code: "HE0104",
    title: "unknown module alias",
    explanation: "`alias.member` names an alias that no `import` declares.",
  },
  undefinedStage: {
    code: "HE0105",
    title: "undefined step or stream",
    explanation:
      "A bare name in a pipeline must be a declared step or a stream bound in the same workflow.",
  },
  undefinedResource: {
    code: "HE0106",
    title: "undefined resource",
    explanation: "An injection `<slot=name>` names no declared resource.",
  },
  undefinedHandler: {
    code: "HE0107",
    title: "undefined handler",
    explanation: "`? name` names no declared handler.",
  },
  undefinedType: {
    code: "HE0108",
    title: "undefined type",
    explanation: "A type annotation names neither an Arrow type nor a `type` declaration.",
  },
  streamBoundTwice: {
    code: "HE0109",
    title: "stream bound twice",
    explanation: "A stream name is bound by `> name` once per workflow.",
  },
  streamBeforeBound: {
    code: "HE0110",
    title: "stream used before bound",
    explanation: "A stream is read only by statements after the one that binds it.",
  },
  unusedStream: {
    code: "HE0111",
    title: "stream never used",
    explanation: "A stream is bound but no statement reads it (warning).",
  },
  cycle: {
    code: "HE0112",
    title: "cycle",
    explanation: "A type declaration or a handler refers to itself, directly or through others.",
  },
  unknownConfigKey: {
    code: "HE0113",
    title: "unknown config key",
    explanation: "The operation or resource kind declares no config key of that name.",
  },
  missingConfigKey: {
    code: "HE0114",
    title: "missing config key",
    explanation: "A required config key is not given.",
  },
  configType: {
    code: "HE0115",
    title: "config value of the wrong type",
    explanation: "A config value does not have the type the contract declares.",
  },
  unknownSlot: {
    code: "HE0116",
    title: "unknown injection slot",
    explanation: "The operation declares no injection slot of that name.",
  },
  wrongResourceKind: {
    code: "HE0117",
    title: "resource of the wrong kind",
    explanation: "The injected resource is not of the kind the slot accepts.",
  },
  missingSlot: {
    code: "HE0118",
    title: "missing injection",
    explanation: "A required injection slot is not filled.",
  },
  notAnOperation: {
    code: "HE0119",
    title: "not an operation",
    explanation: "A resource kind is used where an operation is expected, or the reverse.",
  },
  misplacedWildcard: {
    code: "HE0120",
    title: "misplaced `*`",
    explanation:
      "`*` (the failed rows) may only start a handler's first pipeline, and that pipeline must start with it.",
  },
  misplacedStage: {
    code: "HE0121",
    title: "stage out of place",
    explanation:
      "A source must start a pipeline (a SQL query only without `@` parameters), a stream may only be read at the start, and nothing may follow a sink.",
  },
  notAHandler: {
    code: "HE0122",
    title: "not a handler",
    explanation: "A name after `?` is declared, but not as a handler.",
  },
  unusedDeclaration: {
    code: "HE0123",
    title: "declaration never used",
    explanation: "An import, resource, step or handler is declared but never used (warning).",
  },
  slotTwice: {
    code: "HE0124",
    title: "slot filled twice",
    explanation: "The same injection slot is given more than once.",
  },
  configKeyTwice: {
    code: "HE0125",
    title: "config key given twice",
    explanation: "The same config key is written more than once in one object.",
  },
  typeTooDeep: {
    code: "HE0126",
    title: "type nested too deep",
    explanation:
      "A type nests lists or row types more than 64 levels deep through other `type` declarations.",
  },
} as const;
