package devstacktest_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

func TestRequireAddsPartsToOneStack(t *testing.T) {
	first := devstacktest.Require(t, devstacktest.NATS)
	if first.NATSURL == "" || first.PGDSN != "" {
		t.Fatalf("after NATS: NATSURL %q, PGDSN %q; want only NATS", first.NATSURL, first.PGDSN)
	}
	t.Run("concurrent", func(t *testing.T) {
		for i := range 4 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				if s := devstacktest.Require(t, devstacktest.NATS, devstacktest.Postgres); s != first {
					t.Errorf("Require returned another stack")
				}
			})
		}
	})
	if first.PGDSN == "" {
		t.Errorf("PGDSN empty after Require(Postgres)")
	}
	if got := first.Env(); len(got) != 4 {
		t.Errorf("Env() = %q, want the 4 variables of NATS (URL, user, password) and Postgres", got)
	}
}
