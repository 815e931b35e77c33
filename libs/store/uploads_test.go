package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/store"
)

var uploadSeq atomic.Int64

// newUpload records a pending upload of tenant with an id of its own (the
// shared database outlives one run).
func newUpload(t *testing.T, s *store.Store, tenant string) store.Upload {
	t.Helper()
	id := fmt.Sprintf("up-t%d%d", time.Now().UnixNano(), uploadSeq.Add(1))
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	u := store.Upload{ID: id, Tenant: tenant, ObjectKey: "uploads/" + tenant + "/" + id + "/source", ContentType: "video/mp4",
		MaxBytes: 1 << 20, ExpiresAt: &exp}
	if err := s.CreateUpload(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func videoProbe(sha string) store.UploadProbe {
	return store.UploadProbe{Kind: store.UploadVideo, Codec: "h264", Width: 320, Height: 240, FPS: 24, Frames: 48, DurationS: 2,
		SampleRate: 48000, Channels: 2, SHA256: sha, Bytes: 12345, Probe: []byte(`{"kind":"video"}`)}
}

func TestUploadLifeCycle(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	tenant := fmt.Sprintf("life%d", time.Now().UnixNano())
	u := newUpload(t, s, tenant)
	if err := s.CreateUpload(ctx, u); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("same id again: %v", err)
	}
	got, err := s.GetUpload(ctx, tenant, u.ID)
	if err != nil || got.State != store.UploadPending || got.Kind != "" || got.MaxBytes != 1<<20 || got.ExpiresAt == nil ||
		!got.ExpiresAt.Equal(*u.ExpiresAt) || got.ContentType != "video/mp4" || got.Probe != nil {
		t.Fatalf("pending upload %+v %v", got, err)
	}
	if _, err := s.GetUpload(ctx, "other", u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another tenant's upload: %v", err)
	}
	if _, _, err := s.MarkUploadReady(ctx, "other", u.ID, videoProbe(digest(u.ID))); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ready as another tenant: %v", err)
	}
	if _, _, err := s.MarkUploadReady(ctx, tenant, u.ID, store.UploadProbe{Kind: "video"}); err == nil {
		t.Fatal("ready without a digest")
	}
	ready, created, err := s.MarkUploadReady(ctx, tenant, u.ID, videoProbe(digest(u.ID)))
	if err != nil || !created || ready.ID != u.ID || ready.State != store.UploadReady || ready.Kind != "video" || ready.Codec != "h264" ||
		ready.Width != 320 || ready.Height != 240 || ready.FPS != 24 || ready.Frames != 48 || ready.DurationS != 2 ||
		ready.SampleRate != 48000 || ready.Channels != 2 || ready.Bytes != 12345 || ready.SHA256 != digest(u.ID) ||
		ready.CompletedAt == nil || ready.ExpiresAt != nil || string(ready.Probe) != `{"kind": "video"}` {
		t.Fatalf("ready: %+v created %v %v", ready, created, err)
	}
	// Completed again (a retried request): the same upload, not created.
	again, created, err := s.MarkUploadReady(ctx, tenant, u.ID, videoProbe(digest(u.ID)))
	if err != nil || created || again.ID != u.ID {
		t.Fatalf("again: %+v %v %v", again, created, err)
	}
	// A ready upload is lineage: it cannot be deleted as a refused one.
	if err := s.DeleteUpload(ctx, tenant, u.ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete a ready upload: %v", err)
	}
	before := ready.LastUsedAt
	if err := s.TouchUpload(ctx, tenant, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchUpload(ctx, "other", u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("touch another tenant's: %v", err)
	}
	if got, _ := s.GetUpload(ctx, tenant, u.ID); !got.LastUsedAt.After(before) {
		t.Fatalf("last used %v, before %v", got.LastUsedAt, before)
	}
	// A refused upload's pending row goes; deleting it again is fine.
	p := newUpload(t, s, tenant)
	if err := s.DeleteUpload(ctx, tenant, p.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUpload(ctx, tenant, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUpload(ctx, tenant, p.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
	if _, _, err := s.MarkUploadReady(ctx, tenant, p.ID, videoProbe(digest(p.ID))); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ready after delete: %v", err)
	}
}

func TestUploadChecksRejectBogusValues(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	for name, u := range map[string]store.Upload{
		"id":     {ID: "x-1", Tenant: "a", ObjectKey: "k"},
		"tenant": {ID: "up-1bogus", Tenant: "A/b", ObjectKey: "k"},
	} {
		if err := s.CreateUpload(ctx, u); err == nil {
			t.Errorf("%s: bogus value accepted", name)
		}
	}
	u := newUpload(t, s, "bogus")
	for name, p := range map[string]store.UploadProbe{
		"kind":   {Kind: "hologram", SHA256: digest("a"), Bytes: 1},
		"sha256": {Kind: "image", SHA256: "xyz", Bytes: 1},
		"width":  {Kind: "image", SHA256: digest("b"), Bytes: 1, Width: -3},
	} {
		if _, _, err := s.MarkUploadReady(ctx, "bogus", u.ID, p); err == nil {
			t.Errorf("%s: bogus probe accepted", name)
		}
	}
}

// TestUploadDedupe: the same bytes of a tenant are one upload, even when
// eight uploads of them are made ready at once; another tenant's bytes are
// its own.
func TestUploadDedupe(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	tenant := fmt.Sprintf("dedupe%d", time.Now().UnixNano())
	sha := digest(tenant)
	ups := make([]store.Upload, 8)
	for i := range ups {
		ups[i] = newUpload(t, s, tenant)
	}
	var wg sync.WaitGroup
	got := make([]store.Upload, len(ups))
	made := make([]bool, len(ups))
	for i, u := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if got[i], made[i], err = s.MarkUploadReady(ctx, tenant, u.ID, videoProbe(sha)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	winner := ""
	for i := range ups {
		if made[i] {
			if winner != "" {
				t.Fatalf("both %s and %s made ready", winner, ups[i].ID)
			}
			winner = ups[i].ID
		}
	}
	if winner == "" {
		t.Fatal("none made ready")
	}
	for i, u := range ups {
		if got[i].ID != winner || got[i].State != store.UploadReady {
			t.Fatalf("upload %d: %+v, want %s", i, got[i], winner)
		}
		// A presigned duplicate (these announce a size) stays pending,
		// naming the upload it is the same as, until its URL lapses.
		if d, err := s.GetUpload(ctx, tenant, u.ID); u.ID != winner && (err != nil || d.State != store.UploadPending || d.SameAs != winner) {
			t.Fatalf("the duplicate %s: %+v %v, want it pending, the same as %s", u.ID, d, err, winner)
		}
	}
	if u, err := s.FindReadyUpload(ctx, tenant, sha); err != nil || u.ID != winner {
		t.Fatalf("find by sha256: %+v %v", u, err)
	}
	if _, err := s.FindReadyUpload(ctx, tenant+"-b", sha); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("find another tenant's: %v", err)
	}
	list, _, err := s.ListUploads(ctx, store.ListUploadsParams{Tenant: tenant})
	if err != nil || len(list) != 1 || list[0].ID != winner {
		t.Fatalf("list %+v %v", list, err)
	}
	other := tenant + "-b"
	o := newUpload(t, s, other)
	if u, created, err := s.MarkUploadReady(ctx, other, o.ID, videoProbe(sha)); err != nil || !created || u.ID != o.ID {
		t.Fatalf("another tenant's same bytes: %+v %v %v", u, created, err)
	}
}

func TestListUploadsPages(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	tenant := fmt.Sprintf("pages%d", time.Now().UnixNano())
	var ids []string
	for range 7 {
		ids = append(ids, newUpload(t, s, tenant).ID)
	}
	if _, _, err := s.MarkUploadReady(ctx, tenant, ids[3], videoProbe(digest(ids[3]))); err != nil {
		t.Fatal(err)
	}
	var seen []string
	var after *store.Cursor
	for pages := 0; ; pages++ {
		page, next, err := s.ListUploads(ctx, store.ListUploadsParams{Tenant: tenant, Limit: 3, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page {
			seen = append(seen, u.ID)
		}
		if next == nil {
			if pages != 2 {
				t.Fatalf("%d pages", pages+1)
			}
			break
		}
		after = next
	}
	if len(seen) != 7 {
		t.Fatalf("seen %v", seen)
	}
	for i := range seen { // newest first
		if seen[i] != ids[len(ids)-1-i] {
			t.Fatalf("order %v, created %v", seen, ids)
		}
	}
	ready, _, err := s.ListUploads(ctx, store.ListUploadsParams{Tenant: tenant, State: store.UploadReady})
	if err != nil || len(ready) != 1 || ready[0].ID != ids[3] {
		t.Fatalf("ready only: %+v %v", ready, err)
	}
	if _, _, err := s.ListUploads(ctx, store.ListUploadsParams{}); err == nil {
		t.Fatal("a list without a tenant")
	}
	if _, _, err := s.ListUploads(ctx, store.ListUploadsParams{Tenant: tenant, Limit: 5000}); err == nil {
		t.Fatal("limit 5000 accepted")
	}
}

// TestUploadRetentionClaims: an upload a janitor has claimed is neither
// made ready nor reused for the same bytes (the caller tries again once it
// is gone); reusing one marks it used.
func TestUploadRetentionClaims(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	tenant := fmt.Sprintf("claims%d", time.Now().UnixNano())
	claim := func(id string) {
		t.Helper()
		if err := s.ExecForTest(ctx, `UPDATE uploads SET purge_claimed_until = now() + interval '1 hour' WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
	}
	lapsed := newUpload(t, s, tenant)
	claim(lapsed.ID)
	if _, _, err := s.MarkUploadReady(ctx, tenant, lapsed.ID, videoProbe(digest(lapsed.ID))); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("ready once claimed: %v", err)
	}
	first := newUpload(t, s, tenant)
	sha := digest(first.ID)
	ready, _, err := s.MarkUploadReady(ctx, tenant, first.ID, videoProbe(sha))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	reused, err := s.FindReadyUpload(ctx, tenant, sha)
	if err != nil || reused.ID != first.ID || !reused.LastUsedAt.After(ready.LastUsedAt) {
		t.Fatalf("reuse: %+v %v (last used before %v)", reused, err, ready.LastUsedAt)
	}
	claim(first.ID)
	if _, err := s.FindReadyUpload(ctx, tenant, sha); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reuse of a claimed upload: %v", err)
	}
	second := newUpload(t, s, tenant)
	if _, _, err := s.MarkUploadReady(ctx, tenant, second.ID, videoProbe(sha)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the same bytes as a claimed upload: %v", err)
	}
	if got, err := s.GetUpload(ctx, tenant, second.ID); err != nil || got.State != store.UploadPending {
		t.Fatalf("the second upload after the conflict: %+v %v", got, err)
	}
}
