package docker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// offlineImages answers BuildKit's image-config look-ups without a
// registry: every base image is a Linux image of the requested platform
// with the usual PATH. The lint rules that read the base image (undefined
// variables, platform mismatches) see that config; nothing is pulled.
type offlineImages struct{}

func (offlineImages) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	p := ocispecs.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		p = *opt.ImageOpt.Platform
	}
	cfg, err := json.Marshal(map[string]any{
		"os":           p.OS,
		"architecture": p.Architecture,
		"variant":      p.Variant,
		"config": map[string]any{
			"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}},
	})
	if err != nil {
		return "", "", nil, fmt.Errorf("image config for %s: %w", ref, err)
	}
	return ref, digest.FromBytes(cfg), cfg, nil
}

// sourceMap names the Dockerfile in the lint results; the linter needs no
// LLB definition of it.
func sourceMap(name string, src []byte) *llb.SourceMap {
	sm := llb.NewSourceMap(nil, name, "Dockerfile", src)
	sm.Definition = &llb.Definition{}
	return sm
}

// TestDockerfileLint runs BuildKit's own Dockerfile checks, the ones
// behind `docker build --check`, over every Dockerfile and fails on any
// warning. Each Dockerfile also says `# check=error=true`, so that a real
// build fails on them too.
func TestDockerfileLint(t *testing.T) {
	amd64 := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	for _, im := range images {
		t.Run(im.Dockerfile, func(t *testing.T) {
			df := parseDockerfile(t, im.Dockerfile)
			if d, _, _, ok := parser.ParseDirective("check", df.Source); !ok || d != "error=true" {
				t.Errorf("no `# check=error=true` directive on the first line (got %q)", d)
			}
			res, err := dockerfile2llb.DockerfileLint(context.Background(), df.Source, dockerfile2llb.ConvertOpt{
				Config:         dockerui.Config{BuildPlatforms: []ocispecs.Platform{amd64}},
				TargetPlatform: &amd64,
				MetaResolver:   offlineImages{},
				SourceMap:      sourceMap(im.Dockerfile, df.Source),
			})
			if err != nil {
				t.Fatalf("lint: %v", err)
			}
			if res.Error != nil {
				t.Errorf("lint: build error: %s", res.Error.Message)
			}
			for _, w := range res.Warnings {
				line := 0
				if w.Location != nil && len(w.Location.Ranges) > 0 {
					line = int(w.Location.Ranges[0].Start.Line)
				}
				t.Errorf("%s:%d: %s: %s (%s)", im.Dockerfile, line, w.RuleName, w.Detail, w.URL)
			}
		})
	}
}

// The linter must actually run: a Dockerfile with known faults yields
// their warnings through the same path.
func TestDockerfileLintCatches(t *testing.T) {
	bad := []byte("FROM golang:1.26.8-bookworm as build\nfrom scratch\nENV A 1\nWORKDIR rel\nCOPY --from=build /x /x\nENV B=$UNDEFINED\nCMD echo hi\n")
	amd64 := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	res, err := dockerfile2llb.DockerfileLint(context.Background(), bad, dockerfile2llb.ConvertOpt{
		Config:         dockerui.Config{BuildPlatforms: []ocispecs.Platform{amd64}},
		TargetPlatform: &amd64,
		MetaResolver:   offlineImages{},
		SourceMap:      sourceMap("bad.Dockerfile", bad),
	})
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, w := range res.Warnings {
		rules = append(rules, w.RuleName)
	}
	got := strings.Join(rules, " ")
	for _, want := range []string{"FromAsCasing", "ConsistentInstructionCasing", "LegacyKeyValueFormat",
		"WorkdirRelativePath", "JSONArgsRecommended", "UndefinedVar"} {
		if !strings.Contains(got, want) {
			t.Errorf("the linter did not report %s; it reported %s", want, got)
		}
	}
	var buf bytes.Buffer
	if err := res.PrintTo(&buf, nil); err != nil {
		t.Errorf("print lint results: %v", err)
	}
}
