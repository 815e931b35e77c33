package spoolctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"
	"time"
)

// demoJob is one job of spoolctl dev's demo: what kind of job it is, its
// spec and the file its video goes to.
type demoJob struct {
	kind string // e.g. "text to video", "talking head"
	spec []byte
	out  string
}

// demoRun is what became of a demo job.
type demoRun struct {
	demoJob
	id    string
	job   job           // its status once it ended
	took  time.Duration // from its submission to its video written
	wrote bool          // its video is at out
	err   error
}

// runDemo submits the jobs, which then run concurrently, shows their
// progress on stderr, a row each, writes each one's video as it succeeds,
// and prints on stdout the jobs side by side. A job that made no video is
// an error, returned after the table.
func (c *client) runDemo(ctx context.Context, jobs []demoJob, stdout, stderr io.Writer) ([]demoRun, error) {
	runs := make([]demoRun, len(jobs))
	submitted := make([]time.Time, len(jobs))
	labels := make([]string, len(jobs))
	for i, dj := range jobs {
		var sub struct {
			ID string `json:"id"`
		}
		submitted[i] = time.Now()
		if _, err := c.do(ctx, "POST", "/generate", bytes.NewReader(dj.spec), &sub); err != nil {
			return nil, fmt.Errorf("the %s job: %w", dj.kind, err)
		}
		runs[i] = demoRun{demoJob: dj, id: sub.ID}
		labels[i] = dj.kind
		fmt.Fprintf(stdout, "job %s submitted (%s): %s/status/%s\n", sub.ID, dj.kind, c.base, sub.ID)
	}
	b := newBoard(stderr, labels...)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			r := &runs[i]
			r.err = c.followAndDownload(ctx, r, func(p progress) { b.show(i, p) })
			r.took = time.Since(submitted[i])
		})
	}
	wg.Wait()
	b.close()
	var errs []error
	for _, r := range runs {
		if r.wrote {
			fmt.Fprintf(stdout, "wrote %s\n", r.out)
		}
		if r.err != nil {
			errs = append(errs, fmt.Errorf("the %s job %s: %w", r.kind, r.id, r.err))
		}
	}
	fmt.Fprintln(stdout)
	writeDemoTable(stdout, c.base, runs)
	return runs, errors.Join(errs...)
}

// followAndDownload follows r's job until it ends, showing its progress, writes its
// video to r.out once it succeeded, and fetches its status.
func (c *client) followAndDownload(ctx context.Context, r *demoRun, show func(progress)) error {
	j, err := c.follow(ctx, r.id, show)
	r.job = j
	if err != nil {
		return err
	}
	if j.State != "succeeded" {
		return fmt.Errorf("%s: %s", j.State, j.ErrorMessage)
	}
	if err := c.download(ctx, r.id, r.out); err != nil {
		return err
	}
	r.wrote = true
	// A state of its own, which a meter writes at once: the other job may
	// run for minutes yet.
	show(progress{fraction: 1, done: j.SegmentsDone, total: j.SegmentsTotal, state: "wrote " + r.out})
	if _, err := c.do(ctx, "GET", "/status/"+r.id, nil, &r.job); err != nil {
		return err
	}
	return nil
}

// writeDemoTable writes the demo's jobs side by side: what each is, what
// it made and where.
func writeDemoTable(w io.Writer, base string, runs []demoRun) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "job\tkind\tmodel\tstate\tduration\tframes\tsegments\ttook\tfile\tstatus")
	for _, r := range runs {
		file := r.out
		if !r.wrote {
			file = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f s\t%d\t%d\t%s\t%s\t%s/status/%s\n", r.id, r.kind, r.job.Model, r.job.State,
			r.job.DurationS, r.job.Frames, r.job.SegmentsTotal, r.took.Round(100*time.Millisecond), file, base, r.id)
	}
	_ = tw.Flush()
}
