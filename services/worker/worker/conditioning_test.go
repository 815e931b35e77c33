package worker_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// slowTails is an S3 transport on which every tail upload takes delay, and
// uploads of the tails whose key contains refuse fail.
type slowTails struct {
	delay  time.Duration
	refuse string
}

func (s slowTails) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/tail.bin") {
		if s.refuse != "" && strings.Contains(r.URL.Path, s.refuse) {
			return nil, errors.New("injected: the store refuses this tail")
		}
		time.Sleep(s.delay)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// twoWorkers starts two one-slot sim workers (separate processes' worth of
// state: each its own tail cache) whose tail uploads go through rt, with
// SPOOL_WORKER_TAIL_WAIT tailWait and SPOOL_WORKER_STORE_RETRY storeRetry
// (0: the default).
func (e *env) twoWorkers(t *testing.T, rt http.RoundTripper, tailWait, storeRetry time.Duration) {
	t.Helper()
	slow, err := blob.New(e.st.S3Config(), blob.WithTransport(rt))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ca", "cb"} {
		w, err := worker.New(worker.Config{ID: name + "-" + e.pool[:6], Pool: e.pool, Backend: "sim", Params: "step_ms=20", Slots: 1,
			Heartbeat: time.Second, TailWait: tailWait, StoreRetry: storeRetry}, e.bus, slow, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
		e.run(t, name, w.Run)
	}
}

// TestTailHandedOffBeforeItsUpload: TAIL_READY goes out the moment
// denoising ends, while the tail's upload (slowed to 700 ms) runs behind
// it; the segment's DONE waits for the upload; the next segment starts
// from the producing process's memory or, on the other worker, once the
// tail is in the store. The video is whole.
func TestTailHandedOffBeforeItsUpload(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	const upload = 700 * time.Millisecond
	e.twoWorkers(t, slowTails{delay: upload}, time.Minute, 0)
	job := fmt.Sprintf("early-%d", time.Now().UnixNano()%1e9)
	subject, _ := bus.ResultsSubject(job)
	sub, err := e.bus.Conn().SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	e.submit(t, `{"id":"`+job+`","prompt":"x","durationFrames":25,"windowFrames":9,"overlapFrames":1,"model":"sim",`+
		`"width":64,"height":64,"steps":3,"fps":24,"pool":"`+e.pool+`"}`)
	at := map[string]time.Time{}
	for len(at) < 5 { // T0, T1, T2, D0 … D2 (the last segment hands out no tail)
		m, err := sub.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatalf("results so far %v: %v", at, err)
		}
		r, _ := bus.DecodeResult(m.Data)
		name := fmt.Sprintf("%s%d", map[spoolv1.Phase]string{spoolv1.Phase_PHASE_TAIL_READY: "T", spoolv1.Phase_PHASE_DONE: "D"}[r.GetPhase()], r.GetIndex())
		if _, seen := at[name]; !seen && (name == "T0" || name == "T1" || name == "D0" || name == "D1" || name == "D2") {
			at[name] = time.Now()
		}
	}
	if gap := at["D0"].Sub(at["T0"]); gap < upload-50*time.Millisecond {
		t.Fatalf("DONE of segment 0 came %v after its TAIL_READY: it did not wait for the %v upload", gap, upload)
	}
	segs := e.waitDone(t, job)
	e.checkFragments(t, segs, 25)
}
