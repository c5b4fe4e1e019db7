/**
 * Row-polymorphic inference state: type variables (union-find, each remembering where it
 * was constrained) and rows whose unknown remainder may be another row's remainder. An
 * open row grows a field when usage demands it; a closed row refuses. This file holds the
 * mechanism only; which program constructs demand what lives in `mod.ts`.
 */
import type { Span } from "../diagnostics/_types.ts";
import {
  type ArrowField,
  type ArrowType,
  assignable,
  familyOf,
  type TypeFamily,
  typeToString,
} from "../modules/mod.ts";

/** Where a type or a row got known, for "expected here" / "found there" labels. */
export interface Site {
  span: Span;
  note: string;
}

export class TypeVar {
  parent: TypeVar | null = null;
  type: ArrowType | null = null;
  family: TypeFamily | null = null;
  nullable = false;
  constructor(public site: Site) {}

  /** The representative; a loop with path compression, since chains can be long. */
  root(): TypeVar {
    if (!this.parent) return this;
    let r = this.parent;
    while (r.parent) r = r.parent;
    let v = this.parent;
    this.parent = r;
    while (v !== r) {
      const next = v.parent!;
      v.parent = r;
      v = next;
    }
    return r;
  }

  describe(): string {
    const r = this.root();
    if (r.type) return typeToString(r.type);
    return r.family ? `a ${r.family} value` : "an unknown type";
  }
}

export function known(t: ArrowType, site: Site, nullable = false): TypeVar {
  const v = new TypeVar(site);
  v.type = t;
  v.family = familyOf(t);
  v.nullable = nullable;
  return v;
}

/** A type conflict: both sites, for the diagnostic's labels. */
export interface Conflict {
  expected: Site;
  found: Site;
  message: string;
}

/** Demands that `v` belongs to `family`; returns the conflict or null. */
export function constrain(v: TypeVar, family: TypeFamily, site: Site): Conflict | null {
  const r = v.root();
  if (r.family === null || r.family === "null") {
    r.family = family;
    r.site = site;
    return null;
  }
  if (r.family === family) return null;
  return {
    expected: site,
    found: r.site,
    message: `expected a ${family} value, found ${r.describe()}`,
  };
}

/**
 * Makes `found` flow where `expected` is declared: concrete types must be assignable,
 * families equal; unknowns take the other's knowledge and become one variable.
 */
export function unify(expected: TypeVar, found: TypeVar): Conflict | null {
  const e = expected.root();
  const f = found.root();
  if (e === f) return null;
  const conflict = (): Conflict => ({
    expected: e.site,
    found: f.site,
    message: `expected ${e.describe()}, found ${f.describe()}`,
  });
  if (e.type && f.type) return assignable(f.type, e.type) ? null : conflict();
  if (e.family && f.family && e.family !== f.family && f.family !== "null") return conflict();
  // The more specific variable becomes the root so that its site explains later conflicts.
  if (f.type || (!e.type && f.family && !e.family)) {
    e.parent = f;
  } else {
    f.parent = e;
  }
  return null;
}

export class Row {
  fields = new Map<string, TypeVar>();
  /** Field names in the order they were added: the column order. */
  order: string[] = [];
  /** Whether unknown fields may still appear; ignored when `rest` is set. */
  private openFlag: boolean;
  /** The unknown remainder is `rest.row`'s, minus the excluded names. */
  rest: { row: Row; exclude: Set<string> } | null = null;

  constructor(public site: Site, open: boolean) {
    this.openFlag = open;
  }

  get open(): boolean {
    return this.rest ? this.rest.row.open : this.openFlag;
  }

  close(site: Site): void {
    this.openFlag = false;
    this.rest = null;
    this.site = site;
  }

  add(name: string, v: TypeVar): void {
    if (!this.fields.has(name)) this.order.push(name);
    this.fields.set(name, v);
  }

  /** The field's type variable; grows an open row; null when a closed row lacks it. */
  get(name: string, site: Site): TypeVar | null {
    const have = this.fields.get(name);
    if (have) return have;
    if (this.rest && !this.rest.exclude.has(name)) {
      const v = this.rest.row.get(name, site);
      if (v) this.add(name, v);
      return v;
    }
    if (this.rest || !this.openFlag) return null;
    const v = new TypeVar(site);
    this.add(name, v);
    return v;
  }

  /** Whether the field is known now (here or inherited), without growing the row. */
  has(name: string): boolean {
    if (this.fields.has(name)) return true;
    for (let rest = this.rest; rest; rest = rest.row.rest) {
      if (rest.exclude.has(name)) return false;
      if (rest.row.fields.has(name)) return true;
    }
    return false;
  }

  /** The row at the end of the `rest` chain: where an open row's inferred fields are kept. */
  origin(): Row {
    let row = this.rest?.row;
    if (!row) return this;
    while (row.rest) row = row.rest.row;
    return row;
  }

  /** Every field known now, inherited ones (from `rest`) first: the column order. */
  known(): string[] {
    if (!this.rest) return [...this.order];
    const exclude = this.rest.exclude;
    const names = this.rest.row.known().filter((n) => !exclude.has(n));
    const seen = new Set(names);
    for (const n of this.order) if (!seen.has(n)) names.push(n);
    return names;
  }

  static fromFields(fields: ArrowField[], site: Site, open: boolean): Row {
    const row = new Row(site, open);
    for (const f of fields) row.add(f.name, known(f.type, site, f.nullable));
    return row;
  }

  /** A row that is `base` plus `extra` fields (appended after). */
  static extending(base: Row, extra: ArrowField[], site: Site): Row {
    const row = new Row(site, false);
    row.rest = { row: base, exclude: new Set(extra.map((f) => f.name)) };
    for (const f of extra) row.add(f.name, known(f.type, site, f.nullable));
    return row;
  }
}

/** A row made concrete for later phases: unknown types are `null` with their family. */
export interface RowSchema {
  fields: SchemaField[];
  /** True when more fields than these may arrive (types stayed open). */
  open: boolean;
}

export interface SchemaField {
  name: string;
  /** The canonical Arrow type, or null when inference could not pin it. */
  type: string | null;
  family: TypeFamily | null;
  nullable: boolean;
}

export function schemaOf(row: Row): RowSchema {
  const names = row.known();
  const fields = names.map((name) => {
    const v = (row.fields.get(name) ?? row.get(name, row.site))!.root();
    return {
      name,
      type: v.type ? typeToString(v.type) : null,
      family: v.family,
      nullable: v.nullable,
    };
  });
  return { fields, open: row.open };
}
