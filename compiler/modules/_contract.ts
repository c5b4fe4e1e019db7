/**
 * The contract of a module: what the compiler may know about an imported module without
 * running it. Built-in `fhub/*` modules declare theirs in TypeScript; plugin modules in a
 * `heddle.manifest.json` (see docs/manifest.md). Contracts are data only: they must never
 * hold code that talks to a database or a plugin.
 */
import type { ArrowField } from "./_arrow.ts";

/** The type of a config value as a contract declares it. */
export type ConfigType =
  | "string"
  | "int"
  | "number"
  | "bool"
  | "duration"
  | "list"
  | "object"
  | { enum: string[] };

export interface ConfigField {
  key: string;
  type: ConfigType;
  required: boolean;
  doc: string;
}

/** A kind of resource a module provides, such as `pg.connection`. */
export interface ResourceKind {
  name: string;
  doc: string;
  config: ConfigField[];
}

/** An injection slot: `<connection=pg_db>` fills slot `connection`. */
export interface SlotContract {
  name: string;
  /** The resource kind it accepts, qualified by module path: `fhub/postgresql.connection`. */
  resource: string;
  required: boolean;
  doc: string;
}

export type OpRole =
  /** Produces rows and accepts none. */
  | "source"
  /** Turns each micro-batch of rows into another. */
  | "transform"
  /** Consumes rows and produces none. */
  | "sink"
  /** A parameterised query: a transform, or the right side of a PRQL `join`. */
  | "lookup";

/** How an operation's input or output row is determined. */
export type RowContract =
  /** Exactly these fields (or at least these, when `open`). */
  | { kind: "fields"; fields: ArrowField[]; open: boolean }
  /** The incoming row with these fields appended. */
  | { kind: "input-plus"; fields: ArrowField[] }
  /** Not known before the run: an open row that usage constrains. */
  | { kind: "open" }
  /** The columns of the SQL text in config key `key` (from the schema snapshot). */
  | { kind: "sql"; key: string; dialect: "postgres" | "clickhouse" };

export interface OpContract {
  name: string;
  doc: string;
  role: OpRole;
  /** Whether a source ends by itself; meaningless for other roles. */
  bounded: boolean;
  config: ConfigField[];
  slots: SlotContract[];
  /** Null for sources. */
  input: RowContract | null;
  /** Null for sinks. */
  output: RowContract | null;
}

export type ModuleRuntime = "builtin" | "typescript" | "python" | "go" | "rust";

export interface ModuleContract {
  /** The import path: `fhub/postgresql`, `fraud-score/detect`. */
  path: string;
  runtime: ModuleRuntime;
  /** For plugins: the command that starts the plugin process, relative to `dir`. */
  entry: string[];
  /**
   * For compiled plugins (Go, Rust): the command that builds the package on first use;
   * `{binary}` stands for where the binary goes, and `entry` runs it (docs/manifest.md).
   */
  build?: string[];
  /** For plugins: the package directory that holds the manifest. */
  dir: string | null;
  resources: Map<string, ResourceKind>;
  ops: Map<string, OpContract>;
}
