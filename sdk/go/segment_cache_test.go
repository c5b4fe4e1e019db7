package heddle

import (
	"fmt"
	"os"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/array"
)

func cachedHandle(t *testing.T, id string, n int) Handle {
	h := putSegment(t, values(n, 0))
	return Handle{Segment: h.Segment, SegmentID: id, Offset: h.Offset, Length: h.Length}
}

func firstValue(t *testing.T, h Handle) (int64, uintptr) {
	t.Helper()
	in, err := OpenHandle(h)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	return in.Batches[0].Column(0).(*array.Int64).Value(1), uintptr(unsafe.Pointer(&in.mapped.mapping[0]))
}

// The registry's pool renames a released file and writes the next object into it; a handle
// with the same id is read through the mapping already held, and sees the new bytes.
func TestAHandleWithAKnownSegmentIdReusesTheMappingAndReadsTheNewObject(t *testing.T) {
	h := cachedHandle(t, "0123456789abcdef0123456789abcdef", 100)
	v1, at1 := firstValue(t, h)
	next := putSegment(t, values(100, 1)) // value 1 becomes -2 where every row is negated
	bytes, err := os.ReadFile(SegmentPath(next.Segment))
	if err != nil {
		t.Fatal(err)
	}
	renamed := h.Segment + "-renamed"
	if err := os.Rename(SegmentPath(h.Segment), SegmentPath(renamed)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(SegmentPath(renamed)) })
	f, err := os.OpenFile(SegmentPath(renamed), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	h.Segment = renamed
	v2, at2 := firstValue(t, h)
	if v1 != 1 || v2 != -2 {
		t.Fatalf("read %d then %d, want 1 then -2", v1, v2)
	}
	if at1 != at2 {
		t.Fatalf("the second handle was mapped again (at %#x, first at %#x)", at2, at1)
	}
}

func TestAMappingWithoutASegmentIdIsNotKept(t *testing.T) {
	h := cachedHandle(t, "", 10)
	before := len(segments.byID)
	if v, _ := firstValue(t, h); v != 1 {
		t.Fatalf("read %d, want 1", v)
	}
	if len(segments.byID) != before {
		t.Fatalf("the cache grew from %d to %d for a segment without an id", before, len(segments.byID))
	}
}

func TestTheSweepLetsGoOfRemovedFilesAndTheCacheStaysBounded(t *testing.T) {
	var ids []string
	for i := 0; i < cacheSlots+4; i++ {
		id := fmt.Sprintf("%032x", 0xabc0+i)
		ids = append(ids, id)
		// Each subtest has its own segment name, removed when the subtest ends.
		t.Run(fmt.Sprint(i), func(t *testing.T) { firstValue(t, cachedHandle(t, id, 10)) })
		if len(segments.byID) > cacheSlots {
			t.Fatalf("the cache holds %d mappings, at most %d allowed", len(segments.byID), cacheSlots)
		}
	}
	last := ids[len(ids)-1]
	if segments.byID[last] == nil {
		t.Fatal("the newest mapping was evicted")
	}
	// The subtests' cleanups removed their files: the sweep must unmap them.
	segments.sweep()
	if segments.byID[last] != nil {
		t.Fatal("the mapping of a removed file outlived the sweep")
	}
}
