package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// TestStoreLostRedeclaredAfterReconnect: a NATS that comes back on its
// address without its store (killed, wiped, restarted) finds every stream,
// consumer and bucket declared again by a Bus that had declared them, on
// its own after the reconnect, and the stream's creation time moves on.
func TestStoreLostRedeclaredAfterReconnect(t *testing.T) {
	st := devstacktest.Private(t, devstacktest.NATS)
	ctx := context.Background()
	b, err := bus.Connect(ctx, st.NATSConfig(), bus.WithReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Declare(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeclarePool(ctx, "h100"); err != nil {
		t.Fatal(err)
	}
	before, err := b.Created(ctx, bus.StreamSegments, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PublishTask(ctx, &spoolv1.SegmentTask{JobId: "lost", Pool: "h100", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if err := st.Kill(devstack.PartNATS); err != nil {
		t.Fatal(err)
	}
	if err := st.Wipe(devstack.PartNATS); err != nil {
		t.Fatal(err)
	}
	if err := st.Restart(ctx, devstack.PartNATS); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := everythingDeclared(ctx, b.JetStream(), "h100")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the store was lost: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	after, err := b.Created(ctx, bus.StreamSegments, "")
	if err != nil || !after.After(before) {
		t.Fatalf("stream created %v, then %v (%v)", before, after, err)
	}
	if c, err := b.Created(ctx, bus.StreamResults, bus.ConsumerDispatcher); err != nil || c.Before(after) {
		t.Fatalf("the dispatcher's results consumer created %v, the stream of tasks %v (%v)", c, after, err)
	}
	info, err := b.JetStream().Stream(ctx, bus.StreamSegments)
	if err != nil || info.CachedInfo().State.Msgs != 0 {
		t.Fatalf("the task survived the wipe? %+v %v", info, err)
	}
}

// everythingDeclared is nil when the streams, the dispatcher's, stitcher's
// and pool's consumers and both buckets exist.
func everythingDeclared(ctx context.Context, js jetstream.JetStream, pool string) error {
	for _, c := range []struct{ stream, name string }{{bus.StreamJobs, bus.ConsumerDispatcher}, {bus.StreamResults, bus.ConsumerDispatcher},
		{bus.StreamResults, bus.ConsumerStitcher}, {bus.StreamSegments, "pool-" + pool}} {
		if _, err := js.Consumer(ctx, c.stream, c.name); err != nil {
			return fmt.Errorf("consumer %s of %s: %w", c.name, c.stream, err)
		}
	}
	if _, err := js.Stream(ctx, bus.StreamEvents); err != nil {
		return err
	}
	for _, name := range []string{bus.BucketWorkers, bus.BucketCancelled} {
		if _, err := js.KeyValue(ctx, name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	return nil
}

// TestHealDeclaresWhatIsMissing: a fetch from a deleted consumer, a publish
// to a deleted stream and a read of a deleted bucket fail with errors that
// Missing recognises; Heal declares them again, with the pools the Bus
// declared, and the same handles work again. Errors of other kinds are not
// Missing, and Heal leaves them alone.
func TestHealDeclaresWhatIsMissing(t *testing.T) {
	st := devstacktest.Private(t, devstacktest.NATS)
	ctx := context.Background()
	b, err := bus.Connect(ctx, st.NATSConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Declare(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := b.DeclarePool(ctx, "a10")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{bus.StreamSegments, bus.StreamResults, "KV_" + bus.BucketWorkers} {
		if err := b.JetStream().DeleteStream(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(600 * time.Millisecond) // past the gap between two declarations

	_, ferr := bus.FetchOne(ctx, c, 200*time.Millisecond)
	if !bus.Missing(ferr) {
		t.Fatalf("fetch from a deleted consumer: %v, not Missing", ferr)
	}
	if !b.Heal(ctx, ferr) {
		t.Fatal("Heal did not declare")
	}
	if err := everythingDeclared(ctx, b.JetStream(), "a10"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PublishTask(ctx, &spoolv1.SegmentTask{JobId: "healed", Pool: "a10", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if m, err := bus.FetchOne(ctx, c, 5*time.Second); err != nil {
		t.Fatalf("the old handle after Heal: %v", err)
	} else {
		_ = m.Ack()
	}

	// A publish that finds no stream heals by itself.
	if err := b.JetStream().DeleteStream(ctx, bus.StreamResults); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if _, err := b.PublishResult(ctx, &spoolv1.SegmentResult{JobId: "healed", Attempt: 1, Phase: spoolv1.Phase_PHASE_DONE}); err != nil {
		t.Fatalf("publish to a deleted stream: %v", err)
	}
	kv, err := b.Workers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "w1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{nil, errors.New("other"), context.DeadlineExceeded, jetstream.ErrKeyNotFound} {
		if bus.Missing(err) || b.Heal(ctx, err) {
			t.Fatalf("%v taken for a missing stream", err)
		}
	}
}
