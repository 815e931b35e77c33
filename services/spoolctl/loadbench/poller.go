package loadbench

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// poller is a client of the gateway's GET /status/{id} at a steady rate,
// each request for a random job of the run. It is open-loop: a request
// goes out at every tick whether or not earlier ones have answered (up to
// maxInFlight, past which a tick is counted as skipped), so that a slow
// gateway shows in the latencies instead of lowering the rate.
type poller struct {
	base   string
	key    string // an API key, sent as the bearer
	jobs   []job
	client *http.Client

	mu      sync.Mutex
	lat     []time.Duration
	byState map[string][]time.Duration // the latencies by the job's state, or the code when not 200
	codes   map[string]int
	skipped int
}

const maxInFlight = 64

func newPoller(base, key string, jobs []job) *poller {
	return &poller{base: base, key: key, jobs: jobs, codes: map[string]int{}, byState: map[string][]time.Duration{},
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: maxInFlight}}}
}

// run polls at rate requests per second until ctx ends, then waits for the
// requests in flight.
func (p *poller) run(ctx context.Context, rate int) {
	t := time.NewTicker(time.Second / time.Duration(rate))
	defer t.Stop()
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			p.mu.Lock()
			p.skipped++
			p.mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			p.get(p.jobs[rand.IntN(len(p.jobs))].id)
		}()
	}
}

// get asks for one job's status and records how long the whole answer
// took and its status code ("error" when there was none).
func (p *poller) get(id string) {
	start := time.Now()
	code := "error"
	req, _ := http.NewRequest(http.MethodGet, p.base+"/status/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := p.client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			code = strconv.Itoa(resp.StatusCode)
		}
	}
	d := time.Since(start)
	class := code
	var v struct{ State string }
	if code == "200" && json.Unmarshal(body, &v) == nil && v.State != "" {
		class = v.State
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.codes[code]++
	if code != "error" {
		p.lat = append(p.lat, d)
		p.byState[class] = append(p.byState[class], d)
	}
}

// figures summarises the requests answered over elapsed.
func (p *poller) figures(rate int, elapsed time.Duration) Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{RatePerS: rate, Codes: map[string]int{}, Skipped: p.skipped}
	for k, v := range p.codes {
		s.Codes[k] = v
	}
	if elapsed > 0 {
		s.AnsweredPerS = float64(len(p.lat)) / elapsed.Seconds()
	}
	s.Latency = latencyOf(p.lat)
	s.ByState = map[string]Latency{}
	for k, v := range p.byState {
		s.ByState[k] = latencyOf(v)
	}
	return s
}

// latencyOf summarises latencies.
func latencyOf(ds []time.Duration) Latency {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	l := Latency{Requests: len(ds), P50MS: ms(quantile(ds, 0.50)), P99MS: ms(quantile(ds, 0.99))}
	if len(ds) > 0 {
		l.MaxMS = ms(ds[len(ds)-1])
	}
	return l
}

// quantile is the q-quantile (0..1) of sorted by the nearest rank, 0 for
// none.
func quantile[T any](sorted []T, q float64) T {
	var zero T
	if len(sorted) == 0 {
		return zero
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
