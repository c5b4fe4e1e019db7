package heddle

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"heddle.dev/sdk/internal/pb"
)

var valueField = arrow.Field{Name: "value", Type: arrow.PrimitiveTypes.Int64}

// double appends `doubled` = 2 × `value` and rejects negative values, like the scaffold.
var double = Step{
	Name:   "double",
	Input:  OpenRow(valueField),
	Output: InputPlus(arrow.Field{Name: "doubled", Type: arrow.PrimitiveTypes.Int64}),
	Run: func(batch arrow.RecordBatch, _ map[string]any) (Output, error) {
		values := batch.Column(int(batch.Schema().FieldIndices("value")[0])).(*array.Int64)
		b := array.NewInt64Builder(memory.DefaultAllocator)
		var errs []RowError
		for i := 0; i < values.Len(); i++ {
			if values.Value(i) < 0 {
				errs = append(errs, RowError{Row: i, Message: "value is negative"})
			}
			b.Append(values.Value(i) * 2)
		}
		out := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "doubled", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{b.NewArray()}, int64(values.Len()))
		return Output{Batch: out, Errors: errs}, nil
	},
}

var panics = Step{
	Name: "panics", Input: OpenRow(), Output: InputPlus(),
	Run: func(arrow.RecordBatch, map[string]any) (Output, error) { panic("boom") },
}

var wrongSchema = Step{
	Name: "wrong", Input: OpenRow(), Output: Fields(arrow.Field{Name: "x", Type: arrow.BinaryTypes.String}),
	Run: func(batch arrow.RecordBatch, _ map[string]any) (Output, error) {
		return Output{Batch: batch}, nil
	},
}

func testServer() *server {
	p := Plugin{Package: "t", Modules: map[string][]Step{"t/m": {double, panics, wrongSchema}}}
	return &server{steps: p.wireSteps()}
}

func values(n int, negativeEvery int) arrow.RecordBatch {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	for i := 0; i < n; i++ {
		v := int64(i)
		if negativeEvery > 0 && i%negativeEvery == 0 {
			v = -v - 1
		}
		b.Append(v)
	}
	return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{valueField}, nil), []arrow.Array{b.NewArray()}, int64(n))
}

// putSegment writes batches as one IPC stream into a new /dev/shm segment, as the worker does.
func putSegment(t *testing.T, batches ...arrow.RecordBatch) *pb.ObjectHandle {
	t.Helper()
	var buf bytes.Buffer
	if err := writeStream(&buf, batches[0].Schema(), batches); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("/heddle-gotest-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.WriteFile(SegmentPath(name), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(SegmentPath(name)) })
	fp, _ := SchemaFingerprint(batches[0].Schema())
	rows := uint64(0)
	for _, b := range batches {
		rows += uint64(b.NumRows())
	}
	return &pb.ObjectHandle{Id: name[1:], Segment: name, Length: uint64(buf.Len()), SchemaFingerprint: fp, Rows: rows}
}

func outputName(t *testing.T) string {
	name := fmt.Sprintf("/heddle-gotest-%d-%s-out", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
	t.Cleanup(func() { os.Remove(SegmentPath(name)) })
	return name
}

func readSegment(t *testing.T, h *pb.ObjectHandle) (*arrow.Schema, []arrow.RecordBatch) {
	t.Helper()
	data, err := os.ReadFile(SegmentPath(h.Segment))
	if err != nil {
		t.Fatal(err)
	}
	schema, batches, err := readBatches(data[h.Offset : h.Offset+h.Length])
	if err != nil {
		t.Fatal(err)
	}
	return schema, batches
}

func TestInputColumnsPointIntoTheMappedSegment(t *testing.T) {
	h := putSegment(t, values(1000, 0), values(500, 0))
	in, err := OpenHandle(Handle{Segment: h.Segment, Offset: h.Offset, Length: h.Length})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	batches := in.Batches
	start := uintptr(unsafe.Pointer(&in.mapped.mapping[0]))
	end := start + uintptr(len(in.mapped.mapping))
	if len(batches) != 2 {
		t.Fatalf("read %d batches, want 2", len(batches))
	}
	for _, b := range batches {
		for _, buf := range b.Column(0).Data().Buffers() {
			if buf == nil || buf.Len() == 0 {
				continue
			}
			addr := uintptr(unsafe.Pointer(&buf.Bytes()[0]))
			if addr < start || addr >= end {
				t.Fatalf("buffer at %#x is outside the mapping [%#x, %#x)", addr, start, end)
			}
		}
	}
}

func TestAChainMapsRowErrorsToInputRowsAndWritesTheOutputSegment(t *testing.T) {
	h := putSegment(t, values(10, 3), values(5, 0))
	out := outputName(t)
	resp, err := testServer().Invoke(context.Background(), &pb.InvokeRequest{
		Step: "t/m.double", Input: h, OutputSegment: out, InvocationId: "1",
	})
	if err != nil {
		t.Fatal(err)
	}
	ok := resp.GetOk()
	if ok == nil {
		t.Fatalf("invoke failed: %v", resp.GetError())
	}
	var rows []uint64
	for _, e := range ok.RowErrors {
		rows = append(rows, e.Row)
	}
	// Rows 0, 3, 6, 9 of the first batch are negative; the second batch starts at row 10.
	if fmt.Sprint(rows) != "[0 3 6 9]" {
		t.Fatalf("row errors %v", rows)
	}
	if ok.Output.Rows != 11 || ok.StepsRun != 1 {
		t.Fatalf("output rows %d, steps run %d", ok.Output.Rows, ok.StepsRun)
	}
	schema, batches := readSegment(t, ok.Output)
	if fp, _ := SchemaFingerprint(schema); fp != ok.Output.SchemaFingerprint {
		t.Fatal("the answered fingerprint is not the written schema's")
	}
	got := []int64{}
	for _, b := range batches {
		col := b.Column(1).(*array.Int64)
		for i := 0; i < col.Len(); i++ {
			got = append(got, col.Value(i))
		}
	}
	if fmt.Sprint(got) != "[2 4 8 10 14 16 0 2 4 6 8]" {
		t.Fatalf("doubled %v", got)
	}
}

func TestFailuresAreStepErrorsAndLeaveNoOutput(t *testing.T) {
	h := putSegment(t, values(4, 0))
	cases := map[string]string{"t/m.panics": "USER_CODE", "t/m.wrong": "BAD_OUTPUT", "t/m.nope": "UNKNOWN_STEP"}
	for step, code := range cases {
		out := outputName(t)
		resp, err := testServer().Invoke(context.Background(), &pb.InvokeRequest{Step: step, Input: h, OutputSegment: out})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetError().GetCode() != code {
			t.Fatalf("%s: got %v, want %s", step, resp, code)
		}
		if _, err := os.Stat(SegmentPath(out)); !os.IsNotExist(err) {
			t.Fatalf("%s left its output segment behind", step)
		}
	}
}

func TestAChainOfTwoStepsRunsBothAndNamesTheFailingStep(t *testing.T) {
	h := putSegment(t, values(3, 0))
	resp, _ := testServer().Invoke(context.Background(), &pb.InvokeRequest{
		Step: "t/m.double", Input: h, OutputSegment: outputName(t),
		Then: []*pb.ChainStep{{Step: "t/m.panics", ConfigJson: "{}"}},
	})
	e := resp.GetError()
	if e.GetCode() != "USER_CODE" || e.GetStepIndex() != 1 || !strings.Contains(e.GetMessage(), "step `t/m.panics`") {
		t.Fatalf("got %v", resp)
	}
}

func TestAMismatchedFingerprintIsBadInput(t *testing.T) {
	h := putSegment(t, values(3, 0))
	h.SchemaFingerprint = strings.Repeat("0", 64)
	resp, _ := testServer().Invoke(context.Background(), &pb.InvokeRequest{Step: "t/m.double", Input: h, OutputSegment: outputName(t)})
	if resp.GetError().GetCode() != "BAD_INPUT" {
		t.Fatalf("got %v", resp)
	}
}

func TestTruncatedStreamsAreRefusedNotRead(t *testing.T) {
	var buf bytes.Buffer
	b := values(100, 0)
	if err := writeStream(&buf, b.Schema(), []arrow.RecordBatch{b}); err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{3, 9, buf.Len() / 2, buf.Len() - 9} {
		if _, _, err := readBatches(buf.Bytes()[:cut]); err == nil {
			t.Fatalf("a stream cut at %d of %d bytes was accepted", cut, buf.Len())
		}
	}
}

func TestCanonicalTextFollowsTheRegistryGrammar(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "na\"me", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "xs", Type: arrow.ListOfField(arrow.Field{Name: "item", Type: arrow.PrimitiveTypes.Float64, Nullable: true}), Nullable: true},
		{Name: "d", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}},
		{Name: "s", Type: arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32}), Nullable: true},
	}, nil)
	text, err := CanonicalSchemaText(schema)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		`"id": int64 not null`,
		`"na\"me": utf8`,
		`"at": timestamp[us, "UTC"]`,
		`"xs": list<float64>`,
		`"d": decimal128(10,2) not null`,
		`"s": struct<"a": int32 not null>`,
	}, "\n")
	if text != want {
		t.Fatalf("canonical text\n%s\nwant\n%s", text, want)
	}
	manifest, _ := ManifestType(schema.Field(3).Type)
	if manifest != "list<float64?>" {
		t.Fatalf("manifest type %s", manifest)
	}
}

func TestManifestDeclaresTheGoRuntimeAndItsBuild(t *testing.T) {
	text, err := Plugin{Package: "t", Modules: map[string][]Step{"t/m": {double}}}.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"runtime": "go"`, `"{binary}"`, `"include_input": true`, `"name": "doubled"`} {
		if !strings.Contains(string(text), want) {
			t.Fatalf("manifest lacks %s:\n%s", want, text)
		}
	}
}
