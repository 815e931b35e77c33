package bench_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/bench"
)

func TestOnBothStacks(t *testing.T) {
	var order []bool
	test, durable, err := bench.OnBothStacks(context.Background(), func(_ context.Context, d bool) (string, error) {
		order = append(order, d)
		return bench.StackName(d), nil
	})
	if err != nil || test != "test settings" || durable != "durable" || len(order) != 2 || order[0] || !order[1] {
		t.Fatalf("got %q, %q, %v after runs %v", test, durable, err, order)
	}
	boom := errors.New("boom")
	_, _, err = bench.OnBothStacks(context.Background(), func(_ context.Context, d bool) (int, error) {
		if d {
			return 0, boom
		}
		return 1, nil
	})
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "durable: ") {
		t.Fatalf("a durable run's error: %v", err)
	}
}
