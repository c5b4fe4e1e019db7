/**
 * Arrow logical types as the compiler sees them: the vocabulary in which every contract
 * (built-in modules, plugin manifests, schema snapshots, `type` declarations) is written.
 * Types are plain data with a canonical text form (`int64`, `list<float64>`,
 * `timestamp[us]`) so that they serialise into manifests and the IR unchanged. This file
 * must never know about inference: type variables live in `compiler/types/`.
 */

/** A concrete Arrow logical type. */
export type ArrowType =
  | { kind: "primitive"; name: PrimitiveName }
  | { kind: "timestamp"; unit: "s" | "ms" | "us" | "ns"; tz: string | null }
  | { kind: "decimal"; precision: number; scale: number }
  | { kind: "list"; element: ArrowField }
  | { kind: "struct"; fields: ArrowField[] };

export const PRIMITIVES = [
  "null",
  "bool",
  "int8",
  "int16",
  "int32",
  "int64",
  "uint8",
  "uint16",
  "uint32",
  "uint64",
  "float16",
  "float32",
  "float64",
  "utf8",
  "large_utf8",
  "binary",
  "date32",
  "date64",
  "duration",
] as const;
export type PrimitiveName = typeof PRIMITIVES[number];

/** A named, possibly nullable column. */
export interface ArrowField {
  name: string;
  type: ArrowType;
  nullable: boolean;
}

/** The family a type belongs to; comparisons and arithmetic are allowed inside a family. */
export type TypeFamily = "numeric" | "text" | "bool" | "temporal" | "binary" | "nested" | "null";

export function familyOf(t: ArrowType): TypeFamily {
  if (t.kind === "timestamp") return "temporal";
  if (t.kind === "decimal") return "numeric";
  if (t.kind === "list" || t.kind === "struct") return "nested";
  const n = t.name;
  if (n === "null") return "null";
  if (n === "bool") return "bool";
  if (n === "utf8" || n === "large_utf8") return "text";
  if (n === "binary") return "binary";
  if (n.startsWith("date") || n === "duration") return "temporal";
  return "numeric";
}

export function primitive(name: PrimitiveName): ArrowType {
  return { kind: "primitive", name };
}

export function typeToString(t: ArrowType): string {
  switch (t.kind) {
    case "primitive":
      return t.name;
    case "timestamp":
      return t.tz ? `timestamp[${t.unit}, ${t.tz}]` : `timestamp[${t.unit}]`;
    case "decimal":
      return `decimal(${t.precision}, ${t.scale})`;
    case "list":
      return `list<${typeToString(t.element.type)}${t.element.nullable ? "?" : ""}>`;
    case "struct":
      return `struct<${
        t.fields.map((f) => `${f.name}: ${typeToString(f.type)}${f.nullable ? "?" : ""}`).join(
          ", ",
        )
      }>`;
  }
}

/**
 * Whether a value of type `found` may flow where `expected` is declared. Numbers widen
 * (int32 into int64 or float64), `large_utf8` and `utf8` interchange; everything else must
 * be equal.
 */
export function assignable(found: ArrowType, expected: ArrowType): boolean {
  if (typeToString(found) === typeToString(expected)) return true;
  const ff = familyOf(found);
  if (ff === "null") return true;
  if (ff !== familyOf(expected)) return false;
  if (ff === "text") return true;
  if (ff === "numeric") return numericRank(found) <= numericRank(expected);
  return false;
}

function numericRank(t: ArrowType): number {
  if (t.kind === "decimal") return 50;
  if (t.kind !== "primitive") return 0;
  const ranks: Record<string, number> = {
    int8: 10,
    uint8: 11,
    int16: 20,
    uint16: 21,
    int32: 30,
    uint32: 31,
    int64: 40,
    uint64: 41,
    float16: 60,
    float32: 70,
    float64: 80,
  };
  return ranks[t.name] ?? 0;
}

/** Aliases accepted in manifests, snapshots and annotations for the canonical names. */
const ALIASES: Record<string, PrimitiveName> = {
  string: "utf8",
  text: "utf8",
  boolean: "bool",
  int: "int64",
  float: "float64",
  double: "float64",
  date: "date32",
};

/** Parses the canonical text form; returns an error message instead of throwing. */
export function parseType(text: string): ArrowType | string {
  const parser = new TypeTextParser(text);
  const t = parser.type();
  if (typeof t === "string") return t;
  parser.skipSpace();
  if (parser.pos !== text.length) return `unexpected \`${text.slice(parser.pos)}\` in type`;
  return t;
}

class TypeTextParser {
  pos = 0;
  constructor(private text: string) {}

  skipSpace(): void {
    while (this.text[this.pos] === " ") this.pos++;
  }

  word(): string {
    this.skipSpace();
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.pos));
    if (!m) return "";
    this.pos += m[0].length;
    return m[0];
  }

  eat(ch: string): boolean {
    this.skipSpace();
    if (this.text.startsWith(ch, this.pos)) {
      this.pos += ch.length;
      return true;
    }
    return false;
  }

  field(name: string): ArrowField | string {
    const t = this.type();
    if (typeof t === "string") return t;
    return { name, type: t, nullable: this.eat("?") };
  }

  type(): ArrowType | string {
    const w = this.word();
    if (w === "list") {
      if (!this.eat("<")) return "expected `<` after `list`";
      const el = this.field("item");
      if (typeof el === "string") return el;
      if (!this.eat(">")) return "expected `>` to close `list<`";
      return { kind: "list", element: el };
    }
    if (w === "struct") {
      if (!this.eat("<")) return "expected `<` after `struct`";
      const fields: ArrowField[] = [];
      while (!this.eat(">")) {
        const name = this.word();
        if (!name || !this.eat(":")) return "expected `name: type` in struct";
        const f = this.field(name);
        if (typeof f === "string") return f;
        fields.push(f);
        this.eat(",");
        if (this.pos >= this.text.length) return "expected `>` to close `struct<`";
      }
      return { kind: "struct", fields };
    }
    if (w === "timestamp") {
      if (!this.eat("[")) return { kind: "timestamp", unit: "us", tz: null };
      const unit = this.word();
      if (!["s", "ms", "us", "ns"].includes(unit)) return `unknown timestamp unit \`${unit}\``;
      let tz: string | null = null;
      if (this.eat(",")) {
        this.skipSpace();
        const end = this.text.indexOf("]", this.pos);
        if (end < 0) return "expected `]`";
        tz = this.text.slice(this.pos, end).trim();
        this.pos = end;
      }
      if (!this.eat("]")) return "expected `]`";
      return { kind: "timestamp", unit: unit as "s" | "ms" | "us" | "ns", tz };
    }
    if (w === "decimal") {
      const m = /^\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)/.exec(this.text.slice(this.pos));
      if (!m) return "expected `decimal(precision, scale)`";
      this.pos += m[0].length;
      return { kind: "decimal", precision: Number(m[1]), scale: Number(m[2]) };
    }
    const name = ALIASES[w] ?? w;
    if ((PRIMITIVES as readonly string[]).includes(name)) {
      return { kind: "primitive", name: name as PrimitiveName };
    }
    return w ? `unknown type \`${w}\`` : "expected a type";
  }
}
