//! The Rust side of the registry's segment contract (docs/plugins.md, "Segments and who owns
//! what memory"). Inputs are mapped read-only and wrapped in one arrow `Buffer` whose owner is
//! the mapping, so every array a step receives slices shared memory without a copy, and the
//! mapping lives exactly as long as the last array that points into it. Outputs are measured
//! first, then written once into the segment the worker named. This file must never write to
//! an input mapping and never leave a partially written output segment behind.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::SchemaRef;
use memmap2::{MmapMut, MmapOptions};

use crate::segment_cache::{self, map_file};

/// A shared-memory name (`/heddle-1-2`, one leading slash) lives in /dev/shm; anything else
/// is already a file path (a spilled object).
pub fn segment_path(location: &str) -> String {
    if location.starts_with('/') && !location[1..].contains('/') {
        format!("/dev/shm{location}")
    } else {
        location.to_string()
    }
}

/// Maps `[offset, offset + length)` of a segment read-only as an arrow `Buffer`. A segment
/// with an id (`segment_id`, empty when it has none) comes from the mapping cache
/// (segment_cache.rs); one without (a spill file, an adopted segment) is mapped for this use.
pub fn map_input(
    segment: &str,
    segment_id: &str,
    offset: u64,
    length: u64,
) -> Result<Buffer, String> {
    let map = if segment_id.is_empty() {
        Arc::new(map_file(segment)?.1)
    } else {
        segment_cache::mapping(segment, segment_id)?
    };
    let size = map.len() as u64;
    let end = offset
        .checked_add(length)
        .ok_or("the handle's offset and length overflow")?;
    if end > size || length == 0 {
        return Err(format!(
            "segment `{segment}` holds {size} bytes, but the object needs {end}"
        ));
    }
    // SAFETY: `[offset, end)` lies inside the mapping, which the buffer keeps alive.
    let ptr = NonNull::new(unsafe { map.as_ptr().add(offset as usize) } as *mut u8)
        .ok_or("the mapping is null")?;
    Ok(unsafe { Buffer::from_custom_allocation(ptr, length as usize, map) })
}

/// Every record batch of an IPC stream from anywhere, and its schema, fully validated by
/// arrow-rs (every offset and string: O(rows)); the arrays slice `stream`.
pub fn read_batches(stream: Buffer) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    decode(stream, StreamDecoder::new())
}

/// Every record batch of a registry object (a step's input), decoded in time independent of
/// its size: only buffer sizes are checked (arrow's cheap `validate`), not every offset and
/// string, because the worker hands out only objects it encoded itself or adopted after
/// checking every value (runtime/registry/_contents.ts). Bytes from anywhere else go through
/// [`read_batches`].
pub fn read_registry_batches(stream: Buffer) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    // SAFETY: registry objects are valid Arrow (see above); what a writer could still get
    // wrong without breaking that contract, buffer sizes, is checked below.
    let decoder = unsafe { StreamDecoder::new().with_skip_validation(true) };
    let (schema, batches) = decode(stream, decoder)?;
    for batch in &batches {
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            column
                .to_data()
                .validate()
                .map_err(|e| format!("invalid Arrow data in column `{}`: {e}", field.name()))?;
        }
    }
    Ok((schema, batches))
}

fn decode(stream: Buffer, decoder: StreamDecoder) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    let mut decoder = decoder.with_require_alignment(true);
    let mut rest = stream;
    let mut batches = Vec::new();
    let mut schema = None;
    while !rest.is_empty() {
        match decoder.decode(&mut rest) {
            Ok(Some(batch)) => {
                schema.get_or_insert_with(|| batch.schema());
                batches.push(batch);
            }
            Ok(None) => {
                if let Some(s) = decoder.schema() {
                    schema.get_or_insert(s);
                }
                if rest.is_empty() {
                    break;
                }
            }
            Err(e) => return Err(format!("invalid Arrow IPC stream: {e}")),
        }
    }
    decoder
        .finish()
        .map_err(|e| format!("invalid Arrow IPC stream: {e}"))?;
    let schema = schema
        .or_else(|| decoder.schema())
        .ok_or("the stream has no schema")?;
    Ok((schema, batches))
}

struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes into a fixed mapping and refuses to run past it.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Write for SliceWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let end = self.at + data.len();
        if end > self.buf.len() {
            return Err(io::Error::other(
                "the output stream grew past the bytes it measured",
            ));
        }
        self.buf[self.at..end].copy_from_slice(data);
        self.at = end;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_stream<W: Write>(
    sink: W,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(), String> {
    let mut writer = StreamWriter::try_new(sink, schema).map_err(|e| e.to_string())?;
    for b in batches {
        writer.write(b).map_err(|e| e.to_string())?;
    }
    writer.finish().map_err(|e| e.to_string())
}

/// Creates segment `name` (it must not exist) holding one IPC stream; returns its length. The
/// pages are reserved with posix_fallocate first, so a full /dev/shm is an error here rather
/// than a SIGBUS while writing.
pub fn write_output(
    name: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<usize, String> {
    let mut counter = Counter(0);
    write_stream(&mut counter, schema, batches)?;
    let length = counter.0;
    let path = segment_path(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot create output segment `{name}`: {e}"))?;
    let result = (|| {
        // SAFETY: plain syscall on an fd we own.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, length as libc::off_t) };
        if rc != 0 {
            return Err(format!(
                "cannot reserve {length} bytes for `{name}`: {}",
                io::Error::from_raw_os_error(rc)
            ));
        }
        // SAFETY: the segment was just created by us with O_EXCL; nobody else maps it yet.
        let mut map: MmapMut = unsafe { MmapOptions::new().len(length).map_mut(&file) }
            .map_err(|e| format!("cannot map `{name}`: {e}"))?;
        write_stream(
            SliceWriter {
                buf: &mut map,
                at: 0,
            },
            schema,
            batches,
        )
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(length)
}
