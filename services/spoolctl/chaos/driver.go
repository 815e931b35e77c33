package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/spoolctl/render"
)

// Job kinds the driver submits.
const (
	kindChain  = "text-chain"       // text to video, chain mode
	kindIndep  = "text-independent" // text to video, independent mode
	kindImage  = "image-to-video"   // segment 0 conditioned on the uploaded image
	kindExtend = "extension"        // chain from the uploaded video's last frames
	kindTalk   = "talking-head"     // ref-talk: the uploaded image speaking the uploaded audio
)

var jobKinds = []string{kindChain, kindIndep, kindImage, kindExtend, kindTalk}

// Submission routes.
const (
	routeHTTP = "http" // POST /generate on the gateway
	routeNATS = "nats" // a JSON JobSpec published to spool.jobs.submit
)

// job is one job of the run: its spec, how it is submitted and what the
// oracle needs to render it.
type job struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Route string `json:"route"`
	Spec  string `json:"spec"`
	// Frames is the video's length, set by size.
	Frames int `json:"frames"`
	// Weight is the job's share of the load, drawn from the seed.
	Weight float64 `json:"weight"`
	// Submitted is when the submission was accepted (202, or the PubAck),
	// and Tries how many requests that took.
	Submitted time.Time `json:"submitted"`
	Tries     int       `json:"tries"`
	// Finished is when the job ended, by Postgres; State how.
	Finished time.Time `json:"finished,omitzero"`
	State    string    `json:"state,omitempty"`

	model, mode, prompt, media    string
	width, window, overlap, steps int
	seed, maxFrames               int
	oracle                        render.Options
}

// planJobs draws n jobs from rng: the first five one of each kind in a
// random order, the rest half text to video, a sixth each of the others;
// each sent by HTTP or by NATS at random, at least one of each. Sizes are
// small (64 or 96 by 64, 2..4 steps) so that a run fits two cores; their
// lengths are set later (size).
func planJobs(rng *rand.Rand, seed int64, n int, in inputs) []*job {
	kinds := make([]string, n)
	first := rng.Perm(len(jobKinds))
	for i := range kinds {
		switch {
		case i < len(jobKinds):
			kinds[i] = jobKinds[first[i]]
		case rng.IntN(2) == 0:
			kinds[i] = []string{kindChain, kindIndep}[rng.IntN(2)]
		default:
			kinds[i] = jobKinds[2+rng.IntN(3)]
		}
	}
	jobs := make([]*job, n)
	for i, kind := range kinds {
		route := []string{routeHTTP, routeNATS}[rng.IntN(2)]
		if i < 2 {
			route = []string{routeHTTP, routeNATS}[i]
		}
		jobs[i] = planJob(rng, fmt.Sprintf("c%d-%02d-%s", seed, i, strings.SplitN(kind, "-", 2)[0]), kind, route, in)
	}
	return jobs
}

func planJob(rng *rand.Rand, id, kind, route string, in inputs) *job {
	prompts := []string{"a lighthouse at dusk", "a storm over the sea", "a red fox in the snow", "a harbour at night", "a reading"}
	j := &job{ID: id, Kind: kind, Route: route, Weight: 0.75 + rng.Float64()/2, model: "ref", prompt: prompts[rng.IntN(len(prompts))],
		mode: []string{"MODE_CHAIN", "MODE_INDEPENDENT"}[rng.IntN(2)], width: []int{64, 96}[rng.IntN(2)], window: 13, overlap: 4,
		steps: 2 + rng.IntN(3), seed: rng.IntN(1000), maxFrames: 2000}
	if rng.IntN(2) == 0 {
		j.window, j.overlap = 17, 5
	}
	switch kind {
	case kindChain:
		j.mode = "MODE_CHAIN"
	case kindIndep:
		j.mode = "MODE_INDEPENDENT"
	case kindImage:
		j.media, j.oracle.Image = fmt.Sprintf(`,"image":%q`, in.ImageID), in.Image
	case kindExtend:
		j.mode, j.media, j.oracle.Video = "MODE_CHAIN", fmt.Sprintf(`,"video":%q`, in.VideoID), in.Video
	case kindTalk:
		j.model, j.maxFrames = "ref-talk", int(in.AudioS*24)
		j.media, j.oracle.Audio, j.oracle.Reference = fmt.Sprintf(`,"audio":%q,"reference":%q`, in.AudioID, in.ImageID), in.Audio, in.Image
	}
	return j
}

// size makes the job about n segments long (at least 2), and writes its
// spec.
func (j *job) size(n int) {
	j.Frames = min(j.overlap+max(n, 2)*(j.window-j.overlap), j.maxFrames)
	j.Spec = fmt.Sprintf(`{"id":%q,"tenant":%q,"pool":%q,"model":%q,"mode":%q,"prompt":%q,"durationFrames":%d,"windowFrames":%d,`+
		`"overlapFrames":%d,"width":%d,"height":64,"steps":%d,"seed":%d,"fps":24%s}`,
		j.ID, tenant, pool, j.model, j.mode, j.prompt, j.Frames, j.window, j.overlap, j.width, j.steps, j.seed, j.media)
}

// segments is about how many segments the job has.
func (j *job) segments() int {
	return max((j.Frames-j.overlap+j.window-j.overlap-1)/(j.window-j.overlap), 1)
}

// driver submits the jobs, by their routes, riding out faults by
// retrying, and waits for them.
type driver struct {
	o       Options
	gateway string
	key     string // an admin key of the gateway
	js      jetstream.JetStream
	st      *store.Store

	mu   sync.Mutex
	errs []error
}

// submitAll submits the jobs evenly over spread (at once for 0), and
// returns when every one is accepted or has failed to be. A sizer, when
// given, sizes each job just before it goes (see loadSizer).
func (d *driver) submitAll(ctx context.Context, jobs []*job, spread time.Duration, sizer *loadSizer) {
	start := time.Now()
	weights := 0.0
	for _, j := range jobs {
		weights += j.Weight
	}
	for i, j := range jobs {
		if spread > 0 {
			at := start.Add(spread * time.Duration(i) / time.Duration(len(jobs)))
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(at)):
			}
		}
		if sizer != nil {
			sizer.size(ctx, j, weights)
			weights -= j.Weight
		}
		if err := d.submit(ctx, j); err != nil {
			d.mu.Lock()
			d.errs = append(d.errs, err)
			d.mu.Unlock()
			d.o.logf("%v", err)
		}
	}
}

// submit sends one job, again and again until it is accepted: the same
// spec with the same id is a retry, never a second job.
func (d *driver) submit(ctx context.Context, j *job) error {
	try := d.postHTTP
	if j.Route == routeNATS {
		try = d.publishNATS
	}
	err := retry(ctx, 3*time.Minute, "submit "+j.ID+" by "+j.Route, func(ctx context.Context) (bool, error) {
		j.Tries++
		return try(ctx, j)
	})
	if err == nil {
		j.Submitted = time.Now()
	}
	return err
}

func (d *driver) postHTTP(ctx context.Context, j *job) (bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.gateway+"/generate", strings.NewReader(j.Spec))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+d.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	switch {
	case resp.StatusCode == http.StatusAccepted:
		var v struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.ID != j.ID {
			return false, fmt.Errorf("202 for job %q: %s", v.ID, body)
		}
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("%s: %s", resp.Status, body)
	}
	return false, fmt.Errorf("%s: %s", resp.Status, body)
}

func (d *driver) publishNATS(ctx context.Context, j *job) (bool, error) {
	m := nats.NewMsg(bus.SubjectJobSubmit)
	m.Data = []byte(j.Spec)
	m.Header.Set(bus.HeaderContentType, bus.ContentJSON)
	_, err := d.js.PublishMsg(ctx, m, jetstream.WithMsgID(j.ID))
	return true, err
}

// waitAll polls Postgres until every job has ended, or within passes.
func (d *driver) waitAll(ctx context.Context, jobs []*job, within time.Duration) error {
	pending := map[string]bool{}
	for _, j := range jobs {
		pending[j.ID] = true
	}
	return poll(ctx, within, 500*time.Millisecond, "every job to end", func(ctx context.Context) error {
		for id := range pending {
			jb, err := d.st.GetJob(ctx, id)
			if err == nil && jb.State.Terminal() {
				delete(pending, id)
			}
		}
		if len(pending) > 0 {
			return fmt.Errorf("%d jobs not ended", len(pending))
		}
		return nil
	})
}

// submitErrors are the submissions that were never accepted.
func (d *driver) submitErrors() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.errs
}
