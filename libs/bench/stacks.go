package bench

import (
	"context"
	"fmt"
)

// Stack names label the figures taken on each devstack.
const (
	// StackTest is the test settings: Postgres with fsync,
	// synchronous_commit and full_page_writes off, JetStream syncing every
	// two minutes.
	StackTest = "test settings"
	// StackDurable is devstack.Options.Durable: Postgres's durable
	// defaults, JetStream syncing every write (sync_interval: always).
	StackDurable = "durable"
)

// StackName is the label of figures taken on a durable stack or not.
func StackName(durable bool) string {
	if durable {
		return StackDurable
	}
	return StackTest
}

// OnBothStacks runs run on the test settings, then on a durable stack, and
// returns both figures; an error of the durable run says so.
func OnBothStacks[T any](ctx context.Context, run func(ctx context.Context, durable bool) (T, error)) (test, durable T, err error) {
	if test, err = run(ctx, false); err != nil {
		return test, durable, err
	}
	if durable, err = run(ctx, true); err != nil {
		return test, durable, fmt.Errorf("%s: %w", StackDurable, err)
	}
	return test, durable, nil
}
