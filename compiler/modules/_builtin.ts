/**
 * The contracts of the built-in `fhub/*` modules. The runtime's connectors implement them;
 * this file only states what each accepts and produces, so that programs using them are
 * checked before anything connects anywhere. It must never import a client library.
 */
import { type ArrowField, primitive } from "./_arrow.ts";
import type {
  ConfigField,
  ConfigType,
  ModuleContract,
  OpContract,
  ResourceKind,
  SlotContract,
} from "./_contract.ts";

function cfg(key: string, type: ConfigType, required: boolean, doc: string): ConfigField {
  return { key, type, required, doc };
}

function slot(name: string, resource: string, required: boolean, doc: string): SlotContract {
  return { name, resource, required, doc };
}

function op(o: Omit<OpContract, "bounded"> & { bounded?: boolean }): OpContract {
  return { bounded: false, ...o };
}

function module(
  path: string,
  resources: ResourceKind[],
  ops: OpContract[],
): ModuleContract {
  return {
    path,
    runtime: "builtin",
    entry: [],
    dir: null,
    resources: new Map(resources.map((r) => [r.name, r])),
    ops: new Map(ops.map((o) => [o.name, o])),
  };
}

function sqlModule(path: string, dialect: "postgres" | "clickhouse", port: string) {
  return module(path, [{
    name: "connection",
    doc: `A ${dialect} server.`,
    config: [
      cfg("host", "string", true, "Host name or address."),
      cfg("port", "int", false, `TCP port (default ${port}).`),
      cfg("database", "string", false, "Database name."),
      cfg("user", "string", false, "User name."),
      cfg("password", "string", false, 'Password; use `secret("NAME")`.'),
    ],
  }], [op({
    name: "query",
    doc: "Runs a SELECT; `@name` parameters bind to fields of the incoming rows.",
    role: "lookup",
    config: [cfg("query", "string", true, "The SQL text.")],
    slots: [slot("connection", `${path}.connection`, true, "The server to query.")],
    input: { kind: "open" },
    output: { kind: "sql", key: "query", dialect },
  })]);
}

const completion: ArrowField = { name: "completion", type: primitive("utf8"), nullable: false };

/** Every built-in module by import path. */
export const BUILTIN_MODULES: ReadonlyMap<string, ModuleContract> = new Map([
  [
    "fhub/kafka",
    module("fhub/kafka", [{
      name: "connection",
      doc: "A Kafka cluster.",
      config: [
        cfg("broker", "string", true, "Bootstrap servers, `host:port[,host:port]`."),
        cfg("client_id", "string", false, "Client id reported to the brokers."),
        cfg("sasl_username", "string", false, "SASL user."),
        cfg("sasl_password", "string", false, 'SASL password; use `secret("NAME")`.'),
        cfg("ssl", "bool", false, "Use TLS."),
      ],
    }], [
      op({
        name: "consume",
        doc: "Reads JSON records of a topic; unbounded.",
        role: "source",
        config: [
          cfg("topic", "string", true, "Topic to read."),
          cfg("group", "string", false, "Consumer group (default: the workflow name)."),
          cfg("from", { enum: ["earliest", "latest"] }, false, "Where a new group starts."),
          cfg("instance", "string", false, 'Static member id (default: per host; "": none).'),
        ],
        slots: [slot("broker", "fhub/kafka.connection", true, "The cluster.")],
        input: null,
        output: { kind: "open" },
      }),
      op({
        name: "produce",
        doc: "Writes each row as a JSON record.",
        role: "sink",
        config: [
          cfg("topic", "string", true, "Topic to write."),
          cfg("key", "string", false, "Field whose value becomes the record key."),
        ],
        slots: [slot("broker", "fhub/kafka.connection", true, "The cluster.")],
        input: { kind: "open" },
        output: null,
      }),
    ]),
  ],
  ["fhub/postgresql", sqlModule("fhub/postgresql", "postgres", "5432")],
  ["fhub/clickhouse", sqlModule("fhub/clickhouse", "clickhouse", "8123")],
  [
    "fhub/llm",
    module("fhub/llm", [{
      name: "connection",
      doc: "An OpenAI-compatible endpoint.",
      config: [
        cfg("base_url", "string", false, "API base URL (default: $OPENAI_BASE_URL)."),
        cfg("api_key", "string", false, "API key (default: $OPENAI_API_KEY)."),
        cfg("model", "string", false, "Default model."),
      ],
    }], [op({
      name: "prompt",
      doc: "Sends each row as the user message and appends the reply as `completion`.",
      role: "transform",
      config: [
        cfg("system", "string", true, "The system prompt."),
        cfg("model", "string", false, "Model name."),
        cfg("user", "string", false, "User message template; default: the row as JSON."),
        cfg("temperature", "number", false, "Sampling temperature."),
        cfg("max_concurrency", "int", false, "Requests in flight at once."),
        cfg("timeout", "duration", false, "Time one request may take (default 60s)."),
        cfg(
          "max_retries",
          "int",
          false,
          "Retries of a request on 429, 5xx or timeout (default 3).",
        ),
      ],
      slots: [slot("connection", "fhub/llm.connection", false, "Defaults from environment.")],
      input: { kind: "open" },
      output: { kind: "input-plus", fields: [completion] },
    })]),
  ],
  [
    "fhub/file",
    module("fhub/file", [], [
      op({
        name: "read",
        doc: "Reads a file; bounded.",
        role: "source",
        bounded: true,
        config: [
          cfg("path", "string", true, "File path."),
          cfg("format", { enum: ["csv", "jsonl", "arrow", "parquet"] }, true, "File format."),
          cfg(
            "quotes",
            { enum: ["strict", "lenient"] },
            false,
            "CSV: a bare quote in an unquoted field is a row error (strict) or text (lenient).",
          ),
          cfg("max_record_bytes", "int", false, "Longest record (row or line) read, in bytes."),
          cfg("columns", "list", false, "Parquet: the columns to read (all when absent)."),
        ],
        slots: [],
        input: null,
        output: { kind: "open" },
      }),
      op({
        name: "write",
        doc: "Writes rows to a file.",
        role: "sink",
        config: [
          cfg("path", "string", true, "File path."),
          cfg("format", { enum: ["csv", "jsonl", "arrow", "parquet"] }, true, "File format."),
        ],
        slots: [],
        input: { kind: "open" },
        output: null,
      }),
    ]),
  ],
]);
