package render_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/spoolctl/render"
)

// makeMedia makes the test's inputs with ffmpeg: a 2 s 30 fps 320x240
// video and a 400x300 image.
func makeMedia(t *testing.T) (video, image string) {
	t.Helper()
	dir := t.TempDir()
	video, image = filepath.Join(dir, "in.mp4"), filepath.Join(dir, "in.png")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p", video},
		{"-f", "lavfi", "-i", "testsrc=size=400x300", "-frames:v", "1", image},
	} {
		if b, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
		}
	}
	return video, image
}

// storeUpload records file as a ready upload of tenant.
func storeUpload(t *testing.T, sys *system, tenant, file, kind string, durationS float64) string {
	t.Helper()
	return sys.Clients.Upload(t, tenant, file, kind, durationS)
}

// TestMediaJobsEqualOracle: image to video in chain and independent mode,
// and the extension of a video with and without its input, each over the
// real NATS, Postgres, MinIO and ffmpeg, decode to the frames of `spoolctl
// render --local -image/-video` of the same files; with include_input the
// input's 48 frames (2 s resampled to 24 fps) come first, then exactly the
// asked 30.
func TestMediaJobsEqualOracle(t *testing.T) {
	sys := newSystem(t, 0, 2)
	video, image := makeMedia(t)
	// A tenant of this run's: the same bytes uploaded by an earlier run are
	// another tenant's upload, with variants of their own.
	tenant := fmt.Sprintf("media-%x", time.Now().UnixNano())
	vid := storeUpload(t, sys, tenant, video, "video", 2)
	img := storeUpload(t, sys, tenant, image, "image", 0)
	common := `"tenant":"` + tenant + `","prompt":"a red fox in the snow","durationFrames":30,"windowFrames":13,"overlapFrames":5,` +
		`"width":96,"height":64,"steps":3,"seed":3,"fps":24`
	cases := []struct {
		id, media string
		o         render.Options
		frames    int
	}{
		{"i2v-chain", `"image":"` + img + `","mode":"MODE_CHAIN"`, render.Options{Image: image}, 30},
		{"i2v-indep", `"image":"` + img + `","mode":"MODE_INDEPENDENT","fit":"FIT_PAD"`, render.Options{Image: image}, 30},
		{"extend", `"video":"` + vid + `"`, render.Options{Video: video}, 30},
		{"extend-input", `"video":"` + vid + `","includeInput":true,"fit":"FIT_SCALE"`, render.Options{Video: video}, 48 + 30},
	}
	for _, c := range cases {
		spec := `{"id":"` + c.id + `",` + common + `,` + c.media + `}`
		sys.submit(t, spec)
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			spec := `{"id":"` + c.id + `",` + common + `,` + c.media + `}`
			sys.compareWith(t, c.id, spec, c.frames, c.o, 90*time.Second)
		})
	}
	// A second job with the same image and frame reuses intake's objects:
	// the upload's prefix holds its source and one derived variant.
	objs, err := sys.Blob.List(context.Background(), blob.Key("uploads/"+tenant+"/"+img+"/"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 { // source, and image.rgb for the crop and the pad fits
		t.Errorf("objects under the image upload: %v", objs)
	}
}

// TestMediaJobsRejected: a spec naming another tenant's upload, a missing
// one, a video given as image and an independent extension are each
// rejected with the field named.
func TestMediaJobsRejected(t *testing.T) {
	sys := newSystem(t, 0, 0)
	video, image := makeMedia(t)
	vid := storeUpload(t, sys, "default", video, "video", 2)
	other := storeUpload(t, sys, "acme", image, "image", 0)
	const common = `"prompt":"a fox","durationFrames":30,"windowFrames":13,"overlapFrames":5,"width":96,"height":64,"steps":3,"fps":24`
	for _, c := range []struct{ id, media, field, says string }{
		{"rej-tenant", `"image":"` + other + `"`, "image", "a ready upload of tenant default"},
		{"rej-missing", `"image":"up-nothere"`, "image", "there is none"},
		{"rej-kind", `"image":"` + vid + `"`, "image", "is a video upload"},
		{"rej-indep", `"video":"` + vid + `","mode":"MODE_INDEPENDENT"`, "video", "chain mode only"},
		{"rej-key", `"image":"../other/final.mp4"`, "image", "the id of an upload"},
	} {
		sys.submit(t, `{"id":"`+c.id+`",`+common+`,`+c.media+`}`)
		deadline := time.Now().Add(20 * time.Second)
		for {
			j, err := sys.Store.GetJob(context.Background(), c.id)
			if err == nil && j.State == store.JobRejected {
				if j.ErrorField != c.field || !strings.Contains(j.ErrorMessage, c.says) {
					t.Errorf("%s: rejected on %s: %s; want %s saying %q", c.id, j.ErrorField, j.ErrorMessage, c.field, c.says)
				}
				break
			}
			if err == nil && j.State.Terminal() || time.Now().After(deadline) {
				t.Fatalf("%s: not rejected: %+v %v", c.id, j.State, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestBatchSharesOneImage: an image uploaded once through the gateway and
// 500 jobs of one POST /batches made from it: every job is accepted and
// succeeds, and the upload's prefix holds its bytes once and the image
// fitted to the jobs' frame once.
func TestBatchSharesOneImage(t *testing.T) {
	sys := newSystem(t, 0, 2)
	_, image := makeMedia(t)
	data, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	// A tenant of this run's: the same bytes uploaded by another test, or
	// an earlier run, are another upload.
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	tenant := "batch-" + run
	resp := sys.Do(t, "POST", "/uploads?tenant="+tenant, "image/png", bytes.NewReader(data))
	var up struct {
		ID   string `json:"id"`
		Kind string `json:"kind"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&up); err != nil || resp.StatusCode != http.StatusCreated || up.Kind != "image" {
		t.Fatalf("upload: %d %+v %v", resp.StatusCode, up, err)
	}
	resp.Body.Close()
	const n = 500
	var body bytes.Buffer
	for i := range n {
		fmt.Fprintf(&body, `{"id":"b%s-%d","tenant":"%s","prompt":"a red fox","image":"%s","durationFrames":2,"windowFrames":2,"overlapFrames":1,`+
			`"width":64,"height":64,"steps":1,"seed":%d,"fps":24,"mode":"MODE_INDEPENDENT"}`+"\n", run, i, tenant, up.ID, i)
	}
	resp = sys.Do(t, "POST", "/batches?id=b"+run+"&tenant="+tenant, "application/x-ndjson", &body)
	var batch struct {
		Jobs []struct {
			ID    string `json:"id"`
			Error any    `json:"error"`
		} `json:"jobs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&batch); err != nil || resp.StatusCode != http.StatusCreated || len(batch.Jobs) != n {
		t.Fatalf("batch: %d, %d jobs, %v", resp.StatusCode, len(batch.Jobs), err)
	}
	resp.Body.Close()
	for _, j := range batch.Jobs {
		if j.Error != nil {
			t.Fatalf("a job of the batch was refused: %v", j.Error)
		}
	}
	for _, j := range batch.Jobs {
		waitSucceededWithin(t, sys.Store, j.ID, 3*time.Minute)
	}
	prefix := "uploads/" + tenant + "/" + up.ID + "/"
	objs, err := sys.Blob.List(context.Background(), blob.Key(prefix))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, string(o.Key))
	}
	want := []string{prefix + "derived/64x64-crop/image.rgb", prefix + "source"}
	if !slices.Equal(keys, want) {
		t.Fatalf("objects under the upload: %v, want %v", keys, want)
	}
}
