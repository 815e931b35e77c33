package dispatcher_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
)

// TestRetentionPolicy: the per-tenant overrides parse strictly, and every
// error names the tenant and the field at fault.
func TestRetentionPolicy(t *testing.T) {
	base := dispatcher.Retention{Jobs: 168 * time.Hour, Uploads: 72 * time.Hour, Interval: time.Minute, Lease: time.Minute, Batch: 10}
	r := base
	r.Tenants = " acme=jobs:720h,uploads:24h ; beta=jobs:1h;gamma=uploads:0"
	p, err := r.Policy()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]time.Duration{"acme": {720 * time.Hour, 24 * time.Hour}, "beta": {time.Hour, 72 * time.Hour},
		"gamma": {168 * time.Hour, 0}}
	for tenant, w := range want {
		if got := [2]time.Duration{p.Jobs.Tenants[tenant], p.Uploads.Tenants[tenant]}; got != w {
			t.Errorf("%s: %v, want %v", tenant, got, w)
		}
	}
	if p.Jobs.Default != 168*time.Hour || p.Uploads.Default != 72*time.Hour || len(p.Jobs.Tenants) != 3 {
		t.Fatalf("policy %+v", p)
	}
	for _, c := range []struct{ tenants, want string }{
		{"acme", `"acme": want tenant=jobs`},
		{"Acme=jobs:1h", `tenant "Acme": want 1..64`},
		{"acme=jobs:1h;acme=uploads:1h", `tenant "acme" is given twice`},
		{"acme=files:1h", `tenant "acme": unknown field "files"`},
		{"acme=jobs:1h,jobs:2h", `tenant "acme": jobs is given twice`},
		{"acme=uploads:soon", `tenant "acme": uploads "soon": want a duration`},
		{"acme=jobs:-1h", `tenant "acme": jobs "-1h"`},
		{"acme=jobs", `tenant "acme": "jobs": want jobs:<duration>`},
		{"acme=jobs:1h;;beta=jobs:1h", "entry 2 is empty"},
	} {
		r := base
		r.Tenants = c.tenants
		if _, err := r.Policy(); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "SPOOL_RETENTION_TENANTS") {
			t.Errorf("%q: %v; want an error with %q", c.tenants, err, c.want)
		}
	}
	r = base
	r.Jobs = -time.Hour
	if _, err := r.Policy(); err == nil || !strings.Contains(err.Error(), "SPOOL_RETENTION_JOBS") {
		t.Errorf("a negative default: %v", err)
	}
}

// janitorEnv is a test's tenant on the real Postgres and MinIO.
type janitorEnv struct {
	t      *testing.T
	store  *store.Store
	blob   *blob.Store
	db     *pgx.Conn
	tenant string
	seq    int
}

func newJanitorEnv(t *testing.T) *janitorEnv {
	c := devstacktest.Connect(t, 0)
	db, err := pgx.Connect(context.Background(), c.Stack.PGDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	// The database outlives one run of the tests: every run has its tenant.
	tenant := fmt.Sprintf("jan-%d", time.Now().UnixNano()%1e12)
	return &janitorEnv{t: t, store: c.Store, blob: c.Blob, db: db, tenant: tenant}
}

// janitor keeps objects for ever, but those of the env's tenants listed.
func (e *janitorEnv) janitor(tenants string) *dispatcher.Janitor {
	j, err := dispatcher.NewJanitor(dispatcher.Retention{Tenants: tenants, Interval: time.Hour, Lease: time.Minute, Batch: 4},
		e.store, e.blob, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

func (e *janitorEnv) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatal(err)
	}
}

// job records a job of tenant in state, with objects under its prefix: a
// final MP4 (and a multipart upload left open on it), a playlist and a
// segment's video, and their artifacts.
func (e *janitorEnv) job(tenant string, state store.JobState) string {
	e.t.Helper()
	ctx := context.Background()
	e.seq++
	id := fmt.Sprintf("%s-%d", e.tenant, e.seq)
	nj := store.NewJob{Job: store.Job{ID: id, Tenant: tenant, Priority: 5, Pool: "p", Model: "ref", Mode: "chain", State: store.JobQueued,
		Spec: []byte(`{"prompt":"x"}`), TotalFrames: 84, FPS: 24, Width: 96, Height: 64, SegmentsTotal: 1},
		Segments: []store.Segment{{Index: 0, Frames: 84, Prompt: "x", Pool: "p", State: store.SegPending}}}
	if _, err := e.store.CreateJob(ctx, nj); err != nil {
		e.t.Fatal(err)
	}
	if state != store.JobQueued {
		if ok, err := e.store.SetJobState(ctx, id, []store.JobState{store.JobQueued}, state); !ok || err != nil {
			e.t.Fatalf("job %s to %s: %v %v", id, state, ok, err)
		}
	}
	final, _ := blob.Final(id)
	playlist, _ := blob.HLSPlaylist(id)
	video, _ := blob.SegmentVideo(id, 0, 1, "m4s")
	for _, k := range []blob.Key{final, playlist, video} {
		e.put(k)
	}
	if _, err := e.blob.NewMultipart(ctx, final, blob.PutOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.RecordArtifact(ctx, store.Artifact{Key: string(playlist), JobID: id, Kind: store.KindHLS}); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *janitorEnv) put(k blob.Key) {
	e.t.Helper()
	if _, err := e.blob.Put(context.Background(), k, bytes.NewReader([]byte("bytes")), 5, blob.PutOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// objects counts the objects under prefix.
func (e *janitorEnv) objects(prefix blob.Key) int {
	e.t.Helper()
	objs, err := e.blob.List(context.Background(), prefix)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(objs)
}

func (e *janitorEnv) jobObjects(id string) int {
	p, _ := blob.JobPrefix(id)
	return e.objects(p)
}

// deleted reports whether the job is marked deleted, and checks that it
// kept its state and lineage.
func (e *janitorEnv) deleted(id string, state store.JobState) bool {
	e.t.Helper()
	ctx := context.Background()
	j, err := e.store.GetJob(ctx, id)
	if err != nil || j.State != state {
		e.t.Fatalf("job %s: %v (state %s, want %s)", id, err, j.State, state)
	}
	segs, err := e.store.ListSegments(ctx, id)
	arts, aerr := e.store.ListArtifacts(ctx, id)
	if err != nil || aerr != nil || len(segs) != 1 || len(arts) != 1 {
		e.t.Fatalf("job %s's lineage: %d segments, %d artifacts (%v, %v)", id, len(segs), len(arts), err, aerr)
	}
	return j.DeletedAt != nil
}

// TestJanitorDeletesExpiredJobs: the objects of a finished job past its
// tenant's retention all go, and it is marked deleted with its state and
// lineage kept; a running job's, and those of a tenant with a longer
// retention, stay.
func TestJanitorDeletesExpiredJobs(t *testing.T) {
	e := newJanitorEnv(t)
	long := e.tenant + "-long"
	done := e.job(e.tenant, store.JobSucceeded)
	failed := e.job(e.tenant, store.JobFailed)
	running := e.job(e.tenant, store.JobRunning)
	kept := e.job(long, store.JobSucceeded)
	time.Sleep(10 * time.Millisecond)
	j := e.janitor(e.tenant + "=jobs:1ms;" + long + "=jobs:1h")
	sw, err := j.Sweep(context.Background())
	if err != nil || sw.Jobs != 2 || sw.Objects != 6 || sw.Failed != 0 {
		t.Fatalf("sweep %+v, %v; want 2 jobs, 6 objects", sw, err)
	}
	for _, id := range []string{done, failed} {
		if n := e.jobObjects(id); n != 0 {
			t.Errorf("job %s: %d objects left", id, n)
		}
	}
	if !e.deleted(done, store.JobSucceeded) || !e.deleted(failed, store.JobFailed) {
		t.Fatal("an expired job is not marked deleted")
	}
	if e.deleted(running, store.JobRunning) || e.jobObjects(running) != 3 || e.deleted(kept, store.JobSucceeded) || e.jobObjects(kept) != 3 {
		t.Fatal("the janitor touched a running job, or one of a tenant with a longer retention")
	}
	if sw, err := j.Sweep(context.Background()); err != nil || sw.Jobs != 0 {
		t.Fatalf("a second sweep: %+v, %v", sw, err)
	}
}

// TestJanitorResumesAfterACrash: a janitor that claimed a job and died
// halfway through its objects leaves the job to another, which waits for
// the claim to lapse, then deletes what is left and marks the job.
func TestJanitorResumesAfterACrash(t *testing.T) {
	e := newJanitorEnv(t)
	ctx := context.Background()
	id := e.job(e.tenant, store.JobSucceeded)
	time.Sleep(10 * time.Millisecond)
	ttl := store.TTLs{Tenants: map[string]time.Duration{e.tenant: time.Millisecond}}
	// The dead janitor's lease outlasts the other's first sweep even on a
	// loaded machine; the other then waits it out.
	claimed, err := e.store.ClaimExpiredJobs(ctx, "dead-janitor", ttl, 3*time.Second, 10)
	if err != nil || len(claimed) != 1 || claimed[0].ID != id {
		t.Fatalf("the first janitor's claim: %v, %v", claimed, err)
	}
	final, _ := blob.Final(id)
	if err := e.blob.Delete(ctx, final); err != nil { // it got this far
		t.Fatal(err)
	}
	j := e.janitor(e.tenant + "=jobs:1ms")
	if sw, err := j.Sweep(ctx); err != nil || sw.Jobs != 0 || e.jobObjects(id) != 2 {
		t.Fatalf("another janitor took a claimed job: %+v, %v", sw, err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		sw, err := j.Sweep(ctx)
		if err != nil || sw.Jobs > 1 || (sw.Jobs == 1 && sw.Objects != 2) {
			t.Fatalf("resumed sweep %+v, %v; want the job and its 2 objects left", sw, err)
		}
		if sw.Jobs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dead janitor's claim never lapsed")
		}
	}
	if e.jobObjects(id) != 0 || !e.deleted(id, store.JobSucceeded) {
		t.Fatal("the resumed sweep did not finish the job")
	}
}

// TestJanitorsShareTheWork: two janitors sweeping at once delete each
// expired job once between them.
func TestJanitorsShareTheWork(t *testing.T) {
	e := newJanitorEnv(t)
	var ids []string
	for range 24 {
		ids = append(ids, e.job(e.tenant, store.JobSucceeded))
	}
	time.Sleep(10 * time.Millisecond)
	a, b := e.janitor(e.tenant+"=jobs:1ms"), e.janitor(e.tenant+"=jobs:1ms")
	var wg sync.WaitGroup
	sweeps := make([]dispatcher.Swept, 2)
	for i, j := range []*dispatcher.Janitor{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sw, err := j.Sweep(context.Background())
			if err != nil {
				t.Error(err)
			}
			sweeps[i] = sw
		}()
	}
	wg.Wait()
	if sweeps[0].Jobs+sweeps[1].Jobs != len(ids) || sweeps[0].Objects+sweeps[1].Objects != 3*len(ids) {
		t.Fatalf("sweeps %+v: want %d jobs and %d objects between them, each once", sweeps, len(ids), 3*len(ids))
	}
	for _, id := range ids {
		if e.jobObjects(id) != 0 || !e.deleted(id, store.JobSucceeded) {
			t.Fatalf("job %s was not deleted", id)
		}
	}
}

// TestJanitorKeepsUploadsInUse: an upload unused past its tenant's
// retention goes, and a pending one past its expiry; one that a running
// job refers to stays whatever its age, and so do those of a tenant whose
// retention has not passed.
func TestJanitorKeepsUploadsInUse(t *testing.T) {
	e := newJanitorEnv(t)
	other := e.tenant + "-b"
	upload := func(tenant, name, state string) (string, blob.Key) {
		t.Helper()
		id := "up-" + strings.ReplaceAll(tenant, "-", "") + name
		if state == "pending" {
			e.exec(`INSERT INTO uploads (id, tenant, state, object_key, expires_at) VALUES ($1, $2, 'pending', 'k', now() - interval '1 second')`,
				id, tenant)
		} else {
			e.exec(`INSERT INTO uploads (id, tenant, state, object_key, kind, sha256, bytes, completed_at)
				VALUES ($1, $2, 'ready', 'k', 'image', md5($1) || md5($1), 5, now())`, id, tenant)
		}
		src, _ := blob.UploadSource(tenant, id)
		derived, _ := blob.UploadDerived(tenant, id, "96x64-crop", "image.rgb")
		e.put(src)
		e.put(derived)
		prefix, _ := blob.UploadPrefix(tenant, id)
		return id, prefix
	}
	unused, unusedP := upload(e.tenant, "unused", "ready")
	inUse, inUseP := upload(e.tenant, "inuse", "ready")
	lapsed, lapsedP := upload(e.tenant, "lapsed", "pending")
	young, youngP := upload(other, "young", "ready")
	running := e.job(e.tenant, store.JobRunning)
	e.exec(`INSERT INTO job_inputs (job_id, role, upload_id) VALUES ($1, 'image', $2)`, running, inUse)
	time.Sleep(10 * time.Millisecond)

	j := e.janitor(e.tenant + "=uploads:1ms;" + other + "=uploads:1h")
	sw, err := j.Sweep(context.Background())
	if err != nil || sw.Uploads != 2 || sw.Objects != 4 {
		t.Fatalf("sweep %+v, %v; want 2 uploads and their 4 objects", sw, err)
	}
	for _, c := range []struct {
		id      string
		prefix  blob.Key
		deleted bool
	}{{unused, unusedP, true}, {lapsed, lapsedP, true}, {inUse, inUseP, false}, {young, youngP, false}} {
		var deleted bool
		if err := e.db.QueryRow(context.Background(), `SELECT deleted_at IS NOT NULL FROM uploads WHERE id = $1`, c.id).Scan(&deleted); err != nil {
			t.Fatal(err)
		}
		if n := e.objects(c.prefix); deleted != c.deleted || (n == 0) != c.deleted {
			t.Errorf("upload %s: deleted %v with %d objects; want deleted %v", c.id, deleted, n, c.deleted)
		}
	}
}
