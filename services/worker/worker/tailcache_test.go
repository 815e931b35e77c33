package worker

import "testing"

func TestTailCacheKeepsTheNewest(t *testing.T) {
	c := newTailCache(2)
	state := []byte{1, 2, 3}
	c.put("a", state)
	state[0] = 9 // the cache holds its own copy
	c.put("b", []byte{4})
	c.put("c", []byte{5})
	if _, ok := c.get("a"); ok {
		t.Fatal("the oldest entry was not dropped")
	}
	if b, ok := c.get("b"); !ok || b[0] != 4 {
		t.Fatalf("b = %v, %v", b, ok)
	}
	c2 := newTailCache(2)
	c2.put("a", state)
	if b, _ := c2.get("a"); b[0] != 9 {
		t.Fatalf("a = %v", b)
	}
	if off := newTailCache(0); func() bool { off.put("x", state); _, ok := off.get("x"); return ok }() {
		t.Fatal("a zero-size cache kept an entry")
	}
}
