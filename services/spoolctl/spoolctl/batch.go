package spoolctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spoolvideo/spool/libs/ident"
)

// readSpecs reads the job specs of files: a .jsonl (or .ndjson) file holds
// one spec a line (blank lines skipped), a file whose JSON is an array
// holds its elements, and any other file is one spec.
func readSpecs(files []string) ([]json.RawMessage, error) {
	var specs []json.RawMessage
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		trimmed := bytes.TrimSpace(data)
		switch ext := strings.ToLower(filepath.Ext(f)); {
		case ext == ".jsonl" || ext == ".ndjson":
			for n, line := range bytes.Split(data, []byte("\n")) {
				if line = bytes.TrimSpace(line); len(line) == 0 {
					continue
				}
				if !json.Valid(line) {
					return nil, fmt.Errorf("spoolctl: %s line %d is not JSON: want one job spec a line", f, n+1)
				}
				specs = append(specs, json.RawMessage(line))
			}
		case len(trimmed) > 0 && trimmed[0] == '[':
			var arr []json.RawMessage
			if err := json.Unmarshal(trimmed, &arr); err != nil {
				return nil, fmt.Errorf("spoolctl: %s: %w", f, err)
			}
			specs = append(specs, arr...)
		default:
			specs = append(specs, json.RawMessage(trimmed))
		}
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("spoolctl: no job spec in %s", strings.Join(files, ", "))
	}
	return specs, nil
}

// batchItem is what became of one spec of a batch.
type batchItem struct {
	Index    int     `json:"index"`
	ID       string  `json:"id"`
	State    string  `json:"state"`
	Progress float64 `json:"progress"`
	Error    *struct {
		Code    string `json:"code"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"error"`
}

// submitBatch posts specs to POST /batches as JSON Lines under batch id
// (the same id makes a retry of the request submit nothing twice), prints
// each spec's job id or error, and returns the batch's answer. Refused
// specs make an error once every line is printed.
func (c *client) submitBatch(ctx context.Context, id, tenant string, specs []json.RawMessage, stdout io.Writer) error {
	var body bytes.Buffer
	for _, s := range specs {
		body.Write(bytes.TrimSpace(s))
		body.WriteByte('\n')
	}
	q := url.Values{"id": {id}}
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(c.base, "/")+"/batches?"+q.Encode(), &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("spoolctl: POST /batches: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusMultiStatus {
		var e apiErr
		if json.Unmarshal(data, &e) == nil && e.Message != "" {
			return fmt.Errorf("spoolctl: %s (%s)", e.Message, e.Code)
		}
		return fmt.Errorf("spoolctl: POST /batches: %s", resp.Status)
	}
	var out struct {
		BatchID string      `json:"batch_id"`
		Jobs    []batchItem `json:"jobs"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return fmt.Errorf("spoolctl: POST /batches: %w", err)
	}
	refused := 0
	for _, it := range out.Jobs {
		if it.Error != nil {
			refused++
			field := ""
			if it.Error.Field != "" {
				field = " (" + it.Error.Field + ")"
			}
			fmt.Fprintf(stdout, "%d\trefused\t%s%s: %s\n", it.Index, it.Error.Code, field, it.Error.Message)
			continue
		}
		fmt.Fprintf(stdout, "%d\t%s\n", it.Index, it.ID)
	}
	fmt.Fprintf(stdout, "batch %s: %d of %d specs submitted: %s/batches/%s\n", out.BatchID, len(out.Jobs)-refused, len(out.Jobs), c.base, out.BatchID)
	if refused > 0 {
		return fmt.Errorf("spoolctl: %d of %d specs refused", refused, len(out.Jobs))
	}
	return nil
}

// watchBatch shows a batch's progress on w, a line each time it changes,
// until every job has ended; a job that did not succeed is an error.
func (c *client) watchBatch(ctx context.Context, id string, w io.Writer) error {
	last := ""
	for {
		var b struct {
			Accepted    int            `json:"accepted"`
			States      map[string]int `json:"states"`
			FramesDone  int64          `json:"frames_done"`
			FramesTotal int64          `json:"frames_total"`
			Progress    float64        `json:"progress"`
			Finished    bool           `json:"finished"`
			Jobs        []batchItem    `json:"jobs"`
		}
		if _, err := c.do(ctx, "GET", "/batches/"+id, nil, &b); err != nil {
			return err
		}
		ended := b.States["succeeded"] + b.States["failed"] + b.States["cancelled"] + b.States["rejected"]
		line := fmt.Sprintf("%3.0f%%  %d/%d jobs ended  %d/%d frames", 100*b.Progress, ended, b.Accepted, b.FramesDone, b.FramesTotal)
		if line != last {
			fmt.Fprintln(w, line)
			last = line
		}
		if b.Finished {
			var bad []string
			for _, j := range b.Jobs {
				if j.ID != "" && j.State != "succeeded" {
					bad = append(bad, fmt.Sprintf("%s %s", j.ID, j.State))
				}
			}
			if len(bad) > 0 {
				return fmt.Errorf("spoolctl: batch %s: %d jobs did not succeed: %s", id, len(bad), strings.Join(bad, ", "))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// newBatchID is a fresh batch id, chosen here so that the request can be
// sent again safely.
func newBatchID() string { return ident.New("b", 20) }
