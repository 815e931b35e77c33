// Package spoolctl is the spool command line: it runs the whole system in
// one process (dev), submits and follows jobs through the gateway, and
// renders jobs locally (the oracle).
package spoolctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"render":   {"render a job spec in this process (--local): the oracle the distributed output must equal", runRender},
	"dev":      {"the whole system in one process: devstack, dispatcher, stitcher, gateway and ref worker slots", runDev},
	"submit":   {"submit a job spec (JSON file), or many at once (several files, or a .jsonl of one spec a line); --watch shows the progress, -o downloads the video", runSubmit},
	"status":   {"a job's state, progress and errors", runStatus},
	"cancel":   {"cancel a job", runCancel},
	"download": {"download a job's video", runDownload},
	"lineage":  {"a job's segments and attempts: worker, GPU, per-phase timings", runLineage},
	"upload":   {"upload a media file (image, video, audio) for jobs to use; prints its id", runUpload},
	"nats":     {"nats declare: declare the streams, consumers and buckets as the NATS admin (--keep: and again after a loss); nats auth: write the NATS server's users and their password files", runNATSCommand},
	"quota":    {"a tenant's quotas (queued jobs, running segments, seconds per day): get, or set overrides", runQuota},
	"keys":     {"create, list and revoke the gateway's API keys (with an admin key): spoolctl keys -h", runKeys},
	"audit":    {"the audit log: submissions, cancels, deletions and key changes, newest first", runAudit},
}

// ErrUsage is returned for a command line that cannot run; the usage has
// been printed.
var ErrUsage = fmt.Errorf("spoolctl: usage")

// Main runs the command line args (without the program name).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return ErrUsage
		}
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("spoolctl: unknown command %q", args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: spoolctl <command> [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\n'spoolctl <command> -h' shows a command's flags. The commands that talk to the gateway take its URL from\n"+
		"$SPOOL_GATEWAY_URL (or -api) and an API key from $SPOOL_API_KEY (or -key); spoolctl dev prints both.\n")
}

// newFlags is a subcommand's flag set that reports errors instead of
// exiting.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: spoolctl %s %s\n\nFlags:\n", name, strings.TrimSpace(synopsis))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags anywhere among the arguments (spoolctl render --local
// spec.json -o out.mp4) and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
