/**
 * Connectors: the runtime side of the built-in `fhub/*` modules. The compiler knows their
 * contracts (compiler/modules); this folder holds the code that talks to files, brokers and
 * databases, behind four small interfaces (Source, Transform, Lookup, Sink) that the
 * executor drives. A connector must never decide about retries, quarantine or commits: it
 * reports failures as `ConnectorError`s and lets the executor apply the step's policy.
 */
import type { ConnectorFactory } from "./_types.ts";
import { fileRead, fileWrite } from "./file.ts";
import { kafkaConsume, kafkaProduce } from "./kafka.ts";
import { postgresqlQuery } from "./postgresql.ts";
import { clickhouseQuery } from "./clickhouse.ts";
import { llmPrompt } from "./llm.ts";
export { databaseCatalog } from "./catalog.ts";

export * from "./_types.ts";
export {
  coerce,
  jsonValue,
  rawRowsOf,
  rowsOf,
  tableFromRows,
  toArrowField,
  toArrowSchema,
} from "./_arrow.ts";

/** Maps qualified operation names (`fhub/file.read`) to implementations. */
export class ConnectorRegistry {
  #factories = new Map<string, ConnectorFactory>();

  /** Registers `factory` for `fhub/<module>.<op>`; a later registration replaces it. */
  register(name: string, factory: ConnectorFactory): this {
    this.#factories.set(name, factory);
    return this;
  }

  get(name: string): ConnectorFactory | undefined {
    return this.#factories.get(name);
  }

  names(): string[] {
    return [...this.#factories.keys()].sort();
  }
}

/** A registry holding every connector built into this runtime. */
export function builtinConnectors(): ConnectorRegistry {
  return new ConnectorRegistry()
    .register("fhub/file.read", fileRead)
    .register("fhub/file.write", fileWrite)
    .register("fhub/kafka.consume", kafkaConsume)
    .register("fhub/kafka.produce", kafkaProduce)
    .register("fhub/postgresql.query", postgresqlQuery)
    .register("fhub/clickhouse.query", clickhouseQuery)
    .register("fhub/llm.prompt", llmPrompt);
}
