package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// minioReadyTimeout bounds the wait for MinIO to report itself live and ready.
const minioReadyTimeout = 60 * time.Second

// minioServer is a MinIO server process.
type minioServer struct {
	proc     *process
	endpoint string // host:port, no scheme
}

// startMinIO starts MinIO serving dir/minio on 127.0.0.1:port (0 for a free
// port), building the binary first when it is missing and build is set.
func startMinIO(ctx context.Context, f finder, dir string, port int, build bool, log *slog.Logger) (*minioServer, error) {
	bin, err := f.minio()
	if errors.Is(err, ErrMissingBinary) && build {
		bin, err = buildMinIO(ctx, f, err, filepath.Join(dir, "minio-build.log"), log)
	}
	if err != nil {
		return nil, fmt.Errorf("minio: %w", err)
	}
	data := filepath.Join(dir, "minio")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, fmt.Errorf("minio: %w", err)
	}
	if port, err = portOrFree(port); err != nil {
		return nil, fmt.Errorf("minio: %w", err)
	}
	console, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("minio: console: %w", err)
	}
	endpoint := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "server", data,
		"--address", endpoint,
		"--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(console)),
		"--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+S3AccessKey,
		"MINIO_ROOT_PASSWORD="+S3SecretKey,
		"MINIO_CI_CD=on",                    // no root-drive warnings, no update checks
		"MINIO_UPDATE=off",                  // never phone home
		"MINIO_BROWSER=on",                  // the console is handy in dev
		"HOME="+filepath.Join(dir, "minio"), // config (~/.minio) stays in the stack
	)
	cmd.Dir = dir
	m := &minioServer{endpoint: endpoint}
	if m.proc, err = startProcess("minio", cmd, filepath.Join(dir, "minio.log"), syscall.SIGKILL, nil); err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: time.Second}
	err = waitFor(ctx, "minio", minioReadyTimeout, m.proc, func(ctx context.Context) error {
		for _, path := range []string{"/minio/health/live", "/minio/health/ready"} {
			if err := healthy(ctx, client, "http://"+endpoint+path); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		m.stop()
		return nil, fmt.Errorf("minio: %w", err)
	}
	log.Info("minio ready", "endpoint", endpoint, "data", data, "bin", bin)
	return m, nil
}

// healthy GETs url and wants 200 OK.
func healthy(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// stop sends SIGTERM and waits for MinIO to exit.
func (m *minioServer) stop() error {
	if err := m.proc.stop(syscall.SIGTERM); err != nil {
		return fmt.Errorf("minio: %w", err)
	}
	return nil
}
