/**
 * Schema fingerprints: the hex SHA-256 of a canonical text of an Arrow schema. Readers in
 * every language compare it with the handle before trusting an object, so the text is a
 * specification (docs/registry.md, "Schema fingerprint"), not an implementation detail: it
 * must never depend on apache-arrow's `toString()`, on field metadata or on the names
 * Arrow libraries give list elements, which differ between languages.
 */

import { createHash } from "node:crypto";
import {
  DataType,
  DateUnit,
  type Field,
  IntervalUnit,
  Precision,
  type Schema,
  TimeUnit,
  Type,
  UnionMode,
} from "apache-arrow";

const timeUnits: Record<TimeUnit, string> = {
  [TimeUnit.SECOND]: "s",
  [TimeUnit.MILLISECOND]: "ms",
  [TimeUnit.MICROSECOND]: "us",
  [TimeUnit.NANOSECOND]: "ns",
};

const intervalUnits: Record<IntervalUnit, string> = {
  [IntervalUnit.YEAR_MONTH]: "year_month",
  [IntervalUnit.DAY_TIME]: "day_time",
  [IntervalUnit.MONTH_DAY_NANO]: "month_day_nano",
};

const floatNames: Record<Precision, string> = {
  [Precision.HALF]: "float16",
  [Precision.SINGLE]: "float32",
  [Precision.DOUBLE]: "float64",
};

function nullability(field: Field): string {
  return field.nullable ? "" : " not null";
}

/** A named field: `"name": type`, then ` not null` when it cannot hold nulls. */
function fieldText(field: Field): string {
  return `${JSON.stringify(field.name)}: ${typeText(field.type)}${nullability(field)}`;
}

/** An element of a list or map: its type and nullability; its name is not canonical. */
function elementText(field: Field): string {
  return `${typeText(field.type)}${nullability(field)}`;
}

/** Types without parameters, by type id. */
const plainNames: Partial<Record<Type, string>> = {
  [Type.Null]: "null",
  [Type.Bool]: "bool",
  [Type.Utf8]: "utf8",
  [Type.LargeUtf8]: "large_utf8",
  [Type.Utf8View]: "utf8_view",
  [Type.Binary]: "binary",
  [Type.LargeBinary]: "large_binary",
  [Type.BinaryView]: "binary_view",
};

function typeText(type: DataType): string {
  const plain = plainNames[type.typeId];
  if (plain !== undefined) return plain;
  if (DataType.isInt(type)) return `${type.isSigned ? "int" : "uint"}${type.bitWidth}`;
  if (DataType.isFloat(type)) return floatNames[type.precision];
  if (DataType.isFixedSizeBinary(type)) return `fixed_size_binary[${type.byteWidth}]`;
  if (DataType.isDecimal(type)) return `decimal${type.bitWidth}(${type.precision},${type.scale})`;
  if (DataType.isDate(type)) return type.unit === DateUnit.DAY ? "date32" : "date64";
  if (DataType.isTime(type)) return `time${type.bitWidth}[${timeUnits[type.unit]}]`;
  if (DataType.isTimestamp(type)) {
    const zone = type.timezone ? `, ${JSON.stringify(type.timezone)}` : "";
    return `timestamp[${timeUnits[type.unit]}${zone}]`;
  }
  if (DataType.isDuration(type)) return `duration[${timeUnits[type.unit]}]`;
  if (DataType.isInterval(type)) return `interval[${intervalUnits[type.unit]}]`;
  if (DataType.isList(type)) return `list<${elementText(type.children[0])}>`;
  if (DataType.isLargeList(type)) return `large_list<${elementText(type.children[0])}>`;
  if (DataType.isFixedSizeList(type)) {
    return `fixed_size_list[${type.listSize}]<${elementText(type.children[0])}>`;
  }
  if (DataType.isStruct(type)) return `struct<${type.children.map(fieldText).join(", ")}>`;
  if (DataType.isMap(type)) {
    const [key, value] = type.children[0].type.children;
    const sorted = type.keysSorted ? ", keys_sorted" : "";
    return `map<${elementText(key)}, ${elementText(value)}${sorted}>`;
  }
  if (DataType.isUnion(type)) {
    const mode = type.mode === UnionMode.Sparse ? "sparse" : "dense";
    const members = type.children.map((child, i) => `${type.typeIds[i]}=${fieldText(child)}`);
    return `union[${mode}]<${members.join(", ")}>`;
  }
  if (DataType.isDictionary(type)) {
    const ordered = type.isOrdered ? ", ordered" : "";
    return `dictionary<${typeText(type.dictionary)}, ${typeText(type.indices)}${ordered}>`;
  }
  return `type${type.typeId}`;
}

/** The canonical text of a schema: one `fieldText` line per top-level field, in order. */
export function canonicalSchemaText(schema: Schema): string {
  return schema.fields.map(fieldText).join("\n");
}

/** Hex SHA-256 of the UTF-8 bytes of `canonicalSchemaText(schema)`. */
export function schemaFingerprint(schema: Schema): string {
  return createHash("sha256").update(canonicalSchemaText(schema), "utf8").digest("hex");
}
