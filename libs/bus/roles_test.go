package bus_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// roleConn is a raw connection as one user, recording every permissions
// violation the server reports to it.
type roleConn struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu         sync.Mutex
	violations []string
}

func dialRole(t *testing.T, cfg config.NATS) *roleConn {
	t.Helper()
	rc := &roleConn{}
	opts := []nats.Option{nats.Name(t.Name()), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			rc.mu.Lock()
			rc.violations = append(rc.violations, err.Error())
			rc.mu.Unlock()
		}
	})}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password.Reveal()), nats.CustomInboxPrefix(bus.InboxPrefix(cfg.User)))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		t.Fatalf("connect as %q: %v", cfg.User, err)
	}
	t.Cleanup(nc.Close)
	rc.nc = nc
	rc.js, _ = jetstream.New(nc)
	return rc
}

// refused checks that op fails and that the server reported a permissions
// violation naming subject.
func (rc *roleConn) refused(t *testing.T, what, subject string, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // a refused request times out
	defer cancel()
	if err := op(ctx); err == nil {
		t.Errorf("%s: %s succeeded, want it refused", rc.nc.Opts.User, what)
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		rc.mu.Lock()
		var seen bool
		for _, v := range rc.violations {
			seen = seen || strings.Contains(v, subject)
		}
		all := strings.Join(rc.violations, "; ")
		rc.mu.Unlock()
		if seen {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %s failed, but no permissions violation for %q was reported (saw: %s)", rc.nc.Opts.User, what, subject, all)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func roleUser(t *testing.T, st *devstack.Stack, role bus.Role, pool, worker string) config.NATS {
	t.Helper()
	c, err := st.NATSUser(role, pool, worker)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Nobody connects without a user and its password.
func TestNATSRefusesUnauthenticated(t *testing.T) {
	st := devstacktest.Require(t, devstacktest.NATS)
	if nc, err := nats.Connect(st.NATSURL, nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("a connection without credentials was accepted")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("without credentials: %v, want an authorization violation", err)
	}
	worker := roleUser(t, st, bus.RoleWorker, "default", "")
	if nc, err := nats.Connect(st.NATSURL, nats.UserInfo(worker.User, "not-"+worker.Password.Reveal()), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("a wrong password was accepted")
	}
	if _, err := bus.Connect(context.Background(), config.NATS{URL: st.NATSURL, Name: t.Name()}); err == nil {
		t.Fatal("bus.Connect without credentials succeeded")
	}
}

// A worker's user can do its work, and nothing that is another's.
func TestWorkerPermissions(t *testing.T) {
	st := devstacktest.Require(t, devstacktest.NATS)
	admin := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const pool, other = "perm-a", "perm-b"
	for _, p := range []string{pool, other} {
		if _, err := admin.DeclarePool(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	cfg := roleUser(t, st, bus.RoleWorker, pool, "w1")
	cfg.Name = t.Name()

	// What it needs: its pool's consumer (declaring it too), its tasks, its
	// registry key, results, the cancelled bucket.
	w, err := bus.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Await(ctx); err != nil {
		t.Fatalf("worker: wait for the topology: %v", err)
	}
	c, err := w.DeclarePool(ctx, pool)
	if err != nil {
		t.Fatalf("worker: declare its own pool's consumer: %v", err)
	}
	task := &spoolv1.SegmentTask{JobId: "perm", Index: 0, Attempt: 1, Pool: pool}
	if _, err := admin.PublishTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	m, err := bus.FetchOne(ctx, c, 10*time.Second)
	if err != nil {
		t.Fatalf("worker: fetch from its pool: %v", err)
	}
	if err := m.Ack(); err != nil {
		t.Fatalf("worker: ack: %v", err)
	}
	kv, err := w.Workers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	own, _ := bus.WorkerKey(pool, "w1")
	if _, err := kv.Put(ctx, own, []byte("x")); err != nil {
		t.Fatalf("worker: put its own registry key: %v", err)
	}
	if _, err := w.PublishResult(ctx, &spoolv1.SegmentResult{JobId: "perm", Attempt: 1, Phase: spoolv1.Phase_PHASE_DONE}); err != nil {
		t.Fatalf("worker: publish a result: %v", err)
	}
	if _, err := w.Cancelled(ctx); err != nil {
		t.Fatalf("worker: the cancelled bucket: %v", err)
	}

	// What it may not do.
	rc := dialRole(t, cfg)
	spec, _ := proto.Marshal(&spoolv1.JobSpec{Id: "by-a-worker", Prompt: "x"})
	rc.refused(t, "publish a job", bus.SubjectJobSubmit, func(ctx context.Context) error {
		_, err := rc.js.Publish(ctx, bus.SubjectJobSubmit, spec)
		return err
	})
	rc.refused(t, "publish a task", "spool.segments."+pool, func(ctx context.Context) error {
		data, _ := proto.Marshal(task)
		_, err := rc.js.Publish(ctx, "spool.segments."+pool, data)
		return err
	})
	rc.refused(t, "pull from another pool's consumer", "$JS.API.CONSUMER.MSG.NEXT.SPOOL_SEGMENTS.pool-"+other, func(ctx context.Context) error {
		oc, err := rc.js.Consumer(ctx, bus.StreamSegments, "pool-"+other)
		if err != nil {
			return err
		}
		_, err = oc.Next(jetstream.FetchMaxWait(time.Second))
		return err
	})
	rc.refused(t, "delete a stream", "$JS.API.STREAM.DELETE."+bus.StreamSegments, func(ctx context.Context) error {
		return rc.js.DeleteStream(ctx, bus.StreamSegments)
	})
	rc.refused(t, "create a stream", "$JS.API.STREAM.CREATE.ROGUE", func(ctx context.Context) error {
		_, err := rc.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ROGUE", Subjects: []string{"rogue"}})
		return err
	})
	rc.refused(t, "write another worker's registry key", "$KV.spool_workers."+pool+".w2", func(ctx context.Context) error {
		kv, err := rc.js.KeyValue(ctx, bus.BucketWorkers)
		if err != nil {
			return err
		}
		_, err = kv.Put(ctx, pool+".w2", []byte("x"))
		return err
	})
	rc.refused(t, "read everything", ">", func(context.Context) error {
		_, err := rc.nc.SubscribeSync(">")
		if err == nil {
			err = rc.nc.Flush()
		}
		if err == nil {
			err = rc.nc.LastError()
		}
		return err
	})
	for _, s := range []string{bus.StreamSegments, bus.StreamJobs} {
		if _, err := admin.JetStream().Stream(ctx, s); err != nil {
			t.Errorf("stream %s after the refusals: %v", s, err)
		}
	}
	if _, err := admin.JetStream().Stream(ctx, "ROGUE"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream ROGUE: %v, want it never created", err)
	}
}

// The client role submits jobs and does nothing else; the services' roles
// do not do each other's work; only the admin manages streams.
func TestRolePermissions(t *testing.T) {
	st := devstacktest.Require(t, devstacktest.NATS)
	admin := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if _, err := admin.DeclarePool(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	client := dialRole(t, roleUser(t, st, bus.RoleClient, "", ""))
	spec, _ := proto.Marshal(&spoolv1.JobSpec{Id: "by-the-client", Prompt: "a lighthouse"})
	ack, err := client.js.Publish(ctx, bus.SubjectJobSubmit, spec, jetstream.WithMsgID("by-the-client"))
	if err != nil {
		t.Fatalf("client: submit a job: %v", err)
	}
	if ack.Stream != bus.StreamJobs {
		t.Fatalf("client: PubAck from %q", ack.Stream)
	}
	client.refused(t, "publish a task", "spool.segments.default", func(ctx context.Context) error {
		_, err := client.js.Publish(ctx, "spool.segments.default", []byte("x"))
		return err
	})
	client.refused(t, "cancel a job", "spool.control.cancel.x", func(context.Context) error {
		if err := client.nc.Publish("spool.control.cancel.x", nil); err != nil {
			return err
		}
		client.nc.Flush()
		return client.nc.LastError()
	})
	client.refused(t, "follow events", "spool.events.x", func(context.Context) error {
		if _, err := client.nc.SubscribeSync("spool.events.x"); err != nil {
			return err
		}
		client.nc.Flush()
		return client.nc.LastError()
	})
	client.refused(t, "read stream information", "$JS.API.STREAM.INFO."+bus.StreamJobs, func(ctx context.Context) error {
		_, err := client.js.Stream(ctx, bus.StreamJobs)
		return err
	})
	client.refused(t, "read the registry", "$JS.API.STREAM.INFO.KV_"+bus.BucketWorkers, func(ctx context.Context) error {
		_, err := client.js.KeyValue(ctx, bus.BucketWorkers)
		return err
	})

	for _, role := range []bus.Role{bus.RoleGateway, bus.RoleStitcher} {
		rc := dialRole(t, roleUser(t, st, role, "", ""))
		rc.refused(t, "publish a task", "spool.segments.default", func(ctx context.Context) error {
			_, err := rc.js.Publish(ctx, "spool.segments.default", []byte("x"))
			return err
		})
		rc.refused(t, "pull a pool's tasks", "$JS.API.CONSUMER.MSG.NEXT.SPOOL_SEGMENTS.pool-default", func(ctx context.Context) error {
			c, err := rc.js.Consumer(ctx, bus.StreamSegments, "pool-default")
			if err != nil {
				return err
			}
			_, err = c.Next(jetstream.FetchMaxWait(time.Second))
			return err
		})
	}
	gw := dialRole(t, roleUser(t, st, bus.RoleGateway, "", ""))
	gw.refused(t, "consume the dispatcher's submissions", "$JS.API.CONSUMER.MSG.NEXT.SPOOL_JOBS.dispatcher", func(ctx context.Context) error {
		c, err := gw.js.Consumer(ctx, bus.StreamJobs, bus.ConsumerDispatcher)
		if err != nil {
			return err
		}
		_, err = c.Next(jetstream.FetchMaxWait(time.Second))
		return err
	})
	for _, role := range []bus.Role{bus.RoleDispatcher, bus.RoleStitcher, bus.RoleGateway} {
		rc := dialRole(t, roleUser(t, st, role, "", ""))
		rc.refused(t, "delete a stream", "$JS.API.STREAM.DELETE."+bus.StreamJobs, func(ctx context.Context) error {
			return rc.js.DeleteStream(ctx, bus.StreamJobs)
		})
		rc.refused(t, "update a stream", "$JS.API.STREAM.UPDATE."+bus.StreamJobs, func(ctx context.Context) error {
			_, err := rc.js.UpdateStream(ctx, jetstream.StreamConfig{Name: bus.StreamJobs, Subjects: []string{bus.SubjectJobSubmit, "more"}})
			return err
		})
		rc.refused(t, "purge a stream", "$JS.API.STREAM.PURGE."+bus.StreamSegments, func(ctx context.Context) error {
			s, err := rc.js.Stream(ctx, bus.StreamSegments)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		})
	}
	if _, err := admin.JetStream().Stream(ctx, bus.StreamJobs); err != nil {
		t.Fatalf("stream %s after the refusals: %v", bus.StreamJobs, err)
	}
}

// With TLS required, a client that trusts the stack's CA connects with
// its user; one without TLS is refused.
func TestNATSWithTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Options{NATS: true, NATSTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	cfg := roleUser(t, st, bus.RoleGateway, "", "")
	if cfg.TLSCA == "" {
		t.Fatal("no CA file for a TLS stack")
	}
	cfg.Name = t.Name()
	b, err := bus.Connect(ctx, cfg)
	if err != nil {
		t.Fatalf("connect with TLS: %v", err)
	}
	defer b.Close()
	if err := b.Await(ctx); err != nil {
		t.Fatalf("gateway over TLS: %v", err)
	}
	if !b.Conn().TLSRequired() {
		t.Error("the connection does not use TLS")
	}
	if nc, err := nats.Connect(st.NATSURL, nats.UserInfo(cfg.User, cfg.Password.Reveal()), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("a client without the CA connected to a TLS server")
	}
}

// A password from a file (a mounted Secret) authenticates as the password
// itself does; conflicting settings are refused before any dial.
func TestPasswordFileAndConflicts(t *testing.T) {
	st := devstacktest.Require(t, devstacktest.NATS)
	cfg := roleUser(t, st, bus.RoleGateway, "", "")
	file := t.TempDir() + "/password"
	if err := os.WriteFile(file, []byte(cfg.Password.Reveal()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := cfg
	fromFile.Password, fromFile.PasswordFile, fromFile.Name = "", file, t.Name()
	b, err := bus.Connect(context.Background(), fromFile)
	if err != nil {
		t.Fatalf("connect with SPOOL_NATS_PASSWORD_FILE: %v", err)
	}
	b.Close()
	for _, bad := range []config.NATS{
		{URL: cfg.URL, User: cfg.User, Password: cfg.Password, PasswordFile: file},
		{URL: cfg.URL, User: cfg.User, Creds: file},
		{URL: cfg.URL, User: cfg.User, PasswordFile: file + ".missing"},
		{URL: cfg.URL, User: cfg.User, Password: cfg.Password, TLSCert: file},
	} {
		if _, err := bus.Connect(context.Background(), bad); err == nil {
			t.Errorf("connect with %+v: accepted, want an error", bad)
		} else if strings.Contains(err.Error(), cfg.Password.Reveal()) {
			t.Errorf("the error gives the password away: %v", err)
		}
	}
}
