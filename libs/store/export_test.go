package store

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"

	"github.com/jackc/pgx/v5"
)

// CreateTestDatabase creates an empty database next to the one of dsn and
// returns its DSN, so a test can watch migrations run from nothing.
func CreateTestDatabase(ctx context.Context, dsn, name string) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// MigrationFiles are the embedded migrations.
func MigrationFiles() (fs.FS, error) { return migrationFiles() }

// MigrateFrom applies the migrations of fsys to s's database.
func MigrateFrom(ctx context.Context, s *Store, fsys fs.FS) error { return s.migrateFrom(ctx, fsys) }
