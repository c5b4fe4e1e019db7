package heddle

// The Go side of the registry's segment contract (docs/plugins.md, "Segments and who owns
// what memory"). Inputs are mapped read-only and read zero-copy: every message's metadata and
// body are slices of the mapping, and arrow-go slices column buffers out of the body, so a
// step's arrays point into shared memory. Outputs are measured first, then written once into
// the segment the worker named. This file must never write to an input mapping and never
// leave a partially written output segment behind.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sys/unix"
)

// SegmentPath maps a shared-memory name (`/heddle-1-2`, one leading slash) to its file in
// /dev/shm; anything else is already a file path (a spilled object).
func SegmentPath(location string) string {
	if strings.HasPrefix(location, "/") && !strings.Contains(location[1:], "/") {
		return "/dev/shm" + location
	}
	return location
}

// mappedInput is an input object mapped read-only.
type mappedInput struct {
	mapping []byte
	stream  []byte
	release func()
}

// mapInput maps the object a handle names. A segment with an id comes from the mapping cache
// (segment_cache.go); one without (a spill file, an adopted segment) is mapped for this use.
func mapInput(segment, segmentID string, offset, length uint64) (*mappedInput, error) {
	var mapping []byte
	var release func()
	if segmentID != "" {
		m, done, err := segments.acquire(segment, segmentID)
		if err != nil {
			return nil, err
		}
		mapping, release = m, done
	} else {
		fd, m, err := mapFile(segment)
		if err != nil {
			return nil, err
		}
		_ = unix.Close(fd)
		mapping, release = m, func() { _ = unix.Munmap(m) }
	}
	size := uint64(len(mapping))
	if offset+length > size || offset+length < offset {
		release()
		return nil, fmt.Errorf("segment `%s` holds %d bytes, but the object needs %d", segment, size, offset+length)
	}
	return &mappedInput{mapping: mapping, stream: mapping[offset : offset+length], release: release}, nil
}

func (m *mappedInput) close() {
	if m.release != nil {
		m.release()
		m.mapping, m.stream, m.release = nil, nil, nil
	}
}

// sliceReader is an ipc.MessageReader over bytes that are already in memory: unlike
// ipc.NewMessageReader, which copies each body into a fresh buffer, it hands out slices.
// Every length is checked against what is left before it is used.
type sliceReader struct {
	data []byte
	pos  int
	msg  *ipc.Message
	refs int64
}

const continuation = 0xFFFFFFFF

func newSliceReader(data []byte) *sliceReader { return &sliceReader{data: data, refs: 1} }

func (r *sliceReader) Retain() { r.refs++ }

func (r *sliceReader) Release() {
	r.refs--
	if r.refs == 0 && r.msg != nil {
		r.msg.Release()
		r.msg = nil
	}
}

func (r *sliceReader) take(n int, what string) ([]byte, error) {
	if n < 0 || n > len(r.data)-r.pos {
		return nil, fmt.Errorf("%s of %d bytes at offset %d runs past the end of the %d-byte stream", what, n, r.pos, len(r.data))
	}
	out := r.data[r.pos : r.pos+n]
	r.pos += n
	return out, nil
}

func (r *sliceReader) Message() (msg *ipc.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, err = nil, fmt.Errorf("invalid Arrow IPC message at offset %d: %v", r.pos, p)
		}
	}()
	if r.pos == len(r.data) {
		return nil, io.EOF
	}
	word, err := r.take(4, "message prefix")
	if err != nil {
		return nil, err
	}
	length := binary.LittleEndian.Uint32(word)
	if length == continuation {
		if word, err = r.take(4, "message length"); err != nil {
			return nil, err
		}
		length = binary.LittleEndian.Uint32(word)
	}
	if length == 0 {
		return nil, io.EOF
	}
	meta, err := r.take(int(int32(length)), "message metadata")
	if err != nil {
		return nil, err
	}
	// The body length sits in the flatbuffer; NewMessage parses it, then we slice the body.
	header := ipc.NewMessage(memory.NewBufferBytes(meta), memory.NewBufferBytes(nil))
	bodyLen := header.BodyLen()
	header.Release()
	if bodyLen < 0 || bodyLen > int64(len(r.data)-r.pos) {
		return nil, fmt.Errorf("message body of %d bytes at offset %d runs past the end of the %d-byte stream", bodyLen, r.pos, len(r.data))
	}
	body, _ := r.take(int(bodyLen), "message body")
	if r.msg != nil {
		r.msg.Release()
	}
	r.msg = ipc.NewMessage(memory.NewBufferBytes(meta), memory.NewBufferBytes(body))
	return r.msg, nil
}

// readBatches reads every record batch of an in-memory IPC stream without copying it.
func readBatches(stream []byte) (*arrow.Schema, []arrow.RecordBatch, error) {
	reader, err := ipc.NewReaderFromMessageReader(newSliceReader(stream))
	if err != nil {
		return nil, nil, err
	}
	defer reader.Release()
	var batches []arrow.RecordBatch
	for {
		batch, err := safeRead(reader)
		if errors.Is(err, io.EOF) {
			return reader.Schema(), batches, nil
		}
		if err != nil {
			for _, b := range batches {
				b.Release()
			}
			return nil, nil, err
		}
		batch.Retain()
		batches = append(batches, batch)
	}
}

func safeRead(reader *ipc.Reader) (batch arrow.RecordBatch, err error) {
	defer func() {
		if p := recover(); p != nil {
			batch, err = nil, fmt.Errorf("invalid Arrow record batch: %v", p)
		}
	}()
	return reader.Read()
}

// countingWriter measures a stream without keeping it.
type countingWriter struct{ n int }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// sliceWriter writes into a fixed mapping and refuses to run past it.
type sliceWriter struct {
	buf []byte
	pos int
}

func (w *sliceWriter) Write(p []byte) (int, error) {
	if len(p) > len(w.buf)-w.pos {
		return 0, fmt.Errorf("output stream grew past the %d bytes it measured", len(w.buf))
	}
	copy(w.buf[w.pos:], p)
	w.pos += len(p)
	return len(p), nil
}

func writeStream(w io.Writer, schema *arrow.Schema, batches []arrow.RecordBatch) error {
	writer := ipc.NewWriter(w, ipc.WithSchema(schema))
	for _, b := range batches {
		if err := writer.Write(b); err != nil {
			return err
		}
	}
	return writer.Close()
}

// writeOutput creates shared-memory segment name (it must not exist) holding one IPC stream
// and returns the stream's length. The segment is reserved with posix_fallocate before it is
// mapped, so a full /dev/shm is an error here rather than a SIGBUS while writing.
func writeOutput(name string, schema *arrow.Schema, batches []arrow.RecordBatch) (int, error) {
	var sizer countingWriter
	if err := writeStream(&sizer, schema, batches); err != nil {
		return 0, err
	}
	path := SegmentPath(name)
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR, 0o600)
	if err != nil {
		return 0, fmt.Errorf("cannot create output segment `%s`: %w", name, err)
	}
	defer unix.Close(fd)
	fail := func(err error) (int, error) {
		_ = unix.Unlink(path)
		return 0, err
	}
	if err := unix.Fallocate(fd, 0, 0, int64(sizer.n)); err != nil {
		return fail(fmt.Errorf("cannot reserve %d bytes for `%s`: %w", sizer.n, name, err))
	}
	mapping, err := unix.Mmap(fd, 0, sizer.n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail(fmt.Errorf("cannot map `%s`: %w", name, err))
	}
	err = writeStream(&sliceWriter{buf: mapping}, schema, batches)
	_ = unix.Munmap(mapping)
	if err != nil {
		return fail(err)
	}
	return sizer.n, nil
}

// Input is an object mapped read-only from shared memory, decoded without a copy: its
// batches point into the mapping, so they must not be used after Close.
type Input struct {
	Schema  *arrow.Schema
	Batches []arrow.RecordBatch
	mapped  *mappedInput
}

// Handle names a registry object (docs/plugins.md, "ObjectHandle").
type Handle struct {
	Segment   string
	SegmentID string // empty when the segment has none
	Offset    uint64
	Length    uint64
}

// OpenHandle maps a registry handle's object outside a step, for programs that receive
// handles by other means than the plugin protocol.
func OpenHandle(h Handle) (*Input, error) {
	mapped, err := mapInput(h.Segment, h.SegmentID, h.Offset, h.Length)
	if err != nil {
		return nil, err
	}
	schema, batches, err := readBatches(mapped.stream)
	if err != nil {
		mapped.close()
		return nil, err
	}
	return &Input{Schema: schema, Batches: batches, mapped: mapped}, nil
}

// Close releases the batches and unmaps the segment.
func (in *Input) Close() {
	for _, b := range in.Batches {
		b.Release()
	}
	in.Batches = nil
	in.mapped.close()
}
