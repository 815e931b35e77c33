package loadbench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bus"
)

// Tenants of the run: the first half of the jobs is tenant A's, submitted
// first, the second half tenant B's.
const (
	TenantA = "tenant-a"
	TenantB = "tenant-b"
)

// job is one submitted job of the run.
type job struct {
	id, tenant string
}

// jobsOf names n jobs of the run: the first half tenant A's, the rest B's.
func jobsOf(n int) []job {
	jobs := make([]job, n)
	for i := range jobs {
		t := TenantA
		if i >= n/2 {
			t = TenantB
		}
		jobs[i] = job{id: fmt.Sprintf("load-%d-%04d", n, i), tenant: t}
	}
	return jobs
}

// spec is job j's JobSpec (JSON): a chain of o.Segments sim segments of
// 64×64 frames, windows of 13 frames overlapping by 4.
func (o Options) spec(j job) []byte {
	const window, overlap = 13, 4
	frames := window + (o.Segments-1)*(window-overlap)
	return fmt.Appendf(nil, `{"id":%q,"tenant":%q,"prompt":"a load test","model":"sim","mode":"MODE_CHAIN",`+
		`"durationFrames":%d,"windowFrames":%d,"overlapFrames":%d,"width":64,"height":64,"steps":%d,"fps":24,"pool":%q}`,
		j.id, j.tenant, frames, window, overlap, o.Steps, pool)
}

// frames is the length of each job's video.
func (o Options) frames() int64 { return int64(13 + (o.Segments-1)*9) }

// burst publishes every job's spec to spool.jobs.submit as fast as the
// client can, asynchronously, each with its id as Nats-Msg-Id, then waits
// for every PubAck. It returns when the last PubAck came.
func burst(ctx context.Context, b *bus.Bus, o Options, jobs []job) error {
	js := b.JetStream()
	futures := make([]jetstream.PubAckFuture, 0, len(jobs))
	for _, j := range jobs {
		m := nats.NewMsg(bus.SubjectJobSubmit)
		m.Data = o.spec(j)
		m.Header.Set(bus.HeaderContentType, bus.ContentJSON)
		f, err := js.PublishMsgAsync(m, jetstream.WithMsgID(j.id))
		if err != nil {
			return fmt.Errorf("loadbench: publish %s: %w", j.id, err)
		}
		futures = append(futures, f)
	}
	timeout := time.After(time.Minute)
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("loadbench: publish %s: %w", jobs[i].id, err)
		case <-timeout:
			return fmt.Errorf("loadbench: %d PubAcks of %d not back in a minute", len(futures)-i, len(futures))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
