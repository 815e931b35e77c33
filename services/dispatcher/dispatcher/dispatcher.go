package dispatcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
)

// Dispatcher is one dispatcher process; several may run at once.
type Dispatcher struct {
	cfg       Config
	log       *slog.Logger
	bus       *bus.Bus
	store     *store.Store
	blob      *blob.Store // nil: no media jobs
	codec     media.Codec
	catalog   jobspec.Catalog
	pools     []string      // the catalog's pools, in declaration order
	kick      chan struct{} // wakes the outbox publisher
	admitKick chan struct{} // wakes the admission loop
	tpl       templates
	paces     paces
	metrics   *metrics
	intakes   chan struct{}  // a slot per submission whose intake runs
	intaking  sync.WaitGroup // those intakes
	owner     string         // this dispatcher in submission claims
}

// New returns a dispatcher over an open bus and store. It declares the
// topology and the pools' consumers.
func New(ctx context.Context, cfg Config, b *bus.Bus, s *store.Store, log *slog.Logger, opts ...Option) (*Dispatcher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cat, err := jobspec.LoadRouted(cfg.Catalog.File, cfg.Pools, "SPOOL_DISPATCHER_POOLS")
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	if err := b.Await(ctx); err != nil {
		return nil, err
	}
	for _, p := range cat.Pools.Names() {
		if _, err := b.DeclarePool(ctx, p); err != nil {
			return nil, err
		}
	}
	codec, err := media.CodecByName(cfg.Codec)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: SPOOL_DISPATCHER_CODEC: %w", err)
	}
	cfg.RedriveAfter = cmp.Or(cfg.RedriveAfter, defaultRedriveAfter)
	d := &Dispatcher{cfg: cfg, codec: codec, log: log, bus: b, store: s, catalog: cat, pools: cat.Pools.Names(), kick: make(chan struct{}, 1),
		admitKick: make(chan struct{}, 1), intakes: make(chan struct{}, cmp.Or(cfg.IntakeParallel, 2)), owner: owner()}
	for _, o := range opts {
		if err := o(d); err != nil {
			return nil, err
		}
	}
	if d.metrics, err = newMetrics(d); err != nil {
		return nil, err
	}
	return d, nil
}

// Run consumes submissions and results, re-drives the submissions recorded
// in Postgres that no message brought, publishes the outbox, listens for
// cancellations and reconciles, until ctx ends. A stream or consumer found
// missing (NATS lost its store) is declared again on the way.
func (d *Dispatcher) Run(ctx context.Context) error {
	defer d.metrics.close()
	jobs, err := d.bus.Consumer(ctx, bus.StreamJobs, bus.ConsumerDispatcher)
	if err != nil {
		return err
	}
	results, err := d.bus.Consumer(ctx, bus.StreamResults, bus.ConsumerDispatcher)
	if err != nil {
		return err
	}
	sub, err := d.bus.Conn().QueueSubscribe(bus.SubjectAllCancels, "dispatcher", func(m *nats.Msg) { d.onCancelMsg(ctx, m) })
	if err != nil {
		return fmt.Errorf("dispatcher: subscribe to cancellations: %w", err)
	}
	defer sub.Unsubscribe()
	svc, err := d.startService()
	if err != nil {
		return err
	}
	defer svc.Stop()

	loops := map[string]func(context.Context) error{
		"submissions": func(ctx context.Context) error {
			return d.consume(ctx, jobs, d.cfg.SubmitBatch, d.submission)
		},
		"re-drive":   d.redriveLoop,
		"results":    func(ctx context.Context) error { return d.consumeResults(ctx, results) },
		"outbox":     d.publishLoop,
		"reconciler": d.reconcileLoop,
		"admission":  d.admitLoop,
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(loops))
	for name, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("dispatcher: %s: %w", name, err)
			}
		}()
	}
	d.wake()
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	wg.Wait()
	d.intaking.Wait() // the intakes the loops started
	return err
}

// consume fetches batches from c and hands each message to handle, which
// acks, naks or terms it. A handler error naks the message for redelivery.
func (d *Dispatcher) consume(ctx context.Context, c jetstream.Consumer, batch int, handle func(context.Context, jetstream.Msg) error) error {
	for ctx.Err() == nil {
		msgs, err := c.Fetch(batch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return nil
			}
			d.fetchFailed(ctx, "fetch", err)
			continue
		}
		for m := range msgs.Messages() {
			if err := handle(ctx, m); err != nil {
				d.log.Error("handling a message; it will be redelivered", "subject", m.Subject(), "err", err)
				_ = m.NakWithDelay(time.Second)
			}
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			d.fetchFailed(ctx, "fetch batch", err)
		}
	}
	return nil
}

// fetchFailed handles a fetch's error: a consumer or stream found missing
// (NATS lost its store) is declared again and the fetch retried shortly;
// anything else is logged and waited out a little longer.
func (d *Dispatcher) fetchFailed(ctx context.Context, what string, err error) {
	wait := 50 * time.Millisecond
	if !d.bus.Heal(ctx, err) {
		if ctx.Err() != nil {
			return
		}
		d.log.Warn(what, "err", err)
		wait = 200 * time.Millisecond
	}
	select {
	case <-ctx.Done():
	case <-time.After(wait):
	}
}

// wake asks the outbox publisher to run now.
func (d *Dispatcher) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// publishLoop publishes due outbox rows: at once when woken, else when the
// next delayed row falls due, and at least every second.
func (d *Dispatcher) publishLoop(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := d.store.PublishOutbox(ctx, d.cfg.OutboxBatch, d.publish)
		if err != nil && !d.bus.Heal(ctx, err) && ctx.Err() == nil { // healed: a stream was missing (NATS lost its store)
			d.log.Warn("publish outbox", "err", err)
		}
		if n > 0 && err == nil {
			continue
		}
		wait := time.Second
		if next, err := d.store.NextOutbox(ctx); err == nil && !next.IsZero() {
			if until := time.Until(next); until < wait {
				wait = max(until, time.Millisecond)
			}
		}
		select {
		case <-ctx.Done():
		case <-d.kick:
		case <-time.After(wait):
		}
	}
	return nil
}

// publishNow publishes committed outbox rows at once, off the outbox loop's
// path: the hand-off of a chain segment costs one transaction, not two. A
// failure leaves the row to the outbox loop; a crash before MarkSent makes
// the loop publish it again, which the Nats-Msg-Id turns into a no-op.
// Rows not due yet (a paced live segment) are left to the outbox loop,
// which wakes when the first falls due.
func (d *Dispatcher) publishNow(ctx context.Context, msgs ...store.OutboxMsg) {
	now := time.Now()
	due := msgs[:0:0]
	for _, m := range msgs {
		if m.NotBefore.After(now) {
			d.wake() // re-arm the loop's timer
			continue
		}
		due = append(due, m)
	}
	if msgs = due; len(msgs) == 0 {
		return
	}
	n, err := d.publish(msgs)
	if err != nil {
		d.log.Warn("direct publish; the outbox loop will retry", "err", err)
		d.wake()
	}
	ids := make([]string, n)
	for i := range n {
		ids[i] = msgs[i].MsgID
	}
	if n > 0 {
		if err := d.store.MarkSent(ctx, ids...); err != nil {
			d.log.Warn("mark outbox sent", "err", err)
		}
	}
}

// publish sends outbox rows and says how many, from the first, went out.
// The publishes are pipelined (asynchronous, in order on one connection),
// then every acknowledgement is awaited.
func (d *Dispatcher) publish(msgs []store.OutboxMsg) (int, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var sendErr error
	for _, m := range msgs {
		nm := &nats.Msg{Subject: m.Subject, Data: m.Payload, Header: nats.Header{}}
		nm.Header.Set(bus.HeaderContentType, bus.ContentProtobuf)
		for k, v := range m.Headers {
			nm.Header.Set(k, v)
		}
		f, err := d.bus.JetStream().PublishMsgAsync(nm, jetstream.WithMsgID(m.MsgID))
		if err != nil {
			sendErr = fmt.Errorf("publish %s: %w", m.MsgID, err)
			break
		}
		futures = append(futures, f)
	}
	timeout := time.After(10 * time.Second)
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return i, fmt.Errorf("publish %s: %w", msgs[i].MsgID, err)
		case <-timeout:
			return i, fmt.Errorf("publish %s: no acknowledgement in 10s", msgs[i].MsgID)
		}
	}
	return len(futures), sendErr
}
