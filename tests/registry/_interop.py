"""Python side of the registry interop tests, and the reference Python implementation of
the schema fingerprint that docs/registry.md specifies (the Python SDK reimplements it).

It reads segments zero-copy exactly as docs/registry.md tells plugin authors to, and writes
segments in place the same way; it must never copy the payload (no mm[a:b] slicing).

Usage:
  python3 _interop.py read <segment or spill path> <offset> <length>
      prints {"fingerprint", "zeroCopy", "rows"} as JSON
  python3 _interop.py write <segment name>
      writes a fixed table into a new segment and prints its handle as JSON
"""

import datetime
import hashlib
import json
import mmap
import os
import sys

import pyarrow as pa

UNITS = {"s": "s", "ms": "ms", "us": "us", "ns": "ns"}


def _null(field):
    return "" if field.nullable else " not null"


def _field(field):
    return json.dumps(field.name, ensure_ascii=False) + ": " + _type(field.type) + _null(field)


def _element(field):
    return _type(field.type) + _null(field)


def _type(t):
    simple = [
        (pa.types.is_null, "null"), (pa.types.is_boolean, "bool"),
        (pa.types.is_string, "utf8"), (pa.types.is_large_string, "large_utf8"),
        (pa.types.is_binary, "binary"), (pa.types.is_large_binary, "large_binary"),
        (pa.types.is_float16, "float16"), (pa.types.is_float32, "float32"),
        (pa.types.is_float64, "float64"), (pa.types.is_date32, "date32"),
        (pa.types.is_date64, "date64"),
    ]
    for test, name in simple:
        if test(t):
            return name
    if pa.types.is_integer(t):
        return ("int" if pa.types.is_signed_integer(t) else "uint") + str(t.bit_width)
    if pa.types.is_fixed_size_binary(t):
        return f"fixed_size_binary[{t.byte_width}]"
    if pa.types.is_decimal(t):
        return f"decimal{t.bit_width}({t.precision},{t.scale})"
    if pa.types.is_time(t):
        return f"time{t.bit_width}[{t.unit}]"
    if pa.types.is_timestamp(t):
        zone = "" if t.tz is None else ", " + json.dumps(t.tz, ensure_ascii=False)
        return f"timestamp[{t.unit}{zone}]"
    if pa.types.is_duration(t):
        return f"duration[{t.unit}]"
    if pa.types.is_map(t):
        sorted_ = ", keys_sorted" if t.keys_sorted else ""
        return f"map<{_element(t.key_field)}, {_element(t.item_field)}{sorted_}>"
    if pa.types.is_list(t):
        return f"list<{_element(t.value_field)}>"
    if pa.types.is_large_list(t):
        return f"large_list<{_element(t.value_field)}>"
    if pa.types.is_fixed_size_list(t):
        return f"fixed_size_list[{t.list_size}]<{_element(t.value_field)}>"
    if pa.types.is_struct(t):
        return "struct<" + ", ".join(_field(t.field(i)) for i in range(t.num_fields)) + ">"
    if pa.types.is_dictionary(t):
        ordered = ", ordered" if t.ordered else ""
        return f"dictionary<{_type(t.value_type)}, {_type(t.index_type)}{ordered}>"
    raise ValueError(f"no canonical text for {t}")


def canonical_schema_text(schema):
    return "\n".join(_field(field) for field in schema)


def schema_fingerprint(schema):
    return hashlib.sha256(canonical_schema_text(schema).encode("utf-8")).hexdigest()


def _plain(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def read(location, offset, length):
    path = location if location.count("/") > 1 else "/dev/shm/" + location.lstrip("/")
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    whole = pa.py_buffer(mm)
    table = pa.ipc.open_stream(whole.slice(offset, length)).read_all()
    column = table.column(0).chunk(0).buffers()[1]
    zero_copy = whole.address <= column.address < whole.address + whole.size
    result = {
        "fingerprint": schema_fingerprint(table.schema),
        "zeroCopy": zero_copy,
        "rows": _plain(table.to_pylist()),
    }
    del table, column, whole
    mm.close()
    return result


def sample_table():
    return pa.table({
        "id": pa.array([1, 2, None], pa.int64()),
        "name": pa.array(["ada", None, "grace"], pa.string()),
        "score": pa.array([0.5, 1.5, None], pa.float64()),
        "ok": pa.array([True, None, False], pa.bool_()),
        "tags": pa.array([["x"], [], None], pa.list_(pa.string())),
    })


def write(name):
    table = sample_table()
    sink = pa.MockOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    size = sink.size()
    fd = os.open("/dev/shm/" + name.lstrip("/"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, size)
    mm = mmap.mmap(fd, size)
    os.close(fd)
    target = pa.FixedSizeBufferWriter(pa.py_buffer(mm))
    with pa.ipc.new_stream(target, table.schema) as writer:
        writer.write_table(table)
    target.close()
    del writer, target  # they hold exports of mm, which must be gone before mm.close()
    mm.close()
    return {
        "id": name.lstrip("/"),
        "segment": name,
        "offset": 0,
        "length": size,
        "schemaFingerprint": schema_fingerprint(table.schema),
        "rows": table.num_rows,
    }


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "read":
        print(json.dumps(read(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    elif command == "write":
        print(json.dumps(write(sys.argv[2])))
    else:
        sys.exit(f"unknown command {command}")
