package spoolctl

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// client talks to the gateway.
type client struct {
	base string
	key  string // the API key every request carries
	http http.Client
}

// newClient adds the gateway's flags to fs: its URL and the API key. The
// key's default is not the flag's, so that -h never shows it.
func newClient(fs *flag.FlagSet) (*client, *string, *string) {
	url := fs.String("api", envOr("SPOOL_GATEWAY_URL", "http://127.0.0.1:8080"), "the gateway's URL ($SPOOL_GATEWAY_URL)")
	key := fs.String("key", "", "API key, spool_<id>_<secret> (default $SPOOL_API_KEY; spoolctl dev prints one)")
	return newGatewayClient("", ""), url, key
}

// newGatewayClient is a client of the gateway at base with key.
func newGatewayClient(base, key string) *client {
	return &client{base: base, key: key, http: http.Client{CheckRedirect: keyStaysHome}}
}

// keyStaysHome follows a redirect (at most 10) without the API key when it
// leads off the gateway: to a presigned MinIO URL, which refuses a request
// that has an Authorization header too, and must never see the key. (Go's
// client keeps it for another port of the same host.)
func keyStaysHome(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		req.Header.Del("Authorization")
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// apiErr is the gateway's error body.
type apiErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (c *client) do(ctx context.Context, method, path string, body io.Reader, out any) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.base, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.roundTrip(req, out)
}

// roundTrip sends req and, unless out is nil, decodes the JSON answer into
// out, or the gateway's error into an error.
func (c *client) roundTrip(req *http.Request, out any) (*http.Response, error) {
	method, path := req.Method, req.URL.Path
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("spoolctl: %s %s: %w", method, path, err)
	}
	if out == nil {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var e apiErr
		if json.Unmarshal(data, &e) == nil && e.Message != "" {
			if retry := resp.Header.Get("Retry-After"); resp.StatusCode == http.StatusTooManyRequests && retry != "" {
				return resp, fmt.Errorf("spoolctl: %s (%s; retry after %s s)", e.Message, e.Code, retry)
			}
			return resp, fmt.Errorf("spoolctl: %s (%s)", e.Message, e.Code)
		}
		return resp, fmt.Errorf("spoolctl: %s %s: %s", method, path, resp.Status)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp, fmt.Errorf("spoolctl: %s %s: %w", method, path, err)
	}
	return resp, nil
}

// job is the gateway's view of a job.
type job struct {
	ID            string  `json:"id"`
	State         string  `json:"state"`
	Progress      float64 `json:"progress"`
	SegmentsDone  int     `json:"segments_done"`
	SegmentsTotal int     `json:"segments_total"`
	ErrorMessage  string  `json:"error_message"`
	DownloadURL   string  `json:"download_url"`
	PreviewURL    string  `json:"preview_url"`
	Frames        int64   `json:"frames"`     // made
	DurationS     float64 `json:"duration_s"` // of the frames made
	Model         string  `json:"model"`
}

func (j job) terminal() bool {
	switch j.State {
	case "succeeded", "failed", "cancelled", "rejected":
		return true
	}
	return false
}

// submitAndWatch submits spec, shows its progress on stderr until the job
// ends, downloads the video to out (when set) and returns the job's id. A
// job that does not succeed is an error naming its state and message.
func (c *client) submitAndWatch(ctx context.Context, spec []byte, out string, stdout, stderr io.Writer) (string, error) {
	var sub struct {
		ID string `json:"id"`
	}
	if _, err := c.do(ctx, "POST", "/generate", strings.NewReader(string(spec)), &sub); err != nil {
		return "", err
	}
	fmt.Fprintf(stdout, "job %s submitted: %s/status/%s\n", sub.ID, c.base, sub.ID)
	j, err := c.watch(ctx, sub.ID, stderr)
	if err != nil {
		return sub.ID, err
	}
	if j.State != "succeeded" {
		return sub.ID, fmt.Errorf("spoolctl: job %s %s: %s", sub.ID, j.State, j.ErrorMessage)
	}
	if out == "" {
		return sub.ID, nil
	}
	if err := c.download(ctx, sub.ID, out); err != nil {
		return sub.ID, err
	}
	fmt.Fprintf(stdout, "wrote %s\n", out)
	return sub.ID, nil
}

// watch follows the job's events until the job ends, showing on w its
// progress: the share done, segments, state, ETA and the workers at work (a
// bar on a terminal, plain lines elsewhere; see meter).
func (c *client) watch(ctx context.Context, id string, w io.Writer) (job, error) {
	m := newMeter(w)
	j, err := c.follow(ctx, id, m.show)
	m.close()
	return j, err
}

// follow follows the job's events until the job ends, calling show with
// its progress at each event, and returns the job as it ended.
func (c *client) follow(ctx context.Context, id string, show func(progress)) (job, error) {
	resp, err := c.do(ctx, "GET", "/jobs/"+id+"/events", nil, nil)
	if err != nil {
		return job{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return job{}, fmt.Errorf("spoolctl: events of %s: %s", id, resp.Status)
	}
	start := time.Now()
	var last job
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			event = e
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		switch event {
		case "status":
			_ = json.Unmarshal([]byte(data), &last)
		case "job":
			var ev struct {
				State         string  `json:"state"`
				Progress      float64 `json:"progress"`
				SegmentsDone  uint32  `json:"segments_done"`
				SegmentsTotal uint32  `json:"segments_total"`
			}
			if json.Unmarshal([]byte(data), &ev) == nil {
				if st := strings.ToLower(strings.TrimPrefix(ev.State, "JOB_STATE_")); st != "" && st != "unspecified" {
					last.State = st
				}
				last.Progress = max(last.Progress, ev.Progress)
				last.SegmentsDone = max(last.SegmentsDone, int(ev.SegmentsDone))
				if ev.SegmentsTotal > 0 {
					last.SegmentsTotal = int(ev.SegmentsTotal)
				}
			}
		}
		show(progress{fraction: last.Progress, done: last.SegmentsDone, total: last.SegmentsTotal, state: last.State,
			eta: etaOf(last.Progress, time.Since(start)), busy: c.busy(ctx, id)})
		if last.terminal() {
			break
		}
	}
	if !last.terminal() {
		// The stream ended early: ask once more.
		if _, err := c.do(ctx, "GET", "/status/"+id, nil, &last); err != nil {
			return last, err
		}
	}
	return last, nil
}

// busy names the workers holding the job's tasks, from /models/info.
func (c *client) busy(ctx context.Context, id string) string {
	var info struct {
		Workers []struct {
			ID           string   `json:"id"`
			CurrentTasks []string `json:"current_tasks"`
		} `json:"workers"`
	}
	if _, err := c.do(ctx, "GET", "/models/info", nil, &info); err != nil {
		return ""
	}
	var on []string
	for _, w := range info.Workers {
		for _, t := range w.CurrentTasks {
			if strings.HasPrefix(t, id+"/") {
				seg := strings.Split(t, "/")[1]
				on = append(on, "seg "+seg+"@"+w.ID)
			}
		}
	}
	return strings.Join(on, ", ")
}

// download follows the redirect to the final MP4 and writes it to out.
func (c *client) download(ctx context.Context, id, out string) error {
	resp, err := c.do(ctx, "GET", "/download/"+id, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		var e apiErr
		if json.Unmarshal(data, &e) == nil && e.Message != "" {
			return fmt.Errorf("spoolctl: %s (%s)", e.Message, e.Code)
		}
		return fmt.Errorf("spoolctl: download %s: %s", id, resp.Status)
	}
	if dir := filepath.Dir(out); dir != "" {
		_ = os.MkdirAll(dir, 0o755)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("spoolctl: download %s: %w", id, err)
	}
	return f.Close()
}

// clientCommand parses a client command's flags and positional arguments:
// want of them, or at least one when want is negative.
func clientCommand(name, synopsis string, args []string, stderr io.Writer, want int, extra func(*flag.FlagSet)) (*client, []string, error) {
	fs := newFlags(name, synopsis, stderr)
	c, url, key := newClient(fs)
	if extra != nil {
		extra(fs)
	}
	pos, err := parse(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, flag.ErrHelp
		}
		return nil, nil, ErrUsage
	}
	switch {
	case want < 0 && len(pos) == 0:
		fs.Usage()
		return nil, nil, fmt.Errorf("spoolctl %s: want at least one argument", name)
	case want >= 0 && len(pos) != want:
		fs.Usage()
		return nil, nil, fmt.Errorf("spoolctl %s: want %d argument(s), got %d", name, want, len(pos))
	}
	c.base, c.key = *url, cmp.Or(*key, os.Getenv("SPOOL_API_KEY"))
	return c, pos, nil
}

func helpIsOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func runSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var watch *bool
	var out, batch, tenant *string
	c, pos, err := clientCommand("submit", "[flags] spec.json [spec.json ...] | specs.jsonl", args, stderr, -1, func(fs *flag.FlagSet) {
		watch = fs.Bool("watch", false, "show the progress until the job (or every job of the batch) ends: a bar on a terminal, plain lines otherwise")
		out = fs.String("o", "", "with --watch and one spec: download the video here")
		batch = fs.String("batch", "", "with more than one spec: the batch's id, so that sending it again submits nothing twice; default: a new one")
		tenant = fs.String("tenant", "", "with more than one spec and an admin key: the batch's tenant; default: the key's (a tenant's key acts for its own alone)")
	})
	if err != nil {
		return helpIsOK(err)
	}
	specs, err := readSpecs(pos)
	if err != nil {
		return err
	}
	if len(specs) > 1 { // one request for them all: POST /batches
		if *out != "" {
			return errors.New("spoolctl submit: -o downloads one job's video; with a batch, download each job with spoolctl download")
		}
		id := *batch
		if id == "" {
			id = newBatchID()
		}
		if err := c.submitBatch(ctx, id, *tenant, specs, stdout); err != nil || !*watch {
			return err
		}
		return c.watchBatch(ctx, id, stderr)
	}
	spec := []byte(specs[0])
	if *watch {
		id, err := c.submitAndWatch(ctx, spec, *out, stdout, stderr)
		if err == nil {
			fmt.Fprintf(stdout, "dashboard: %s/#%s\n", c.base, id)
		}
		return err
	}
	var sub map[string]string
	if _, err := c.do(ctx, "POST", "/generate", strings.NewReader(string(spec)), &sub); err != nil {
		return err
	}
	fmt.Fprintln(stdout, sub["id"])
	return nil
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, pos, err := clientCommand("status", "[flags] job-id", args, stderr, 1, nil)
	if err != nil {
		return helpIsOK(err)
	}
	var j map[string]any
	if _, err := c.do(ctx, "GET", "/status/"+pos[0], nil, &j); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}

func runCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, pos, err := clientCommand("cancel", "[flags] job-id", args, stderr, 1, nil)
	if err != nil {
		return helpIsOK(err)
	}
	var v map[string]string
	if _, err := c.do(ctx, "POST", "/jobs/"+pos[0]+"/cancel", nil, &v); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cancel of %s sent\n", pos[0])
	return nil
}

func runDownload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var out *string
	c, pos, err := clientCommand("download", "[flags] job-id", args, stderr, 1, func(fs *flag.FlagSet) {
		out = fs.String("o", "", "output file; default <job-id>.mp4")
	})
	if err != nil {
		return helpIsOK(err)
	}
	if *out == "" {
		*out = pos[0] + ".mp4"
	}
	if err := c.download(ctx, pos[0], *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

func runLineage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, pos, err := clientCommand("lineage", "[flags] job-id", args, stderr, 1, nil)
	if err != nil {
		return helpIsOK(err)
	}
	var l struct {
		Segments []struct {
			Index            int    `json:"index"`
			Frames           int    `json:"frames"`
			State            string `json:"state"`
			CommittedAttempt int    `json:"committed_attempt"`
			Attempts         []struct {
				Attempt int
				Outcome string
				Worker  struct{ WorkerID, GPUName string }
				Timings struct{ QueueMS, DenoiseMS, DecodeMS, EncodeMS, UploadMS int }
			} `json:"attempts"`
		} `json:"segments"`
	}
	if _, err := c.do(ctx, "GET", "/jobs/"+pos[0]+"/lineage", nil, &l); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "segment\tframes\tattempt\toutcome\tworker\tgpu\tqueue ms\tdenoise ms\tdecode ms\tencode ms\tupload ms")
	for _, s := range l.Segments {
		for _, a := range s.Attempts {
			mark := ""
			if a.Attempt == s.CommittedAttempt {
				mark = " *"
			}
			gpu := a.Worker.GPUName
			if gpu == "" {
				gpu = "cpu"
			}
			fmt.Fprintf(tw, "%d\t%d\t%d%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", s.Index, s.Frames, a.Attempt, mark, a.Outcome, a.Worker.WorkerID,
				gpu, a.Timings.QueueMS, a.Timings.DenoiseMS, a.Timings.DecodeMS, a.Timings.EncodeMS, a.Timings.UploadMS)
		}
	}
	return tw.Flush()
}
