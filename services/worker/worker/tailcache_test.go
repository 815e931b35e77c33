package worker

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestTailCacheKeepsTheNewest(t *testing.T) {
	c := newTailCache(2)
	state := []byte{1, 2, 3}
	c.add("a", state)
	state[0] = 9 // the cache holds its own copy
	c.add("b", []byte{4})
	c.add("c", []byte{5})
	if _, ok := c.get("a"); ok {
		t.Fatal("the oldest entry was not dropped")
	}
	if e, ok := c.get("b"); !ok || e.state[0] != 4 {
		t.Fatalf("b = %v, %v", e, ok)
	}
	c2 := newTailCache(2)
	c2.add("a", state)
	if e, _ := c2.get("a"); e.state[0] != 9 {
		t.Fatalf("a = %v", e.state)
	}
	off := newTailCache(0)
	if e := off.add("x", state); e == nil || e.state[0] != 9 {
		t.Fatalf("a zero-size cache returned %v", e)
	}
	if _, ok := off.get("x"); ok {
		t.Fatal("a zero-size cache kept an entry")
	}
}

func TestTailEntryWaitsForItsUpload(t *testing.T) {
	e := newTailCache(1).add("k", []byte{1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := e.wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait before the upload ended: %v", err)
	}
	refused := errors.New("refused")
	go e.done(refused, time.Millisecond)
	if err := e.wait(context.Background()); !errors.Is(err, refused) || e.took != time.Millisecond {
		t.Fatalf("wait: %v, took %v", err, e.took)
	}
}
