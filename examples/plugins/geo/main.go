// Command geo is the Go plugin of examples/polyglot.he. Step `geo/distance.haversine`
// appends `km_from_home`: the great-circle distance between where a card was used and the
// card holder's home, computed in one pass over the shared-memory columns (no copy of the
// input). The worker builds it on first use (`go build`) and caches the binary.
package main

import (
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	heddle "heddle.dev/sdk"
)

const earthRadiusKm = 6371.0088

var coordinates = []arrow.Field{
	{Name: "lat", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "lon", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "home_lat", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "home_lon", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}

var distance = arrow.Field{Name: "km_from_home", Type: arrow.PrimitiveTypes.Float64}

// Haversine is the great-circle distance in kilometres between two points given in degrees.
func Haversine(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Pow(math.Sin(dLat/2), 2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Pow(math.Sin(dLon/2), 2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}

func column(batch arrow.RecordBatch, name string) *array.Float64 {
	return batch.Column(batch.Schema().FieldIndices(name)[0]).(*array.Float64)
}

// haversine rejects rows with a missing or out-of-range coordinate as row errors.
func haversine(batch arrow.RecordBatch, _ map[string]any) (heddle.Output, error) {
	lat, lon := column(batch, "lat"), column(batch, "lon")
	homeLat, homeLon := column(batch, "home_lat"), column(batch, "home_lon")
	n := int(batch.NumRows())
	out := array.NewFloat64Builder(memory.DefaultAllocator)
	out.Reserve(n)
	var errs []heddle.RowError
	for i := 0; i < n; i++ {
		if lat.IsNull(i) || lon.IsNull(i) || homeLat.IsNull(i) || homeLon.IsNull(i) {
			errs = append(errs, heddle.RowError{Row: i, Message: "a coordinate is missing"})
			out.Append(0)
			continue
		}
		a, b, c, d := lat.Value(i), lon.Value(i), homeLat.Value(i), homeLon.Value(i)
		if math.Abs(a) > 90 || math.Abs(c) > 90 || math.Abs(b) > 180 || math.Abs(d) > 180 {
			errs = append(errs, heddle.RowError{Row: i, Message: "a coordinate is out of range"})
			out.Append(0)
			continue
		}
		out.Append(Haversine(a, b, c, d))
	}
	result := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{distance}, nil), []arrow.Array{out.NewArray()}, int64(n))
	return heddle.Output{Batch: result, Errors: errs}, nil
}

func main() {
	heddle.Main(heddle.Plugin{
		Package: "geo",
		Modules: map[string][]heddle.Step{
			"geo/distance": {{
				Name:   "haversine",
				Doc:    "Appends `km_from_home`: the great-circle distance from the card holder's home.",
				Input:  heddle.OpenRow(coordinates...),
				Output: heddle.InputPlus(distance),
				Run:    haversine,
			}},
		},
	})
}
