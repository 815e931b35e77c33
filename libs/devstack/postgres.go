package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// pgUser is the superuser initdb creates; connections trust it.
	pgUser = "spool"
	// pgDatabase is the database created for spool.
	pgDatabase = "spool"
	// pgReadyTimeout bounds the wait for the server to accept connections.
	pgReadyTimeout = 60 * time.Second
	// maxSocketPath is the longest unix socket path Postgres accepts (the
	// 108 bytes of sun_path, less the terminating zero).
	maxSocketPath = 107
)

// postgresServer is a local Postgres cluster, or a DSN given in the
// environment.
type postgresServer struct {
	dsn     string
	proc    *process // nil when the DSN came from the environment
	sockDir string   // removed on stop when it is not the data dir
	dataDir string
}

// startPostgres uses $SPOOL_PG_DSN when set; otherwise it initialises a
// cluster in dir/postgres/data (unless one is already there), starts it on
// 127.0.0.1:port (0 for a free port), and creates the spool database. The
// server runs with the test settings, unless the stack in dir is durable
// (pgSettings).
func startPostgres(ctx context.Context, f finder, dir string, port int, log *slog.Logger) (*postgresServer, error) {
	if dsn := f.getenv(pgDSNEnv); dsn != "" {
		log.Info("postgres: using $"+pgDSNEnv, "set", true)
		return &postgresServer{dsn: dsn}, nil
	}
	bin, err := f.postgres()
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	cred, err := pgCredential()
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	home := filepath.Join(dir, "postgres")
	data := filepath.Join(home, "data")
	logPath := filepath.Join(dir, "postgres.log")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := os.Chmod(home, 0o755); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := handOver(data, cred); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		cmd := exec.CommandContext(ctx, bin.initdb, "-D", data, "-U", pgUser, "-A", "trust",
			"-E", "UTF8", "--locale=C", "--no-sync")
		cmd.Dir = home
		if err := runOnce(ctx, "postgres: initdb", cmd, logPath, cred); err != nil {
			return nil, err
		}
	}
	sock, err := socketDir(data, cred)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	p := &postgresServer{sockDir: sock, dataDir: data}
	if port, err = portOrFree(port); err != nil {
		p.removeSocketDir()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	args := append([]string{"-D", data, "-p", strconv.Itoa(port), "-k", sock}, pgSettings(durableIn(dir))...)
	cmd := exec.Command(bin.postgres, args...)
	cmd.Dir = home
	// SIGQUIT is Postgres's immediate shutdown: it takes the backends down too.
	if p.proc, err = startProcess("postgres", cmd, logPath, syscall.SIGQUIT, cred); err != nil {
		p.removeSocketDir()
		return nil, err
	}
	host, portArg := "127.0.0.1", strconv.Itoa(port)
	err = waitFor(ctx, "postgres", pgReadyTimeout, p.proc, func(ctx context.Context) error {
		out, err := exec.CommandContext(ctx, bin.pgIsReady, "-h", host, "-p", portArg, "-U", pgUser, "-d", "postgres", "-t", "1").CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_isready: %w: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	})
	if err == nil {
		cmd := exec.CommandContext(ctx, bin.createdb, "-h", host, "-p", portArg, "-U", pgUser, pgDatabase)
		if err = runOnce(ctx, "postgres: createdb", cmd, logPath, nil); err != nil && strings.Contains(err.Error(), "already exists") {
			err = nil
		}
	}
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	p.dsn = fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", pgUser, host, port, pgDatabase)
	log.Info("postgres ready", "dsn", p.dsn, "data", data)
	return p, nil
}

// pgSettings are the server's settings, as postgres arguments. The test
// settings turn off fsync, synchronous_commit and full_page_writes: a crash
// of the machine may then lose or corrupt commits, which tests never need to
// survive. Durable keeps Postgres's defaults for those three, as a
// deployment runs it.
func pgSettings(durable bool) []string {
	args := []string{"-c", "listen_addresses=127.0.0.1", "-c", "shared_buffers=32MB", "-c", "max_connections=200"}
	if !durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	return args
}

// socketDir returns the directory of the server's unix socket: the data
// directory, or a new temporary one when the data directory's path is too
// long for a socket path.
func socketDir(data string, cred *syscall.Credential) (string, error) {
	if len(data)+len("/.s.PGSQL.65535") <= maxSocketPath {
		return data, nil
	}
	sock, err := os.MkdirTemp("", "spool-pgsock-")
	if err != nil {
		return "", fmt.Errorf("socket dir: %w", err)
	}
	if err := handOver(sock, cred); err != nil {
		os.RemoveAll(sock)
		return "", fmt.Errorf("socket dir: %w", err)
	}
	return sock, nil
}

func (p *postgresServer) removeSocketDir() {
	if p.sockDir != "" && p.sockDir != p.dataDir {
		os.RemoveAll(p.sockDir)
	}
}

// stop shuts the server down ("fast": it disconnects clients and aborts
// their transactions) and waits for it to exit.
func (p *postgresServer) stop() error {
	if p.proc == nil {
		return nil
	}
	defer p.removeSocketDir()
	if err := p.proc.stop(syscall.SIGINT); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// PostgresPID returns the process id of the stack's Postgres server (the
// postmaster, whose children are the backends), or 0 when the stack runs
// none of its own ($SPOOL_PG_DSN) or it is stopped. Benchmarks read its
// CPU time.
func (s *Stack) PostgresPID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pg == nil || s.pg.proc == nil {
		return 0
	}
	return s.pg.proc.cmd.Process.Pid
}
