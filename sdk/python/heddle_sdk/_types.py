"""Arrow types in the manifest's type text (docs/manifest.md, compiler/modules/_arrow.ts):
`int64`, `utf8`, `timestamp[us, UTC]`, `decimal(10, 2)`, `list<float64?>`,
`struct<a: int64, b: utf8?>`. The compiler reads these strings, so this module must write
exactly its grammar and never pyarrow's own spelling of a type.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.types as t

_PRIMITIVES = {
    "null": pa.null(), "bool": pa.bool_(), "int8": pa.int8(), "int16": pa.int16(),
    "int32": pa.int32(), "int64": pa.int64(), "uint8": pa.uint8(), "uint16": pa.uint16(),
    "uint32": pa.uint32(), "uint64": pa.uint64(), "float16": pa.float16(),
    "float32": pa.float32(), "float64": pa.float64(), "utf8": pa.string(),
    "large_utf8": pa.large_string(), "binary": pa.binary(), "date32": pa.date32(),
    "date64": pa.date64(),
}


def _nullable(field: pa.Field) -> str:
    return "?" if field.nullable else ""


def type_text(ty: pa.DataType) -> str:
    """The manifest spelling of `ty`; raises ValueError for types manifests cannot declare."""
    for name, prim in _PRIMITIVES.items():
        if ty.equals(prim):
            return name
    if t.is_duration(ty):
        return "duration"
    if t.is_timestamp(ty):
        return f"timestamp[{ty.unit}, {ty.tz}]" if ty.tz else f"timestamp[{ty.unit}]"
    if t.is_decimal(ty):
        return f"decimal({ty.precision}, {ty.scale})"
    if t.is_list(ty):
        return f"list<{type_text(ty.value_type)}{_nullable(ty.value_field)}>"
    if t.is_struct(ty):
        inner = ", ".join(
            f"{f.name}: {type_text(f.type)}{_nullable(f)}" for f in (ty.field(i) for i in range(ty.num_fields))
        )
        return f"struct<{inner}>"
    raise ValueError(f"Arrow type `{ty}` cannot be declared in a Heddle manifest")


def field_json(field: pa.Field) -> dict:
    # Manifests omit `nullable` when it is false (docs/manifest.md).
    out = {"name": field.name, "type": type_text(field.type)}
    return {**out, "nullable": True} if field.nullable else out
