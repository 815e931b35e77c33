package spoolctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/services/spoolctl/render"
)

func runRender(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("render", "--local [flags] spec.json", stderr)
	local := fs.Bool("local", false, "render in this process, with no NATS, Postgres or MinIO (required: the only mode)")
	out := fs.String("o", "out.mp4", "output MP4 file")
	catalog := fs.String("catalog", os.Getenv("SPOOL_CATALOG"), "model catalog file replacing the shipped one (default $SPOOL_CATALOG); the spec's model, from it, chooses the backend")
	ef := addEngineFlags(fs, "to render with (default: the spec's model); -model replaces the spec's")
	codec := fs.String("codec", "h264", "codec of the fragments: h264 or lossless (as SPOOL_WORKER_CODEC)")
	quiet := fs.Bool("q", false, "no progress on stderr")
	image := fs.String("image", "", "image file standing in for the spec's image upload (image to video): the same bytes give the same frames as the uploaded image")
	video := fs.String("video", "", "video file standing in for the spec's video upload (extension): the same bytes give the same frames as the uploaded video")
	audio := fs.String("audio", "", "audio file standing in for the spec's audio upload (an audio-driven model such as ref-talk): the same bytes give the same frames and sound as the uploaded audio")
	reference := fs.String("reference", "", "image or video file standing in for the spec's reference upload (a talking head's avatar)")
	pos, err := parse(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	if !*local || len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("spoolctl render: want --local and one spec file")
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return fmt.Errorf("spoolctl render: %w", err)
	}
	h := nats.Header{}
	h.Set(bus.HeaderContentType, bus.ContentJSON)
	spec, err := bus.DecodeJobSpec(data, h)
	if err != nil {
		return fmt.Errorf("spoolctl render: %s: %w", pos[0], err)
	}
	c, err := media.CodecByName(*codec)
	if err != nil {
		return fmt.Errorf("spoolctl render: %w", err)
	}
	start := time.Now()
	cat, err := jobspec.LoadCatalog(*catalog)
	if err != nil {
		return fmt.Errorf("spoolctl render: %w", err)
	}
	models, err := ef.models(cat)
	if err != nil {
		return fmt.Errorf("spoolctl render: %w", err)
	}
	switch {
	case *ef.model != "" || (len(models) == 1 && spec.GetModel() == ""):
		spec.Model = models[0]
	case len(models) > 0 && !slices.Contains(models, spec.GetModel()):
		return fmt.Errorf("spoolctl render: the spec's model %q does not run on -backend %s (its models: %s); name one with -model",
			spec.GetModel(), *ef.backend, strings.Join(models, ", "))
	}
	plugins, modelsDir := ef.dirs()
	o := render.Options{Params: ef.engineParams(cat, []string{spec.GetModel()}), PluginDir: plugins, ModelsDir: modelsDir, Codec: c, Catalog: cat,
		Image: *image, Video: *video, Audio: *audio, Reference: *reference}
	f, err := os.Create(*out)
	if err != nil {
		return fmt.Errorf("spoolctl render: %w", err)
	}
	var m *meter
	if !*quiet {
		m = newMeter(stderr)
		o.Progress = func(done, total int) {
			f := float64(done) / float64(max(total, 1))
			m.show(progress{fraction: f, done: done, total: total, eta: etaOf(f, time.Since(start))})
		}
	}
	res, err := render.Render(ctx, spec, f, o)
	if m != nil {
		m.close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(*out)
		return fmt.Errorf("spoolctl render: %w", err)
	}
	fmt.Fprintf(stdout, "%s: %d frames in %d segments, %d bytes, %s\n", *out, res.Frames, res.Segments, res.Bytes,
		time.Since(start).Round(time.Millisecond))
	return nil
}
