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
import threading
import time
from dataclasses import dataclass
from typing import Iterable

import pyarrow as pa
import pyarrow.ipc as ipc

_SHM_NAME = re.compile(r"^/[^/]+$")


def segment_path(location: str) -> str:
    """A shared-memory name (`/heddle-1-2`) lives in /dev/shm; anything else is a file path."""
    return "/dev/shm" + location if _SHM_NAME.match(location) else location


class _SegmentCache:
    """Mappings of pooled segments, kept by segment id (docs/plugins.md, "Mapping cache").

    The worker's registry reuses a released segment's file for a later object under a new
    name but the same id, so a kept mapping reads the next object with no system call and no
    page fault, where mapping afresh costs an open, a stat, an mmap and a fault per page. A
    file's id is never given to another file. At most `SLOTS` idle mappings are kept, and a
    mapping whose file the registry removed (link count 0 on the descriptor kept open) is let
    go within `SWEEP_EVERY` seconds, so that memory the registry frees is freed.
    """

    SLOTS = 16  # the registry's pool (runtime/registry/mod.ts POOL_SLOTS)
    SWEEP_EVERY = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, list] = {}  # id -> [fd, mmap, users, last use]
        self._clock = 0
        self._sweeper: threading.Thread | None = None

    def acquire(self, segment: str, segment_id: str) -> mmap.mmap:
        with self._lock:
            self._clock += 1
            entry = self._by_id.get(segment_id)
            if entry is None:
                fd, mm = _map_file(segment, keep_fd=True)
                # In use from the start, so that making room never evicts it.
                entry = self._by_id[segment_id] = [fd, mm, 1, self._clock]
                self._evict_beyond(self.SLOTS)
                if self._sweeper is None:
                    self._sweeper = threading.Thread(target=self._sweep_forever, daemon=True)
                    self._sweeper.start()
            else:
                entry[2] += 1
                entry[3] = self._clock
            return entry[1]

    def release(self, segment_id: str) -> None:
        with self._lock:
            entry = self._by_id.get(segment_id)
            if entry is not None:
                entry[2] -= 1

    def mapped(self) -> int:
        with self._lock:
            return len(self._by_id)

    def _evict_beyond(self, n: int) -> None:
        while len(self._by_id) > n:
            idle = [(e[3], i) for i, e in self._by_id.items() if e[2] == 0]
            if not idle:
                return  # every mapping is in use: the cache grows until one is handed back
            self._drop(min(idle)[1])

    def _drop(self, segment_id: str) -> None:
        fd, mm, _, _ = self._by_id.pop(segment_id)
        os.close(fd)
        _close(mm)

    def sweep(self) -> None:
        """Lets go of idle mappings of files the registry removed."""
        with self._lock:
            for segment_id, (fd, _, users, _) in list(self._by_id.items()):
                if users == 0 and os.fstat(fd).st_nlink == 0:
                    self._drop(segment_id)

    def _sweep_forever(self) -> None:
        while True:
            time.sleep(self.SWEEP_EVERY)
            self.sweep()


segments = _SegmentCache()


def _map_file(segment: str, keep_fd: bool = False):
    """The whole segment file mapped read-only, with its descriptor if `keep_fd`."""
    fd = os.open(segment_path(segment), os.O_RDONLY)
    try:
        if os.fstat(fd).st_size == 0:
            raise ValueError(f"segment `{segment}` is empty")
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except BaseException:
        os.close(fd)
        raise
    if keep_fd:
        return fd, mm
    os.close(fd)
    return None, mm


def _close(mm: mmap.mmap) -> None:
    try:
        mm.close()
    except BufferError:
        # A step kept a reference to input data past its return (e.g. in a global cache);
        # the mapping then lives until the garbage collector drops that reference.
        pass


class MappedInput:
    """An input object mapped read-only; close it once no Arrow data from it is referenced.

    With a `segment_id` (the handle's, set when the registry pools segments) the mapping
    comes from the mapping cache and goes back to it on close.
    """

    def __init__(self, segment: str, offset: int, length: int, segment_id: str = ""):
        self._segment_id = segment_id
        if segment_id:
            self._mm = segments.acquire(segment, segment_id)
        else:
            _, self._mm = _map_file(segment)
        size = len(self._mm)
        if offset + length > size:
            self.close()
            raise ValueError(
                f"segment `{segment}` holds {size} bytes, but the object needs {offset + length}"
            )
        self.buffer = pa.py_buffer(self._mm).slice(offset, length)

    def reader(self) -> ipc.RecordBatchStreamReader:
        return ipc.open_stream(self.buffer)

    def close(self) -> None:
        self.buffer = None
        if self._segment_id:
            segments.release(self._segment_id)
            self._segment_id = ""
        elif self._mm is not None:
            _close(self._mm)
        self._mm = None


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
