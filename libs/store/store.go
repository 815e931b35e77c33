package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/spoolvideo/spool/libs/config"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Sentinel errors.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("state conflict")
)

// Store is the Postgres pool of a service.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// Option configures Open.
type Option func(*options) error

type options struct {
	log     *slog.Logger
	migrate bool
}

// WithLogger logs applied migrations.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("store: WithLogger: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithoutMigrations skips applying migrations (tools on a migrated DB).
func WithoutMigrations() Option {
	return func(o *options) error { o.migrate = false; return nil }
}

// Open connects, pings and migrates the database of cfg.
func Open(ctx context.Context, cfg config.Postgres, opts ...Option) (*Store, error) {
	o := options{log: slog.New(slog.DiscardHandler), migrate: true}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN.Reveal())
	if err != nil {
		// pgx's parse errors may quote the DSN, password included.
		return nil, errors.New("store: cannot parse SPOOL_PG_DSN (libpq URL or key=value string)")
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("store: pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: ping %s:%d/%s: %w", pc.ConnConfig.Host, pc.ConnConfig.Port, pc.ConnConfig.Database, err)
	}
	s := &Store{pool: pool, log: o.log}
	if o.migrate {
		if err := s.migrate(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close releases the pool.
func (s *Store) Close() { s.pool.Close() }

// Ping checks the database.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// SchemaVersion is the version of the last applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	fsys, err := migrationFiles()
	if err != nil {
		return 0, err
	}
	p, err := s.provider(fsys)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

// migrationFiles are the embedded migrations, one file per version.
func migrationFiles() (fs.FS, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return fsys, nil
}

// provider applies the migrations of fsys. A version missing below the
// newest applied one is applied too, out of order: branches add
// independent migrations, and a database may have run a later one before
// an earlier one existed.
func (s *Store) provider(fsys fs.FS) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("store: migration lock: %w", err)
	}
	db := stdlib.OpenDBFromPool(s.pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker), goose.WithAllowOutofOrder(true))
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return p, nil
}

func (s *Store) migrate(ctx context.Context) error {
	fsys, err := migrationFiles()
	if err != nil {
		return err
	}
	return s.migrateFrom(ctx, fsys)
}

// migrateFrom applies the migrations of fsys not applied yet.
func (s *Store) migrateFrom(ctx context.Context, fsys fs.FS) error {
	p, err := s.provider(fsys)
	if err != nil {
		return err
	}
	defer p.Close()
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for _, r := range res {
		s.log.Info("applied migration", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
	}
	return nil
}

// tx runs fn in a transaction, committing when fn returns nil. A deadlock
// or serialization failure, which Postgres resolves by aborting one of the
// transactions, is retried a few times: fn must be safe to run again.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for try := 0; try < 4; try++ {
		if err = pgx.BeginFunc(ctx, s.pool, fn); err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001") {
			break
		}
		time.Sleep(time.Duration(try+1) * 5 * time.Millisecond)
	}
	return fmt.Errorf("store: %w", err)
}

// Starting reports whether err is Postgres saying it cannot take
// connections for now: starting up, shutting down, or in recovery
// (SQLSTATE class 57P: cannot_connect_now, admin_shutdown,
// crash_shutdown).
func Starting(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "57P")
}
