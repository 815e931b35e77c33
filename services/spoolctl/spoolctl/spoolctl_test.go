package spoolctl_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/services/spoolctl/spoolctl"
)

func TestRenderCommandLine(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.json")
	_ = os.WriteFile(spec, []byte(`{"prompt":"x","durationFrames":20,"windowFrames":13,"overlapFrames":4,"width":64,"height":64,"steps":2,"fps":24}`), 0o644)
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"prompt":"x","durationFrames":20,"width":63,"height":64}`), 0o644)
	out := filepath.Join(dir, "out.mp4")
	cases := []struct {
		args    []string
		wantErr string
		stdout  string
	}{
		{[]string{"render", "--local", spec, "-o", out, "-q"}, "", "20 frames in 2 segments"},
		{[]string{"render", spec, "--local", "-o", out, "-q"}, "", "20 frames"},
		{[]string{"render", spec}, "want --local", ""},
		{[]string{"render", "--local", bad, "-q"}, "width", ""},
		{[]string{"render", "--local", filepath.Join(dir, "missing.json")}, "no such file", ""},
		{[]string{"frobnicate"}, "unknown command", ""},
		{[]string{"-h"}, "", ""},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		err := spoolctl.Main(context.Background(), c.args, &stdout, &stderr)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%v: %v (%s)", c.args, err, stderr.String())
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.wantErr)
		case !strings.Contains(stdout.String(), c.stdout):
			t.Errorf("%v: stdout %q, want %q", c.args, stdout.String(), c.stdout)
		}
	}
}
