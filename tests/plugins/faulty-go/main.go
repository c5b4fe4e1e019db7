// Command faulty-go is a test plugin whose steps fail on purpose, one way each, on the row
// whose `n` equals the config's `bad`: `explode` panics, `die` exits the process in the
// middle of the invocation, `wrong` answers with a column of the wrong type.
package main

import (
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	heddle "heddle.dev/sdk"
)

var n = arrow.Field{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true}
var twice = arrow.Field{Name: "twice", Type: arrow.PrimitiveTypes.Int64, Nullable: true}

// hits says whether the batch holds the configured bad value.
func hits(batch arrow.RecordBatch, config map[string]any) bool {
	bad, _ := config["bad"].(float64)
	col := batch.Column(batch.Schema().FieldIndices("n")[0]).(*array.Int64)
	for i := 0; i < col.Len(); i++ {
		if col.IsValid(i) && col.Value(i) == int64(bad) {
			return true
		}
	}
	return false
}

func doubled(batch arrow.RecordBatch) heddle.Output {
	col := batch.Column(batch.Schema().FieldIndices("n")[0]).(*array.Int64)
	b := array.NewInt64Builder(memory.DefaultAllocator)
	for i := 0; i < col.Len(); i++ {
		b.Append(col.Value(i) * 2)
	}
	out := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{twice}, nil), []arrow.Array{b.NewArray()}, int64(col.Len()))
	return heddle.Output{Batch: out}
}

func step(name string, fail func()) heddle.Step {
	return heddle.Step{
		Name: name, Input: heddle.OpenRow(n), Output: heddle.InputPlus(twice),
		Config: []heddle.ConfigKey{{Key: "bad", Type: "int", Doc: "The value that fails."}},
		Run: func(batch arrow.RecordBatch, config map[string]any) (heddle.Output, error) {
			if hits(batch, config) {
				fail()
			}
			return doubled(batch), nil
		},
	}
}

func main() {
	wrong := step("wrong", nil)
	wrong.Run = func(batch arrow.RecordBatch, _ map[string]any) (heddle.Output, error) {
		b := array.NewStringBuilder(memory.DefaultAllocator)
		for i := 0; i < int(batch.NumRows()); i++ {
			b.Append("not a number")
		}
		s := arrow.NewSchema([]arrow.Field{{Name: "twice", Type: arrow.BinaryTypes.String}}, nil)
		return heddle.Output{Batch: array.NewRecordBatch(s, []arrow.Array{b.NewArray()}, batch.NumRows())}, nil
	}
	heddle.Main(heddle.Plugin{
		Package: "faulty-go",
		Modules: map[string][]heddle.Step{"faulty-go/steps": {
			step("explode", func() { panic("exploded on the bad row") }),
			step("die", func() { os.Exit(3) }),
			wrong,
		}},
	})
}
