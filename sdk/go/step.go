package heddle

// Step definitions and one step's run over one record batch. A step is called once per
// record batch of the input object, so memory stays bounded by the largest batch, and the
// row indices it reports are relative to that batch. This file must never let a step's
// output reach shared memory without checking it against the declared row contract.

import (
	"fmt"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// RowKind says how a row contract relates to the step's input (docs/manifest.md).
type RowKind int

const (
	// FieldsRow is exactly the schema's columns, or at least them when Open.
	FieldsRow RowKind = iota
	// InputPlusRow is the input row with the schema's columns appended; the step returns
	// only the appended columns.
	InputPlusRow
)

// Row is a row contract: which columns a step takes or gives.
type Row struct {
	Schema *arrow.Schema
	Kind   RowKind
	Open   bool
}

// Fields is a closed row: exactly these columns, in this order.
func Fields(fields ...arrow.Field) Row { return Row{Schema: arrow.NewSchema(fields, nil)} }

// OpenRow needs at least these columns and passes any others through.
func OpenRow(fields ...arrow.Field) Row {
	return Row{Schema: arrow.NewSchema(fields, nil), Open: true}
}

// InputPlus is an output that is the input row with these columns appended.
func InputPlus(fields ...arrow.Field) Row {
	return Row{Schema: arrow.NewSchema(fields, nil), Kind: InputPlusRow}
}

// ConfigKey declares one key of a step's configuration (docs/manifest.md, `config`).
type ConfigKey struct {
	Key      string `json:"key"`
	Type     string `json:"type"`
	Required bool   `json:"required"`
	Doc      string `json:"doc"`
}

// RowError is a row the step could not process: Row indexes the batch the step was given.
type RowError struct {
	Row     int
	Message string
}

// Output is what a step returns. By default Batch is aligned with the input batch (one
// output row per input row, in order) and the SDK removes the rows named in Errors; a step
// that filters or expands rows sets Unaligned and leaves the failed rows out itself.
type Output struct {
	Batch     arrow.RecordBatch
	Errors    []RowError
	Unaligned bool
}

// Failure fails a whole invocation with a protocol error code (docs/plugins.md, "Errors").
type Failure struct {
	Code, Message, Column string
	StepIndex             int
}

func (f *Failure) Error() string { return f.Message }

func failure(code, column, format string, args ...any) *Failure {
	return &Failure{Code: code, Column: column, Message: fmt.Sprintf(format, args...)}
}

// Step is one declared step of a plugin module.
type Step struct {
	Name   string
	Doc    string
	Input  Row
	Output Row
	Config []ConfigKey
	// Run is called once per input record batch. An error fails the invocation as
	// USER_CODE (a *Failure keeps its own code); a panic does too, and the plugin keeps serving.
	Run func(batch arrow.RecordBatch, config map[string]any) (Output, error)
}

func (s Step) manifest() (map[string]any, error) {
	input, err := rowJSON(s.Input)
	if err != nil {
		return nil, fmt.Errorf("step %s input: %w", s.Name, err)
	}
	output, err := rowJSON(s.Output)
	if err != nil {
		return nil, fmt.Errorf("step %s output: %w", s.Name, err)
	}
	config := s.Config
	if config == nil {
		config = []ConfigKey{}
	}
	return map[string]any{
		"doc": s.Doc, "role": "transform", "config": config, "slots": []any{},
		"input": input, "output": output,
	}, nil
}

func rowJSON(r Row) (map[string]any, error) {
	fields := []map[string]any{}
	for _, f := range r.Schema.Fields() {
		text, err := ManifestType(f.Type)
		if err != nil {
			return nil, err
		}
		field := map[string]any{"name": f.Name, "type": text}
		if f.Nullable {
			field["nullable"] = true
		}
		fields = append(fields, field)
	}
	if r.Kind == InputPlusRow {
		return map[string]any{"fields": fields, "include_input": true}, nil
	}
	return map[string]any{"fields": fields, "open": r.Open}, nil
}

// run checks the input batch, calls the step and returns its checked output, its errors
// (sorted by row), and whether the output rows are the input rows minus the failed ones, in
// order, so that a chain knows which input row each output row came from.
func (s Step) run(batch arrow.RecordBatch, config map[string]any) (out arrow.RecordBatch, errs []RowError, aligned bool, err error) {
	if err := checkColumns(batch, s.Input, s.Name, "input"); err != nil {
		return nil, nil, false, err
	}
	result, err := s.call(batch, config)
	if err != nil {
		return nil, nil, false, err
	}
	if result.Batch == nil {
		return nil, nil, false, failure("BAD_OUTPUT", "", "step `%s` returned no batch", s.Name)
	}
	out, errs = result.Batch, result.Errors
	aligned = (!result.Unaligned && len(errs) > 0) || s.Output.Kind == InputPlusRow
	rows := int(batch.NumRows())
	if aligned && int(out.NumRows()) != rows {
		return nil, nil, false, failure("BAD_OUTPUT", "", "step `%s` returned %d rows for %d input rows; its output must be aligned with its input", s.Name, out.NumRows(), rows)
	}
	if err := checkColumns(out, s.Output, s.Name, "output"); err != nil {
		return nil, nil, false, err
	}
	if s.Output.Kind == InputPlusRow {
		fields := append(append([]arrow.Field{}, batch.Schema().Fields()...), s.Output.Schema.Fields()...)
		cols := append(append([]arrow.Array{}, batch.Columns()...), out.Columns()...)
		out = array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(rows))
	} else {
		out = withDeclared(out, s.Output.Schema)
	}
	if len(errs) == 0 {
		return out, nil, aligned, nil
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Row < errs[j].Row })
	for _, e := range errs {
		if e.Row < 0 || e.Row >= rows {
			return nil, nil, false, failure("BAD_OUTPUT", "", "step `%s` reported an error for row %d, which is not in its batch of %d rows", s.Name, e.Row, rows)
		}
	}
	if !aligned {
		return out, errs, false, nil
	}
	kept, err := dropRows(out, errs)
	return kept, errs, true, err
}

// withDeclared gives declared columns their declared nullability; an open row keeps the
// rest as found.
func withDeclared(batch arrow.RecordBatch, declared *arrow.Schema) arrow.RecordBatch {
	fields := append([]arrow.Field{}, batch.Schema().Fields()...)
	for i, f := range fields {
		if idx := declared.FieldIndices(f.Name); len(idx) > 0 {
			fields[i] = declared.Field(idx[0])
		}
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), batch.Columns(), batch.NumRows())
}

func (s Step) call(batch arrow.RecordBatch, config map[string]any) (out Output, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return s.Run(batch, config)
}

// dropRows keeps the rows of batch not named in errs (sorted), as slices of the original
// columns joined back together.
func dropRows(batch arrow.RecordBatch, errs []RowError) (arrow.RecordBatch, error) {
	var slices []arrow.RecordBatch
	start := int64(0)
	for _, e := range errs {
		if int64(e.Row) > start {
			slices = append(slices, batch.NewSlice(start, int64(e.Row)))
		}
		start = int64(e.Row) + 1
	}
	if start < batch.NumRows() {
		slices = append(slices, batch.NewSlice(start, batch.NumRows()))
	}
	return concatBatches(batch.Schema(), slices)
}

func concatBatches(schema *arrow.Schema, batches []arrow.RecordBatch) (arrow.RecordBatch, error) {
	if len(batches) == 1 {
		return batches[0], nil
	}
	cols := make([]arrow.Array, schema.NumFields())
	rows := int64(0)
	for _, b := range batches {
		rows += b.NumRows()
	}
	for i := range cols {
		parts := make([]arrow.Array, 0, len(batches))
		for _, b := range batches {
			parts = append(parts, b.Column(i))
		}
		if len(parts) == 0 {
			cols[i] = array.MakeArrayOfNull(memory.DefaultAllocator, schema.Field(i).Type, 0)
			continue
		}
		joined, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			return nil, err
		}
		cols[i] = joined
	}
	return array.NewRecordBatch(schema, cols, rows), nil
}

// checkColumns returns a Failure naming the first declared column that batch breaks.
func checkColumns(batch arrow.RecordBatch, row Row, step, side string) error {
	code := "BAD_INPUT"
	if side == "output" {
		code = "BAD_OUTPUT"
	}
	schema := batch.Schema()
	for _, want := range row.Schema.Fields() {
		idx := schema.FieldIndices(want.Name)
		if len(idx) == 0 {
			return failure(code, want.Name, "%s of step `%s` lacks column `%s`", side, step, want.Name)
		}
		got := schema.Field(idx[0])
		gotText, _ := ManifestType(got.Type)
		wantText, _ := ManifestType(want.Type)
		if gotText != wantText || gotText == "" {
			return failure(code, want.Name, "%s column `%s` of step `%s` is %s, declared %s", side, want.Name, step, got.Type, wantText)
		}
		// Inputs are not refused for nulls: a step reports such rows as row errors instead.
		if side == "output" && !want.Nullable && batch.Column(idx[0]).NullN() > 0 {
			return failure(code, want.Name, "%s column `%s` of step `%s` holds nulls but is declared not null", side, want.Name, step)
		}
	}
	if row.Open {
		return nil
	}
	if schema.NumFields() != row.Schema.NumFields() {
		for _, f := range schema.Fields() {
			if !row.Schema.HasField(f.Name) {
				return failure(code, f.Name, "%s of step `%s` has undeclared column `%s`", side, step, f.Name)
			}
		}
	}
	for i, f := range schema.Fields() {
		if f.Name != row.Schema.Field(i).Name {
			return failure(code, f.Name, "%s columns of step `%s` are not in the declared order (`%s` at position %d)", side, step, f.Name, i)
		}
	}
	return nil
}
