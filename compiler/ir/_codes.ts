/**
 * The table of IR and optimiser diagnostic codes (HE04xx). Stable: never renumber or reuse.
 */
export const IR_CODES = {
  fused: {
    code: "HE0401",
    title: "stages fused",
    explanation:
      "Adjacent PRQL blocks, or adjacent steps of one plugin runtime, became one stage (info).",
  },
  batchedLookup: {
    code: "HE0402",
    title: "lookup batched",
    explanation: "A joined query step runs once per micro-batch with an array parameter (info).",
  },
  notBatched: {
    code: "HE0403",
    title: "lookup not batched",
    explanation:
      "A joined query step could not be batched (no single `col = @param` predicate) and runs per row (info).",
  },
} as const;
