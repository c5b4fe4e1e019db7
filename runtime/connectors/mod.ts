/**
 * Connectors: the runtime side of the built-in `fhub/*` modules. The compiler knows their
 * contracts (compiler/modules); this folder holds the code that talks to files, brokers and
 * databases, behind four small interfaces (Source, Transform, Lookup, Sink) that the
 * executor drives. A connector must never decide about retries, quarantine or commits: it
 * reports failures as `ConnectorError`s and lets the executor apply the step's policy.
 */
import type { ConnectorContext, ConnectorFactory, Source } from "./_types.ts";
import { fileRead, fileWrite } from "./file.ts";
import type { Catalog } from "../../compiler/mod.ts";

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

/**
 * A connector whose module is imported when a step first opens it. The client libraries
 * cost start-up time in every process that loads them (the Kafka client compiles its
 * option schemas with ajv on import: about 0.4 s of CPU), so a run that reads and writes
 * files never pays for Kafka, the databases or the LLM client.
 */
function lazy(
  role: ConnectorFactory["role"],
  load: () => Promise<ConnectorFactory>,
  startsPipelines = false,
): ConnectorFactory {
  const open = async (ctx: ConnectorContext) => await (await load()).open(ctx);
  if (role !== "lookup") return { role, open } as ConnectorFactory;
  const openSource = async (ctx: ConnectorContext): Promise<Source> => {
    const factory = await load();
    if (factory.role !== "lookup" || !factory.openSource) {
      throw new Error("this connector cannot start a pipeline");
    }
    return await factory.openSource(ctx);
  };
  return { role, open, ...(startsPipelines ? { openSource } : {}) } as ConnectorFactory;
}

/** A registry holding every connector built into this runtime. */
export function builtinConnectors(): ConnectorRegistry {
  const kafka = () => import("./kafka.ts");
  return new ConnectorRegistry()
    .register("fhub/file.read", fileRead)
    .register("fhub/file.write", fileWrite)
    .register("fhub/kafka.consume", lazy("source", async () => (await kafka()).kafkaConsume))
    .register("fhub/kafka.produce", lazy("sink", async () => (await kafka()).kafkaProduce))
    .register(
      "fhub/postgresql.query",
      lazy("lookup", async () => (await import("./postgresql.ts")).postgresqlQuery, true),
    )
    .register(
      "fhub/clickhouse.query",
      lazy("lookup", async () => (await import("./clickhouse.ts")).clickhouseQuery, true),
    )
    .register(
      "fhub/llm.prompt",
      lazy("transform", async () => (await import("./llm.ts")).llmPrompt),
    );
}

/** The database catalog `heddle check` asks (catalog.ts), loaded with its clients on use. */
export const databaseCatalog: Catalog = async (request) =>
  await (await import("./catalog.ts")).databaseCatalog(request);
