package main

import (
	"math"
	"testing"
)

func TestHaversineMatchesKnownDistances(t *testing.T) {
	// Berlin to Paris is about 878 km; a point to itself is 0.
	if d := Haversine(52.52, 13.405, 48.8566, 2.3522); math.Abs(d-877.5) > 2 {
		t.Fatalf("Berlin-Paris %f km", d)
	}
	if d := Haversine(10, 20, 10, 20); d != 0 {
		t.Fatalf("same point %f km", d)
	}
}
