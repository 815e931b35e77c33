package bench_test

import (
	"slices"
	"testing"

	"github.com/spoolvideo/spool/libs/bench"
)

func TestMedian(t *testing.T) {
	xs := []float64{3, 1, 2, 5, 4}
	if got := bench.Median(xs); got != 3 || !slices.Equal(xs, []float64{3, 1, 2, 5, 4}) {
		t.Fatalf("median %v of %v (the input must stay as it was)", got, xs)
	}
	if got := bench.Median([]float64{2, 1}); got != 2 {
		t.Fatalf("median of two: %v, want the upper", got)
	}
	if got := bench.Median(nil); got != 0 {
		t.Fatalf("median of none: %v", got)
	}
}
