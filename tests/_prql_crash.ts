/**
 * The finding of issue 15 that broke prql-js for the rest of a process: a PRQL block with 25
 * nested parentheses. Shared by the compiler's isolation tests and the daemon's and language
 * server's, so that each replays the very same program. The comment under the block is the
 * diagnostic the checker must report there (`_expect.ts`).
 */
/** 25 nested parentheses in one PRQL expression. */
export const nested = "(".repeat(25) + "1" + ")".repeat(25);
export const bad = `import "fhub/file" file

workflow Bad {
  file.read { path: "in.csv", format: "csv" }
  | (
    from input
    derive x = ${nested}
//             ${"^".repeat(nested.length)} error[HE0208]: the PRQL compiler failed on this block
  )
  | file.write { path: "out.csv", format: "csv" }
}
`;
