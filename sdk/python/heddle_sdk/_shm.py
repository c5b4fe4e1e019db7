"""Maps input objects and writes output objects in shared memory, the Python side of the
registry's segment contract (docs/plugins.md, "Segments and memory ownership").

Inputs are read zero-copy: the segment is mmap'ed and pyarrow reads the IPC stream straight
out of the mapping, so column buffers point into shared memory. Outputs are written once,
directly into the segment the worker named. This module must never write to an input
segment (the worker owns it and other consumers may be reading it) and never leave a
partially written output segment behind.
"""

from __future__ import annotations

import mmap
import os
import re
from dataclasses import dataclass
from typing import Iterable

import pyarrow as pa
import pyarrow.ipc as ipc

_SHM_NAME = re.compile(r"^/[^/]+$")


def segment_path(location: str) -> str:
    """A shared-memory name (`/heddle-1-2`) lives in /dev/shm; anything else is a file path."""
    return "/dev/shm" + location if _SHM_NAME.match(location) else location


class MappedInput:
    """An input object mapped read-only; close it once no Arrow data from it is referenced."""

    def __init__(self, segment: str, offset: int, length: int):
        with open(segment_path(segment), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if offset + length > size:
                raise ValueError(
                    f"segment `{segment}` holds {size} bytes, but the object needs {offset + length}"
                )
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.buffer = pa.py_buffer(self._mm).slice(offset, length)

    def reader(self) -> ipc.RecordBatchStreamReader:
        return ipc.open_stream(self.buffer)

    def close(self) -> None:
        self.buffer = None
        try:
            self._mm.close()
        except BufferError:
            # A step kept a reference to input data past its return (e.g. in a global cache);
            # the mapping then lives until the garbage collector drops that reference.
            pass


@dataclass
class WrittenOutput:
    length: int
    rows: int


def write_output(name: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> WrittenOutput:
    """Creates shared-memory segment `name` (it must not exist) holding one IPC stream."""
    batches = list(batches)
    sizer = pa.MockOutputStream()
    _write_stream(sizer, schema, batches)
    length = sizer.size()
    path = segment_path(name)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, length)
        # Reserve the pages now: on a full /dev/shm, ftruncate alone succeeds and the first
        # write into the mapping then kills the process with SIGBUS. posix_fallocate raises
        # OSError(ENOSPC) here instead, which the server reports as NO_SPACE.
        os.posix_fallocate(fd, 0, length)
        mm = mmap.mmap(fd, length)
        try:
            sink = pa.FixedSizeBufferWriter(pa.py_buffer(mm))
            _write_stream(sink, schema, batches)
            sink.close()
            del sink
        finally:
            mm.close()
    except BaseException:
        os.unlink(path)
        raise
    finally:
        os.close(fd)
    return WrittenOutput(length=length, rows=sum(b.num_rows for b in batches))


def _write_stream(sink, schema: pa.Schema, batches: list[pa.RecordBatch]) -> None:
    with ipc.new_stream(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
