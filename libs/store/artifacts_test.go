package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/store"
)

// commitAll creates nj and commits attempt 1 of each of its segments.
func commitAll(t *testing.T, s *store.Store, nj store.NewJob, segments int) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	var ds []store.SegmentDone
	for i := range segments {
		ds = append(ds, store.SegmentDone{JobID: nj.Job.ID, Index: i, Attempt: 1, SHA256: strings.Repeat("c", 64), Bytes: 10, Frames: 84,
			VideoKey: fmt.Sprintf("jobs/%s/seg/%d/a1/video.m4s", nj.Job.ID, i)})
	}
	if _, err := s.CommitDoneBatch(ctx, ds, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRecordArtifact(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	nj := newJob(t, 1)
	commitAll(t, s, nj, 1)
	id := nj.Job.ID
	sha := strings.Repeat("d", 64)
	tests := []struct {
		name    string
		a       store.Artifact
		created bool
		wantErr bool
	}{
		{"playlist", store.Artifact{Key: "jobs/" + id + "/hls/index.m3u8", JobID: id, Kind: store.KindHLS}, true, false},
		{"playlist again", store.Artifact{Key: "jobs/" + id + "/hls/index.m3u8", JobID: id, Kind: store.KindHLS}, false, false},
		{"fragment", store.Artifact{Key: "jobs/" + id + "/hls/0.m4s", JobID: id, Kind: store.KindHLS, Index: new(0), Attempt: 1,
			SHA256: sha, Bytes: 10, Frames: 84}, true, false},
		{"attempt that never ran", store.Artifact{Key: "jobs/" + id + "/seg/0/a7/video.m4s", JobID: id, Kind: store.KindSegment,
			Index: new(0), Attempt: 7}, false, true},
		{"tail without attempt", store.Artifact{Key: "jobs/" + id + "/seg/0/a1/tail.bin", JobID: id, Kind: store.KindTail,
			Index: new(0)}, false, true},
		{"final without sha256", store.Artifact{Key: "jobs/" + id + "/final.mp4", JobID: id, Kind: store.KindFinal}, false, true},
		{"outside the job's prefix", store.Artifact{Key: "jobs/other/x", JobID: id, Kind: store.KindHLS}, false, true},
		{"bogus kind", store.Artifact{Key: "jobs/" + id + "/x", JobID: id, Kind: "thumbnail"}, false, true},
		{"bad sha256", store.Artifact{Key: "jobs/" + id + "/y", JobID: id, Kind: store.KindHLS, SHA256: "xyz"}, false, true},
	}
	for _, tt := range tests {
		created, err := s.RecordArtifact(ctx, tt.a)
		if created != tt.created || (err != nil) != tt.wantErr {
			t.Errorf("%s: created %v, err %v; want %v, error %v", tt.name, created, err, tt.created, tt.wantErr)
		}
	}
	got, err := s.ListArtifacts(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, a := range got {
		keys = append(keys, fmt.Sprintf("%s:%s", a.Kind, strings.TrimPrefix(a.Key, "jobs/"+id+"/")))
	}
	if want := "[hls:hls/index.m3u8 hls:hls/0.m4s segment:seg/0/a1/video.m4s]"; fmt.Sprint(keys) != want {
		t.Fatalf("artifacts %v, want %s", keys, want)
	}
	if a := got[1]; a.Index == nil || *a.Index != 0 || a.Attempt != 1 || a.SHA256 != sha || a.Frames != 84 || a.CreatedAt.IsZero() {
		t.Fatalf("fragment %+v", a)
	}
	if got[0].Index != nil {
		t.Fatalf("playlist index %v, want nil", *got[0].Index)
	}
}

func TestFinishJob(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	final := func(id string) store.Final {
		return store.Final{JobID: id, Key: "jobs/" + id + "/final.mp4", SHA256: strings.Repeat("f", 64), Bytes: 1 << 20, Frames: 168,
			Outbox: []store.OutboxMsg{{MsgID: id + ".succeeded", Subject: "spool.events." + id, Payload: []byte{1}}}}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the job id
		want  error                     // nil: finishes
	}{
		{"all segments committed", func(t *testing.T) string {
			nj := newJob(t, 2)
			commitAll(t, s, nj, 2)
			return nj.Job.ID
		}, nil},
		{"a segment left", func(t *testing.T) string {
			nj := newJob(t, 2)
			commitAll(t, s, nj, 1)
			return nj.Job.ID
		}, store.ErrConflict},
		{"bounded and cancelled", func(t *testing.T) string {
			nj := newJob(t, 1)
			commitAll(t, s, nj, 1)
			if ok, err := s.CancelJob(ctx, nj.Job.ID, "test"); !ok || err != nil {
				t.Fatal(ok, err)
			}
			return nj.Job.ID
		}, store.ErrConflict},
		{"live and stopped", func(t *testing.T) string {
			nj := newJob(t, 2)
			nj.Job.Live, nj.Job.TotalFrames, nj.Job.SegmentsTotal = true, 0, 0
			commitAll(t, s, nj, 1)
			if ok, err := s.CancelJob(ctx, nj.Job.ID, "stopped"); !ok || err != nil {
				t.Fatal(ok, err)
			}
			return nj.Job.ID
		}, nil},
		{"rejected", func(t *testing.T) string {
			j := newJob(t, 0).Job
			j.TotalFrames, j.SegmentsTotal, j.ErrorCode = 1, 0, "invalid_argument"
			if _, err := s.RejectJob(ctx, j); err != nil {
				t.Fatal(err)
			}
			return j.ID
		}, store.ErrConflict},
		{"unknown", func(t *testing.T) string { return "no-such-job" }, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.setup(t)
			before, _ := s.UnsentOutbox(ctx)
			finished, err := s.FinishJob(ctx, final(id))
			after, _ := s.UnsentOutbox(ctx)
			if tt.want != nil {
				if finished || !errors.Is(err, tt.want) || after != before {
					t.Fatalf("finished %v, err %v, outbox %d→%d; want %v and no row", finished, err, before, after, tt.want)
				}
				return
			}
			if !finished || err != nil || after != before+1 {
				t.Fatalf("finished %v, err %v, outbox %d→%d", finished, err, before, after)
			}
			j, err := s.GetJob(ctx, id)
			if err != nil || j.State != store.JobSucceeded || j.FinalKey != final(id).Key || j.FinalFrames != 168 ||
				j.FinalBytes != 1<<20 || j.Progress != 1 || j.FinishedAt == nil || j.ErrorCode != "" {
				t.Fatalf("job %+v %v", j, err)
			}
			// Delivered again: nothing changes; another output conflicts.
			if again, err := s.FinishJob(ctx, final(id)); again || err != nil {
				t.Fatalf("again: %v %v", again, err)
			}
			other := final(id)
			other.Key = "jobs/" + id + "/other.mp4"
			if again, err := s.FinishJob(ctx, other); again || !errors.Is(err, store.ErrConflict) {
				t.Fatalf("another output: %v %v", again, err)
			}
			if arts, _ := s.ListArtifacts(ctx, id); len(arts) == 0 || arts[0].Kind != store.KindFinal {
				t.Fatalf("artifacts %+v", arts)
			}
		})
	}
	if _, err := s.FinishJob(ctx, store.Final{JobID: "x"}); err == nil {
		t.Fatal("a final without key accepted")
	}
}
