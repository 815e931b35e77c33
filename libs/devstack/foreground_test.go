package devstack_test

import (
	"bufio"
	"context"
	"io"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/devstack"
)

// Foreground (make devstack) prints the admin's variables and each
// service's own user, with which that service connects; it stops cleanly
// when its context ends.
func TestForegroundPrintsWorkingUsers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- devstack.Foreground(ctx, devstack.Options{BuildMinIO: true}, 0, w, io.Discard)
		w.Close()
	}()
	url := regexp.MustCompile(`^export SPOOL_NATS_URL='([^']+)'$`)
	dispatcher := regexp.MustCompile(`^#   SPOOL_NATS_USER='dispatcher' SPOOL_NATS_PASSWORD='([^']+)' SPOOL_S3_ACCESS_KEY='[^']+' SPOOL_S3_SECRET_KEY='[^']+' bin/spool-dispatcher$`)
	var natsURL, password string
	sc := bufio.NewScanner(r)
	deadline := time.AfterFunc(3*time.Minute, func() { r.CloseWithError(context.DeadlineExceeded) })
	defer deadline.Stop()
	for sc.Scan() && (natsURL == "" || password == "") {
		if m := url.FindStringSubmatch(sc.Text()); m != nil {
			natsURL = m[1]
		}
		if m := dispatcher.FindStringSubmatch(sc.Text()); m != nil {
			password = m[1]
		}
	}
	if natsURL == "" || password == "" {
		t.Fatalf("no NATS URL or dispatcher line printed (%v)", sc.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, r) }()
	nc, err := nats.Connect(natsURL, nats.UserInfo("dispatcher", password), nats.NoReconnect())
	if err != nil {
		t.Fatalf("the printed dispatcher user: %v", err)
	}
	nc.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Foreground after its context ended: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Foreground did not stop within a minute of its context ending")
	}
}
