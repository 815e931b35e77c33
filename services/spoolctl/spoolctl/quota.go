package spoolctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"
)

// quotaValues are a tenant's quotas as the gateway takes and shows them:
// a limit (0: unlimited) or nil (null: the default).
type quotaValues struct {
	QueuedJobs      *int64 `json:"queued_jobs"`
	RunningSegments *int64 `json:"running_segments"`
	DailySeconds    *int64 `json:"daily_seconds"`
}

// quotaView is GET /tenants/{tenant}/quota's answer.
type quotaView struct {
	Tenant    string      `json:"tenant"`
	Overrides quotaValues `json:"overrides"`
	Limits    quotaValues `json:"limits"`
	Use       struct {
		QueuedJobs      int     `json:"queued_jobs"`
		RunningSegments int     `json:"running_segments"`
		DailySeconds    float64 `json:"daily_seconds"`
	} `json:"use"`
	DayResetsAt time.Time `json:"day_resets_at"`
}

// limitFlag is a quota flag: a limit ≥ 0 (0: unlimited) or "default".
type limitFlag struct {
	set bool
	v   *int64
}

func (f *limitFlag) String() string {
	switch {
	case f == nil || !f.set:
		return ""
	case f.v == nil:
		return "default"
	}
	return strconv.FormatInt(*f.v, 10)
}

func (f *limitFlag) Set(s string) error {
	f.set = true
	if s == "default" {
		f.v = nil
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return errors.New(`want a limit ≥ 0 (0: unlimited), or "default"`)
	}
	f.v = &n
	return nil
}

func runQuota(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "get --tenant T | set --tenant T [--queued-jobs N] [--running-segments N] [--daily-seconds N]"
	if len(args) == 0 || (args[0] != "get" && args[0] != "set") {
		fmt.Fprintf(stderr, "Usage: spoolctl quota %s\n\n"+
			"get shows a tenant's quotas: the limits in force, its overrides and its use now.\n"+
			"set changes the overrides it is given; each takes a limit (0: unlimited) or \"default\".\n"+
			"'spoolctl quota get -h' and 'spoolctl quota set -h' show the flags.\n", synopsis)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return ErrUsage
	}
	var tenant *string
	var queued, running, daily limitFlag
	sub := map[string]string{"get": "--tenant T", "set": "--tenant T [--queued-jobs N] [--running-segments N] [--daily-seconds N]"}[args[0]]
	c, _, err := clientCommand("quota "+args[0], sub, args[1:], stderr, 0, func(fs *flag.FlagSet) {
		tenant = fs.String("tenant", "", "the tenant (required)")
		if args[0] == "set" {
			fs.Var(&queued, "queued-jobs", "most jobs not yet ended (submitted, queued or running); \"default\": the gateway's SPOOL_GATEWAY_QUOTA_QUEUED_JOBS")
			fs.Var(&running, "running-segments", "most segments being generated at once; \"default\": the dispatcher's SPOOL_DISPATCHER_QUOTA_RUNNING_SEGMENTS")
			fs.Var(&daily, "daily-seconds", "most seconds of video requested per UTC day; \"default\": the gateway's SPOOL_GATEWAY_QUOTA_DAILY_SECONDS")
		}
	})
	if err != nil {
		return helpIsOK(err)
	}
	if *tenant == "" {
		return errors.New("spoolctl quota: --tenant is required")
	}
	path := "/tenants/" + url.PathEscape(*tenant) + "/quota"
	var v quotaView
	if _, err := c.do(ctx, "GET", path, nil, &v); err != nil {
		return err
	}
	if args[0] == "set" {
		if !queued.set && !running.set && !daily.set {
			return errors.New("spoolctl quota set: give at least one of --queued-jobs, --running-segments, --daily-seconds")
		}
		o := v.Overrides
		for _, f := range []struct {
			flag *limitFlag
			to   **int64
		}{{&queued, &o.QueuedJobs}, {&running, &o.RunningSegments}, {&daily, &o.DailySeconds}} {
			if f.flag.set {
				*f.to = f.flag.v
			}
		}
		body, _ := json.Marshal(o)
		if _, err := c.do(ctx, "PUT", path, bytes.NewReader(body), &v); err != nil {
			return err
		}
	}
	return printQuota(stdout, v)
}

// printQuota shows v as a table: each quota's limit in force, the
// tenant's override and its use.
func printQuota(w io.Writer, v quotaView) error {
	limit := func(p *int64, dflt string) string {
		switch {
		case p == nil:
			return dflt
		case *p == 0:
			return "unlimited"
		}
		return strconv.FormatInt(*p, 10)
	}
	fmt.Fprintf(w, "tenant %s\n", v.Tenant)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "QUOTA\tLIMIT\tOVERRIDE\tUSE")
	fmt.Fprintf(tw, "queued jobs\t%s\t%s\t%d\n", limit(v.Limits.QueuedJobs, "?"), limit(v.Overrides.QueuedJobs, "default"), v.Use.QueuedJobs)
	fmt.Fprintf(tw, "running segments\t%s\t%s\t%d\n", limit(v.Limits.RunningSegments, "the dispatcher's"), limit(v.Overrides.RunningSegments, "default"),
		v.Use.RunningSegments)
	fmt.Fprintf(tw, "seconds per UTC day\t%s\t%s\t%s (until %s)\n", limit(v.Limits.DailySeconds, "?"), limit(v.Overrides.DailySeconds, "default"),
		strconv.FormatFloat(v.Use.DailySeconds, 'f', -1, 64), v.DayResetsAt.UTC().Format(time.RFC3339))
	return tw.Flush()
}
