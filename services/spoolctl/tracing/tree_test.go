package tracing_test

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// span is what the tree check needs of a span, from either source.
type span struct {
	Name, TraceID, SpanID, Parent string
	Attrs                         map[string]string
}

// checkTree checks that job's spans form one trace rooted at job.submit:
// dispatch.plan under it; for each of the job's segments a segment.queue
// under dispatch.plan, carrying the job, segment, attempt, worker, GPU and
// model, with the four phases under it; a stitch.append per segment under
// a segment.queue (the DONE that caused it) or under dispatch.plan (the
// job's stored trace context: the sweep); and one stitch.finalize. Every
// span's parent is in the trace. It returns what is wrong, or nil.
func checkTree(all []span, job string, segments int) []string {
	root := rootOf(all, job)
	if root == nil {
		return []string{"no job.submit span for " + job}
	}
	byID := map[string]span{}
	var trace []span
	for _, s := range all {
		if s.TraceID == root.TraceID {
			trace = append(trace, s)
			byID[s.SpanID] = s
		}
	}
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	named := map[string][]span{}
	for _, s := range trace {
		named[s.Name] = append(named[s.Name], s)
		if s.SpanID == root.SpanID {
			continue
		}
		if _, ok := byID[s.Parent]; !ok {
			bad("%s (%v) has a parent %q outside the trace", s.Name, s.Attrs, s.Parent)
		}
	}
	if root.Parent != "" {
		if _, ok := byID[root.Parent]; ok {
			bad("job.submit is not the root")
		}
	}
	plans := named["dispatch.plan"]
	if len(plans) != 1 || plans[0].Parent != root.SpanID {
		bad("want one dispatch.plan under job.submit, got %d", len(plans))
		return errs
	}
	queues := map[string]span{}
	seen := map[string]bool{}
	for _, q := range named["segment.queue"] {
		queues[q.SpanID] = q
		seen[q.Attrs["spool.segment"]] = true
		if q.Parent != plans[0].SpanID {
			bad("segment.queue of segment %s is not under dispatch.plan", q.Attrs["spool.segment"])
		}
		for _, k := range []string{"spool.job", "spool.segment", "spool.attempt", "spool.worker", "spool.gpu", "spool.model"} {
			if q.Attrs[k] == "" {
				bad("segment.queue of segment %s lacks %s: %v", q.Attrs["spool.segment"], k, q.Attrs)
			}
		}
	}
	for i := 0; i < segments; i++ {
		if !seen[strconv.Itoa(i)] {
			bad("no segment.queue for segment %d", i)
		}
	}
	for _, phase := range []string{"segment.denoise", "segment.decode", "segment.encode", "segment.upload"} {
		got := map[string]bool{}
		for _, p := range named[phase] {
			q, ok := queues[p.Parent]
			if !ok || q.Attrs["spool.segment"] != p.Attrs["spool.segment"] {
				bad("%s of segment %s is not under its segment.queue", phase, p.Attrs["spool.segment"])
			}
			got[p.Attrs["spool.segment"]] = true
		}
		if len(got) != segments {
			bad("%s for %d segments, want %d", phase, len(got), segments)
		}
	}
	appended := map[string]bool{}
	for _, a := range named["stitch.append"] {
		if _, ok := queues[a.Parent]; !ok && a.Parent != plans[0].SpanID {
			bad("stitch.append of segment %s is neither under a segment.queue (its DONE) nor under dispatch.plan (the job's stored context)",
				a.Attrs["spool.segment"])
		}
		appended[a.Attrs["spool.segment"]] = true
	}
	if len(appended) != segments {
		bad("stitch.append for %d segments, want %d", len(appended), segments)
	}
	if n := len(named["stitch.finalize"]); n != 1 {
		bad("%d stitch.finalize spans, want 1", n)
	}
	return errs
}

// names lists the span names of a trace, for a failure message.
func names(all []span) string {
	count := map[string]int{}
	for _, s := range all {
		count[s.Name]++
	}
	var out []string
	for n, c := range count {
		out = append(out, fmt.Sprintf("%s×%d", n, c))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// rootOf is job's job.submit span; nil when there is none.
func rootOf(all []span, job string) *span {
	for i := range all {
		if all[i].Name == "job.submit" && all[i].Attrs["spool.job"] == job {
			return &all[i]
		}
	}
	return nil
}

// checkStopped checks a stopped live job's trace: one trace rooted at
// job.submit, every span's parent in it, and the stop's stitch.finalize in
// it.
func checkStopped(all []span, job string) []string {
	root := rootOf(all, job)
	if root == nil {
		return []string{"no job.submit span for " + job}
	}
	byID := map[string]bool{}
	for _, s := range all {
		if s.TraceID == root.TraceID {
			byID[s.SpanID] = true
		}
	}
	var errs []string
	finalized := 0
	for _, s := range all {
		if s.TraceID != root.TraceID {
			continue
		}
		if s.Name == "stitch.finalize" {
			finalized++
		}
		if s.SpanID != root.SpanID && !byID[s.Parent] {
			errs = append(errs, fmt.Sprintf("%s of %s (%v) has a parent %q outside the trace", s.Name, job, s.Attrs, s.Parent))
		}
	}
	if finalized != 1 {
		errs = append(errs, fmt.Sprintf("%d stitch.finalize spans in the trace of %s, want 1", finalized, job))
	}
	return errs
}

// checkNoOrphan checks that every span is in the trace of one of jobs (the
// test runs nothing else): no span about a job started a trace of its own.
func checkNoOrphan(all []span, jobs ...string) []string {
	traces := map[string]string{}
	for _, j := range jobs {
		if root := rootOf(all, j); root != nil {
			traces[root.TraceID] = j
		}
	}
	var errs []string
	for _, s := range all {
		if _, ok := traces[s.TraceID]; !ok {
			errs = append(errs, fmt.Sprintf("%s (%v) is an orphan: its trace %s is no job's", s.Name, s.Attrs, s.TraceID))
		}
	}
	return errs
}
