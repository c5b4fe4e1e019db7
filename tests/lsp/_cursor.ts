/**
 * Fixtures for language-service tests: program text with a `<|>` cursor marker (as in
 * Langium's tests), analysed as if it lived next to the seed program so that its plugin
 * modules and schema snapshot are found. One helper, so that a change of the service's API
 * touches one place.
 */
import { analyse, type Analysis } from "../../compiler/service/mod.ts";

export const SEED_FILE = new URL("../../examples/fraud_detection.he", import.meta.url).pathname;
export const SEED = Deno.readTextFileSync(SEED_FILE);

export const MARKER = "<|>";

export interface Fixture {
  analysis: Analysis;
  /** The offset where the marker stood. */
  offset: number;
  source: string;
}

/** Analyses `text` with its single `<|>` removed. */
export function cursor(text: string): Fixture {
  const offset = text.indexOf(MARKER);
  if (offset < 0 || text.indexOf(MARKER, offset + 1) >= 0) {
    throw new Error("a fixture needs exactly one <|> marker");
  }
  const source = text.slice(0, offset) + text.slice(offset + MARKER.length);
  return { analysis: analyse(source, SEED_FILE), offset, source };
}

/** The seed program with the marker placed inside the first occurrence of `at`. */
export function seedAt(at: string): Fixture {
  const i = at.indexOf(MARKER);
  const plain = at.replace(MARKER, "");
  const found = SEED.indexOf(plain);
  if (i < 0 || found < 0) throw new Error(`the seed program has no \`${plain}\``);
  return cursor(SEED.slice(0, found + i) + MARKER + SEED.slice(found + i));
}

/** The texts that spans cover, for readable assertions. */
export function texts(source: string, spans: Array<{ start: number; end: number }>): string[] {
  return spans.map((s) => source.slice(s.start, s.end));
}

/** The line (1-based) of an offset, to tell occurrences of the same name apart. */
export function lineOf(source: string, offset: number): number {
  return source.slice(0, offset).split("\n").length;
}
