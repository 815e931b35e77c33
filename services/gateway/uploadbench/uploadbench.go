// Package uploadbench measures media uploads for `make bench` on a
// devstack (embedded NATS, Postgres, MinIO) with the gateway as its own
// process:
//
//   - a video of about 1 GiB (uncompressed 640×360 frames in Matroska: made
//     in seconds, and every byte of it a packet ffprobe reads when it counts
//     them) is uploaded three ways, one after the other: a plain PUT to a
//     presigned MinIO URL, the reference (before the two flows and again
//     after them, timed together); POST /uploads, streamed through
//     the gateway, which hashes and probes it; and the presigned flow (a
//     PUT, then POST /uploads/{id}/complete, which copies it into place in
//     MinIO, then hashes and probes it at once). Each is timed to its answer, and the two
//     flows are taken as ratios to the plain PUT, in one run;
//   - the probe alone, run here on the plain PUT's object, for the share of
//     either flow that is ffprobe reading the file;
//   - the gateway process's peak RSS (VmHWM) over both flows.
package uploadbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spoolvideo/spool/libs/apikey"
	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/media"
)

// Upload is the "upload" object of bench/results.json.
type Upload struct {
	Bytes             int64   `json:"bytes"`
	Frames            int64   `json:"frames"`
	PlainMBPerS       float64 `json:"plain_put_mb_per_s"`
	GatewayMBPerS     float64 `json:"gateway_mb_per_s"`
	PresignedMBPerS   float64 `json:"presigned_mb_per_s"`
	GatewayRatio      float64 `json:"gateway_ratio"`   // gateway ÷ plain PUT
	PresignedRatio    float64 `json:"presigned_ratio"` // presigned flow ÷ plain PUT
	ProbeS            float64 `json:"probe_s"`
	PresignedPutS     float64 `json:"presigned_put_s"`
	CompleteS         float64 `json:"complete_s"`
	PeakRSSMB         float64 `json:"peak_rss_mb"`
	PeakRSSStreamedMB float64 `json:"peak_rss_streamed_mb"` // after the streamed upload alone
	IdleRSSMB         float64 `json:"idle_rss_mb"`
}

// Options size the run; Short is CI's smoke form (64 MiB instead of 1 GiB).
type Options struct {
	Short bool
	// Bytes is the video's size, about; 0 means 1 GiB (64 MiB when Short).
	Bytes int64
	// GatewayBinary is a built spool-gateway; empty builds one.
	GatewayBinary string
	Log           io.Writer
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

const (
	width, height, fps = 640, 360, 24
	frameBytes         = width * height * 3 / 2 // yuv420p
)

// Run runs the benchmark.
func Run(ctx context.Context, o Options) (Upload, error) {
	size := o.Bytes
	if size == 0 {
		size = 1 << 30
		if o.Short {
			size = 64 << 20
		}
	}
	dir, err := os.MkdirTemp("", "spool-upload-bench")
	if err != nil {
		return Upload{}, err
	}
	defer os.RemoveAll(dir)
	bin, err := gatewayBinary(ctx, o.GatewayBinary, dir)
	if err != nil {
		return Upload{}, err
	}
	frames := max(size/frameBytes, 1)
	video := filepath.Join(dir, "video.mkv")
	o.logf("making a %d MB video: %d uncompressed %dx%d frames", size>>20, frames, width, height)
	if out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
		"-i", fmt.Sprintf("testsrc=size=%dx%d:rate=%d", width, height, fps), "-frames:v", strconv.FormatInt(frames, 10),
		"-c:v", "rawvideo", "-pix_fmt", "yuv420p", video).CombinedOutput(); err != nil {
		return Upload{}, fmt.Errorf("upload bench: ffmpeg: %w\n%s", err, out)
	}
	st, err := os.Stat(video)
	if err != nil {
		return Upload{}, err
	}
	res := Upload{Bytes: st.Size(), Frames: frames}

	stack, err := devstack.Start(ctx, devstack.Options{NATS: true, Postgres: true, MinIO: true})
	if err != nil {
		return Upload{}, err
	}
	defer stack.Stop()
	bl, err := blob.New(stack.S3Config())
	if err != nil {
		return Upload{}, err
	}
	if err := bl.EnsureBucket(ctx); err != nil {
		return Upload{}, err
	}
	addr, err := freeAddr()
	if err != nil {
		return Upload{}, err
	}
	env, err := stack.ServiceEnv(bus.RoleGateway, "", "")
	if err != nil {
		return Upload{}, err
	}
	cmd := exec.CommandContext(ctx, bin)
	key, _, err := apikey.Mint("")
	if err != nil {
		return Upload{}, err
	}
	cmd.Env = append(append(os.Environ(), env...), "SPOOL_LOG_LEVEL=warn", "SPOOL_GATEWAY_ADMIN_KEY="+key,
		"SPOOL_GATEWAY_URL_KEY="+apikey.NewSecret(), "SPOOL_GATEWAY_ADDR="+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return Upload{}, fmt.Errorf("start spool-gateway: %w", err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	api := "http://" + addr
	if err := waitHealthy(ctx, api); err != nil {
		return Upload{}, err
	}
	if res.IdleRSSMB, err = rss(cmd.Process.Pid, "VmRSS:"); err != nil {
		return Upload{}, err
	}
	mb := float64(res.Bytes) / (1 << 20)

	// The reference: one PUT of the file to a presigned URL, before the
	// flows and again after them (MinIO writes slower as the page cache
	// fills), timed together.
	plainKey := blob.Key("bench/plain.mkv")
	u, err := bl.PresignPut(ctx, plainKey, time.Hour)
	if err != nil {
		return Upload{}, err
	}
	var plain time.Duration
	plainPut := func() error {
		o.logf("plain PUT of %.0f MB to MinIO", mb)
		d, err := timed(func() error { return put(ctx, u.String(), video) })
		plain += d
		return err
	}
	if err := plainPut(); err != nil {
		return Upload{}, err
	}
	o.logf("probe alone")
	g, err := bl.PresignGet(ctx, plainKey, time.Hour)
	if err != nil {
		return Upload{}, err
	}
	var p media.UploadProbe
	probe, err := timed(func() (err error) { p, err = media.ProbeUpload(ctx, g.String(), media.UploadLimits{}); return err })
	if err != nil {
		return Upload{}, err
	}
	if p.Frames != frames {
		return Upload{}, fmt.Errorf("upload bench: the probe counts %d frames, want %d", p.Frames, frames)
	}
	res.ProbeS = probe.Seconds()
	if err := bl.Delete(ctx, plainKey); err != nil {
		return Upload{}, err
	}

	o.logf("POST /uploads, streamed through the gateway")
	var rec map[string]any
	streamedT, err := timed(func() (err error) {
		rec, err = post(ctx, key, api+"/uploads?tenant=streamed", "video/x-matroska", video, res.Bytes, http.StatusCreated)
		return err
	})
	if err != nil {
		return Upload{}, err
	}
	if rec["frames"] != float64(frames) || rec["bytes"] != float64(res.Bytes) {
		return Upload{}, fmt.Errorf("upload bench: the streamed upload is %v", rec)
	}
	res.GatewayMBPerS = mb / streamedT.Seconds()
	if res.PeakRSSStreamedMB, err = rss(cmd.Process.Pid, "VmHWM:"); err != nil {
		return Upload{}, err
	}

	o.logf("the presigned flow: announce, PUT, complete")
	var putT, completeT time.Duration
	presigned, err := timed(func() error {
		announce := fmt.Sprintf(`{"bytes":%d,"content_type":"video/x-matroska"}`, res.Bytes)
		a, err := postJSON(ctx, key, api+"/uploads?tenant=presigned", announce)
		if err != nil {
			return err
		}
		if putT, err = timed(func() error { return put(ctx, fmt.Sprint(a["upload_url"]), video) }); err != nil {
			return err
		}
		completeT, err = timed(func() (err error) {
			rec, err = post(ctx, key, api+fmt.Sprint(a["complete_url"])+"?tenant=presigned", "", "", 0, http.StatusCreated)
			return err
		})
		return err
	})
	if err != nil {
		return Upload{}, err
	}
	if rec["frames"] != float64(frames) {
		return Upload{}, fmt.Errorf("upload bench: the presigned upload is %v", rec)
	}
	res.PresignedMBPerS, res.PresignedPutS, res.CompleteS = mb/presigned.Seconds(), putT.Seconds(), completeT.Seconds()
	if err := plainPut(); err != nil {
		return Upload{}, err
	}
	res.PlainMBPerS = 2 * mb / plain.Seconds()
	res.GatewayRatio, res.PresignedRatio = res.GatewayMBPerS/res.PlainMBPerS, res.PresignedMBPerS/res.PlainMBPerS
	if res.PeakRSSMB, err = rss(cmd.Process.Pid, "VmHWM:"); err != nil {
		return Upload{}, err
	}
	o.logf("upload: %+v", res)
	return res, nil
}

func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

// put PUTs the file at path to url in one request.
func put(ctx context.Context, url, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, f)
	if err != nil {
		return err
	}
	req.ContentLength = st.Size()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("upload bench: PUT: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("upload bench: PUT: %s: %s", resp.Status, msg)
	}
	return nil
}

// post POSTs the file at path (none when empty) as ctype, with the API
// key, and decodes the JSON answer, which must have status want.
func post(ctx context.Context, key, url, ctype, path string, size int64, want int) (map[string]any, error) {
	var body io.Reader = http.NoBody
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		body = f
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+key)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	return decode(resp, err, want)
}

func postJSON(ctx context.Context, key, url, body string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	return decode(resp, err, http.StatusCreated)
}

// decode reads a JSON answer that must have status want.
func decode(resp *http.Response, err error, want int) (map[string]any, error) {
	if err != nil {
		return nil, fmt.Errorf("upload bench: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return nil, fmt.Errorf("upload bench: %s %s: %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, bytes.TrimSpace(data))
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("upload bench: the answer: %w", err)
	}
	return v, nil
}

// waitHealthy waits for the gateway's /health to answer 200.
func waitHealthy(ctx context.Context, api string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(api + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("upload bench: the gateway at %s is not healthy after 30 s", api)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// rss reads a field of a process's status (VmRSS, VmHWM), in MB.
func rss(pid int, field string) (float64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("upload bench: %s: %w", field, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("upload bench: %s %q: %w", field, rest, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("upload bench: no %s for process %d", field, pid)
}

// gatewayBinary returns bin, or builds cmd/spool-gateway into dir.
func gatewayBinary(ctx context.Context, bin, dir string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	bin = filepath.Join(dir, "spool-gateway")
	pkg := "./services/gateway/cmd/spool-gateway"
	if _, err := os.Stat(pkg); err != nil {
		pkg = "./cmd/spool-gateway" // run from services/gateway
	}
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("build spool-gateway: %w\n%s", err, out)
	}
	return bin, nil
}
