package service_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/service"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

// A service started while Postgres and MinIO are down waits for them and
// starts once they are back, rather than exiting; one whose password NATS
// refuses fails at once.
func TestStartWaitsForDependenciesAway(t *testing.T) {
	st := devstacktest.Private(t, devstacktest.NATS, devstacktest.Postgres, devstacktest.MinIO)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, part := range []string{devstack.PartPostgres, devstack.PartMinIO} {
		if err := st.Kill(part); err != nil {
			t.Fatal(err)
		}
	}
	back := make(chan error, 1)
	go func() {
		time.Sleep(3 * time.Second) // away for a while: Start must wait, not fail
		back <- errors.Join(st.Restart(ctx, devstack.PartPostgres), st.Restart(ctx, devstack.PartMinIO))
	}()
	nc, pg, s3 := st.NATSConfig(), st.PostgresConfig(), st.S3Config()
	begin := time.Now()
	p, err := service.Start(ctx, "startup-test", &config.Service{LogLevel: "error"}, service.Parts{NATS: &nc, Postgres: &pg, S3: &s3})
	if err != nil {
		t.Fatalf("Start with Postgres and MinIO away for 3 s: %v", err)
	}
	defer p.Close()
	if err := <-back; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took < 3*time.Second {
		t.Fatalf("Start returned after %v, before the dependencies were back", took)
	}
	if err := p.Store.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	bad, err := st.NATSUser(bus.RoleGateway, "", "")
	if err != nil {
		t.Fatal(err)
	}
	bad.Password = "not-the-password"
	begin = time.Now()
	if _, err := service.Start(ctx, "startup-test", &config.Service{LogLevel: "error"}, service.Parts{NATS: &bad}); err == nil {
		t.Fatal("Start with a wrong NATS password succeeded")
	} else if service.Away(err) || time.Since(begin) > 10*time.Second {
		t.Fatalf("a refused password was taken for a server away (%v after %v)", err, time.Since(begin))
	}
}
