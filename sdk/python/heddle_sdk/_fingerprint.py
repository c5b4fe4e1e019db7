"""Schema fingerprints, byte for byte as docs/registry.md ("Schema fingerprint") specifies and
runtime/registry/_fingerprint.ts computes: the hex SHA-256 of a canonical text of the schema.
The worker checks the fingerprint of every output handle against the schema it reads, so this
text must never depend on pyarrow's own `str()` of a type, on metadata, or on list element
names, which differ between Arrow implementations.
"""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
import pyarrow.types as t


def _name(name: str) -> str:
    # JSON.stringify in the TypeScript reference leaves non-ASCII characters as they are.
    return json.dumps(name, ensure_ascii=False)


def _nullability(field: pa.Field) -> str:
    return "" if field.nullable else " not null"


def _field_text(field: pa.Field) -> str:
    return f"{_name(field.name)}: {_type_text(field.type)}{_nullability(field)}"


def _element_text(field: pa.Field) -> str:
    return f"{_type_text(field.type)}{_nullability(field)}"


_SIMPLE = [
    (t.is_null, "null"), (t.is_boolean, "bool"), (t.is_string, "utf8"),
    (t.is_large_string, "large_utf8"), (t.is_binary, "binary"),
    (t.is_large_binary, "large_binary"), (t.is_date32, "date32"), (t.is_date64, "date64"),
]


def _type_text(ty: pa.DataType) -> str:
    for test, text in _SIMPLE:
        if test(ty):
            return text
    if t.is_integer(ty):
        return f"{'int' if t.is_signed_integer(ty) else 'uint'}{ty.bit_width}"
    if t.is_floating(ty):
        return f"float{ty.bit_width}"
    if ty.id == pa.string_view().id:
        return "utf8_view"
    if ty.id == pa.binary_view().id:
        return "binary_view"
    if t.is_fixed_size_binary(ty) and not t.is_decimal(ty):
        return f"fixed_size_binary[{ty.byte_width}]"
    if t.is_decimal(ty):
        return f"decimal{ty.bit_width}({ty.precision},{ty.scale})"
    if t.is_time(ty):
        return f"time{ty.bit_width}[{ty.unit}]"
    if t.is_timestamp(ty):
        return f"timestamp[{ty.unit}, {_name(ty.tz)}]" if ty.tz else f"timestamp[{ty.unit}]"
    if t.is_duration(ty):
        return f"duration[{ty.unit}]"
    if t.is_interval(ty):
        return "interval[month_day_nano]"
    if t.is_fixed_size_list(ty):
        return f"fixed_size_list[{ty.list_size}]<{_element_text(ty.value_field)}>"
    if t.is_large_list(ty):
        return f"large_list<{_element_text(ty.value_field)}>"
    if t.is_list(ty):
        return f"list<{_element_text(ty.value_field)}>"
    if t.is_struct(ty):
        return f"struct<{', '.join(_field_text(ty.field(i)) for i in range(ty.num_fields))}>"
    if t.is_map(ty):
        keys_sorted = ", keys_sorted" if ty.keys_sorted else ""
        return f"map<{_element_text(ty.key_field)}, {_element_text(ty.item_field)}{keys_sorted}>"
    if t.is_union(ty):
        members = ", ".join(
            f"{code}={_field_text(ty.field(i))}" for i, code in enumerate(ty.type_codes)
        )
        return f"union[{ty.mode}]<{members}>"
    if t.is_dictionary(ty):
        ordered = ", ordered" if ty.ordered else ""
        return f"dictionary<{_type_text(ty.value_type)}, {_type_text(ty.index_type)}{ordered}>"
    raise ValueError(f"Arrow type `{ty}` has no canonical text")


def canonical_schema_text(schema: pa.Schema) -> str:
    return "\n".join(_field_text(f) for f in schema)


def schema_fingerprint(schema: pa.Schema) -> str:
    return hashlib.sha256(canonical_schema_text(schema).encode("utf-8")).hexdigest()
