/**
 * Arrow schemas against the row contracts of a manifest (docs/manifest.md). Both sides of the
 * protocol check outputs with this one function: the SDK before it writes shared memory, the
 * host after it maps what a plugin wrote (a plugin may use another SDK, or a stale manifest).
 * Types are compared in the manifest's type text (compiler/modules `typeToString`), so this
 * file must spell every type exactly as that grammar does and never as apache-arrow does.
 */

import { type DataType, DateUnit, type Field, type Schema, TimeUnit, Type } from "apache-arrow";

/** A declared column in manifest form: `type` is manifest type text such as `list<int64?>`. */
export interface DeclaredField {
  name: string;
  type: string;
  nullable: boolean;
}

/** A row contract as the protocol needs it (the manifest's `input`/`output`). */
export type DeclaredRow =
  /** Exactly these columns in this order, or at least them (any order) when `open`. */
  | { kind: "fields"; fields: DeclaredField[]; open: boolean }
  /** The input row followed by these columns. */
  | { kind: "input-plus"; fields: DeclaredField[] }
  /** Anything. */
  | { kind: "open" };

const units: Record<TimeUnit, string> = {
  [TimeUnit.SECOND]: "s",
  [TimeUnit.MILLISECOND]: "ms",
  [TimeUnit.MICROSECOND]: "us",
  [TimeUnit.NANOSECOND]: "ns",
};

function elementText(field: Field): string {
  return `${arrowTypeText(field.type)}${field.nullable ? "?" : ""}`;
}

/** The manifest type text of an apache-arrow type; `unsupported<...>` when it has none. */
export function arrowTypeText(dataType: DataType): string {
  // deno-lint-ignore no-explicit-any -- each case reads the parameters of its own Arrow type.
  const type: any = dataType;
  switch (type.typeId) {
    case Type.Null:
      return "null";
    case Type.Bool:
      return "bool";
    case Type.Int:
      return `${type.isSigned ? "int" : "uint"}${type.bitWidth}`;
    case Type.Float:
      return ["float16", "float32", "float64"][type.precision as number];
    case Type.Utf8:
      return "utf8";
    case Type.LargeUtf8:
      return "large_utf8";
    case Type.Binary:
      return "binary";
    case Type.Date:
      return type.unit === DateUnit.DAY ? "date32" : "date64";
    case Type.Duration:
      return "duration";
    case Type.Timestamp: {
      const unit = units[type.unit as TimeUnit];
      return type.timezone ? `timestamp[${unit}, ${type.timezone}]` : `timestamp[${unit}]`;
    }
    case Type.Decimal:
      return `decimal(${type.precision}, ${type.scale})`;
    case Type.List:
      return `list<${elementText(type.children[0])}>`;
    case Type.Struct:
      return `struct<${
        type.children.map((f: Field) => `${f.name}: ${elementText(f)}`).join(", ")
      }>`;
    default:
      return `unsupported<${Type[type.typeId] ?? type.typeId}>`;
  }
}

/** A declared field of an apache-arrow field. */
export function declaredField(field: Field): DeclaredField {
  return { name: field.name, type: arrowTypeText(field.type), nullable: field.nullable };
}

/** What is wrong with a schema, naming the column. */
export interface SchemaViolation {
  column: string;
  message: string;
}

/**
 * Checks `schema` against `row` (for an output, `input` is the schema of the step's input,
 * which an `input-plus` row starts with). Returns the first violation, or null.
 */
export function checkSchema(
  schema: Schema,
  row: DeclaredRow,
  input: Schema | null,
): SchemaViolation | null {
  if (row.kind === "open") return null;
  const found = schema.fields.map(declaredField);
  let expected = row.fields;
  let exact = row.kind === "input-plus" || !row.open;
  if (row.kind === "input-plus") {
    if (input === null) return null;
    expected = [...input.fields.map(declaredField), ...row.fields];
    exact = true;
  }
  const byName = new Map(found.map((f) => [f.name, f]));
  for (const [i, want] of expected.entries()) {
    const got = exact ? found[i] : byName.get(want.name);
    if (got === undefined || (exact && got.name !== want.name && !byName.has(want.name))) {
      return { column: want.name, message: `column \`${want.name}\` is missing` };
    }
    if (got.name !== want.name) {
      return {
        column: want.name,
        message: `column \`${got.name}\` stands where \`${want.name}\` is declared`,
      };
    }
    if (got.type !== want.type) {
      return {
        column: want.name,
        message: `column \`${want.name}\` is ${got.type}, but ${want.type} is declared`,
      };
    }
  }
  if (exact && found.length > expected.length) {
    const extra = found[expected.length].name;
    return { column: extra, message: `column \`${extra}\` is not declared` };
  }
  return null;
}
