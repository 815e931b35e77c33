package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spoolvideo/spool/libs/jobspec"
)

// UploadState is the life cycle of an upload: pending until its bytes are
// stored and probed, then ready.
type UploadState string

// Upload states.
const (
	UploadPending UploadState = "pending"
	UploadReady   UploadState = "ready"
)

// Upload kinds.
const (
	UploadImage = "image"
	UploadVideo = "video"
	UploadAudio = "audio"
)

// Upload is a row of uploads: a media file of a tenant, with what its probe
// found. The probe's fields are zero while the upload is pending, and those
// that do not apply to its kind stay zero (an image has no fps, a video
// without sound no sample rate).
type Upload struct {
	ID          string // "up-" then a-z, 0-9
	Tenant      string
	State       UploadState
	ObjectKey   string // uploads/<tenant>/<id>/source
	ContentType string // as the client declared it

	Kind       string // image, video or audio; "" while pending
	Codec      string // of the video stream, or the audio stream of an audio file
	Width      int
	Height     int
	FPS        float64
	Frames     int64 // video packets counted
	DurationS  float64
	SampleRate int // Hz, of the audio stream
	Channels   int
	SHA256     string // hex, of the stored bytes
	Bytes      int64
	// MaxBytes is a presigned PUT's announced size: the most it may store.
	MaxBytes int64
	// Probe is the probe as the API returns it (JSON), nil while pending.
	Probe json.RawMessage

	CreatedAt   time.Time
	CompletedAt *time.Time // when it became ready
	ExpiresAt   *time.Time // pending: when its presigned PUT lapses
	LastUsedAt  time.Time
	DeletedAt   *time.Time // its objects were removed; the row stays
	// SameAs is, for a pending presigned upload whose bytes a tenant's
	// ready upload already held, that upload's id: completing it answers
	// with that one.
	SameAs string
}

// UploadProbe is what marking an upload ready records: its bytes' digest
// and size, and what the probe found in them.
type UploadProbe struct {
	Kind       string
	Codec      string
	Width      int
	Height     int
	FPS        float64
	Frames     int64
	DurationS  float64
	SampleRate int
	Channels   int
	SHA256     string
	Bytes      int64
	Probe      json.RawMessage
}

// CreateUpload records a pending upload: u's ID, Tenant, ObjectKey,
// ContentType, MaxBytes (0 for none) and ExpiresAt (nil for none). An id
// that exists already is ErrConflict.
func (s *Store) CreateUpload(ctx context.Context, u Upload) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO uploads (id, tenant, state, object_key, content_type, max_bytes, expires_at)
		VALUES ($1, $2, 'pending', $3, $4, $5, $6)`, u.ID, u.Tenant, u.ObjectKey, u.ContentType, nullable(u.MaxBytes), u.ExpiresAt)
	if isUniqueViolation(err, "uploads_pkey") {
		return fmt.Errorf("store: upload %s: %w", u.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: create upload %s: %w", u.ID, err)
	}
	return nil
}

// MarkUploadReady records the probe of pending upload (tenant, id) and
// makes it ready, unless the tenant already has a ready upload of the same
// bytes (SHA256): then that upload is returned instead, the caller deletes
// the object it stored, and the pending row is deleted (streamed) or kept
// pending with SameAs naming that upload (presigned: see SameAs). Concurrent calls
// for the same bytes leave one ready upload; each other call returns it.
//
// created reports whether this call made (tenant, id) ready. When it did
// not, the returned upload is either another one (u.ID != id: the same
// bytes, stored before) or this one, made ready by an earlier call (its
// object is the upload's: keep it). An upload that is not there, or is
// another tenant's, is ErrNotFound.
func (s *Store) MarkUploadReady(ctx context.Context, tenant, id string, p UploadProbe) (u Upload, created bool, err error) {
	if p.Kind == "" || p.SHA256 == "" || p.Bytes <= 0 {
		return Upload{}, false, fmt.Errorf("store: upload %s: a kind, sha256 and size are required to make it ready", id)
	}
	probe := p.Probe
	if len(probe) == 0 {
		probe = json.RawMessage("{}")
	}
	// A concurrent upload of the same bytes may commit between the look-up
	// and the update: the unique index then refuses the update, and the
	// next round finds that upload.
	for range 3 {
		err = s.tx(ctx, func(tx pgx.Tx) error {
			created = false
			cur, err := scanUpload(tx.QueryRow(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = $1 AND tenant = $2 FOR UPDATE`, id, tenant))
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("upload %s of tenant %s: %w", id, tenant, ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("upload %s: %w", id, err)
			}
			if cur.State == UploadReady {
				u = cur
				return nil
			}
			if gone, err := claimed(ctx, tx, id); err != nil || gone || cur.DeletedAt != nil {
				return errors.Join(err, fmt.Errorf("upload %s lapsed: retention has claimed it: %w", id, ErrConflict))
			}
			same, err := scanUpload(tx.QueryRow(ctx, `SELECT `+uploadColumns+` FROM uploads
				WHERE tenant = $1 AND sha256 = $2 AND state = 'ready' AND deleted_at IS NULL`, tenant, p.SHA256))
			switch {
			case err == nil:
				// The same bytes: that upload is used again, unless
				// retention is deleting it (then try again once it is gone).
				if gone, err := claimed(ctx, tx, same.ID); err != nil || gone {
					return errors.Join(err, fmt.Errorf("upload %s of the same bytes is being deleted: %w", same.ID, ErrConflict))
				}
				// A presigned duplicate stays pending, answering with that
				// upload, until its URL lapses and retention deletes what
				// it may have let in since; a streamed one goes.
				var err error
				if cur.MaxBytes > 0 {
					_, err = tx.Exec(ctx, `UPDATE uploads SET same_as = $2 WHERE id = $1`, id, same.ID)
				} else {
					_, err = tx.Exec(ctx, `DELETE FROM uploads WHERE id = $1`, id)
				}
				if err != nil {
					return fmt.Errorf("retire duplicate upload %s: %w", id, err)
				}
				if err := tx.QueryRow(ctx, `UPDATE uploads SET last_used_at = now() WHERE id = $1 RETURNING last_used_at`,
					same.ID).Scan(&same.LastUsedAt); err != nil {
					return fmt.Errorf("touch upload %s: %w", same.ID, err)
				}
				u = same
				return nil
			case !errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("uploads of %s by sha256: %w", tenant, err)
			}
			u, err = scanUpload(tx.QueryRow(ctx, `UPDATE uploads SET state = 'ready', kind = $2, codec = $3, width = $4, height = $5,
				fps = $6, frames = $7, duration_s = $8, sample_rate = $9, channels = $10, sha256 = $11, bytes = $12, probe = $13,
				completed_at = now(), expires_at = NULL, last_used_at = now()
				WHERE id = $1 RETURNING `+uploadColumns, id, p.Kind, nullable(p.Codec), nullable(p.Width), nullable(p.Height),
				nullable(p.FPS), nullable(p.Frames), nullable(p.DurationS), nullable(p.SampleRate), nullable(p.Channels),
				p.SHA256, p.Bytes, probe))
			if err != nil {
				return fmt.Errorf("make upload %s ready: %w", id, err)
			}
			created = true
			return nil
		})
		if !isUniqueViolation(err, "uploads_tenant_sha256") {
			break
		}
	}
	if err != nil {
		return Upload{}, false, err
	}
	return u, created, nil
}

// DeleteUpload removes a pending upload's row, when its bytes were refused
// or never came; a ready upload is kept (it is the lineage of jobs) and
// reported as ErrConflict. Deleting one that is not there succeeds.
func (s *Store) DeleteUpload(ctx context.Context, tenant, id string) error {
	var state UploadState
	err := s.pool.QueryRow(ctx, `WITH gone AS (DELETE FROM uploads WHERE id = $1 AND tenant = $2 AND state = 'pending' RETURNING state)
		SELECT coalesce((SELECT state FROM gone), (SELECT state FROM uploads WHERE id = $1 AND tenant = $2), '')`, id, tenant).Scan(&state)
	if err != nil {
		return fmt.Errorf("store: delete upload %s: %w", id, err)
	}
	if state == UploadReady {
		return fmt.Errorf("store: delete upload %s: it is ready: %w", id, ErrConflict)
	}
	return nil
}

// GetUpload returns the tenant's upload id. One that is not there, or is
// another tenant's, is ErrNotFound alike.
func (s *Store) GetUpload(ctx context.Context, tenant, id string) (Upload, error) {
	u, err := scanUpload(s.pool.QueryRow(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = $1 AND tenant = $2`, id, tenant))
	if errors.Is(err, pgx.ErrNoRows) {
		return Upload{}, fmt.Errorf("store: upload %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Upload{}, fmt.Errorf("store: upload %s: %w", id, err)
	}
	return u, nil
}

// FindReadyUpload returns the tenant's ready upload of the bytes whose
// SHA-256 is sha (hex), so that bytes uploaded again need no probe, and
// marks it used now; ErrNotFound when there is none, or retention has
// claimed it.
func (s *Store) FindReadyUpload(ctx context.Context, tenant, sha string) (Upload, error) {
	u, err := scanUpload(s.pool.QueryRow(ctx, `UPDATE uploads SET last_used_at = now()
		WHERE tenant = $1 AND sha256 = $2 AND state = 'ready' AND deleted_at IS NULL
		  AND (purge_claimed_until IS NULL OR purge_claimed_until < now())
		RETURNING `+uploadColumns, tenant, sha))
	if errors.Is(err, pgx.ErrNoRows) {
		return Upload{}, fmt.Errorf("store: upload of %s with sha256 %s: %w", tenant, sha, ErrNotFound)
	}
	if err != nil {
		return Upload{}, fmt.Errorf("store: upload of %s by sha256: %w", tenant, err)
	}
	return u, nil
}

// TouchUpload sets the upload's last_used_at to now, so that the janitor
// keeps it: a job that uses it calls this. ErrNotFound as GetUpload.
func (s *Store) TouchUpload(ctx context.Context, tenant, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE uploads SET last_used_at = now() WHERE id = $1 AND tenant = $2`, id, tenant)
	if err != nil {
		return fmt.Errorf("store: touch upload %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: touch upload %s: %w", id, ErrNotFound)
	}
	return nil
}

// ListUploadsParams filter and page ListUploads.
type ListUploadsParams struct {
	Tenant string      // required
	State  UploadState // "" for every state
	Limit  int         // 1..1000; 0 means 50
	// After is the previous page's cursor: list uploads older than it.
	After *Cursor
}

// ListUploads lists a tenant's uploads newest first, deleted ones
// included and presigned duplicates (SameAs) left out, one page at a time. The returned cursor is nil on the last
// page.
func (s *Store) ListUploads(ctx context.Context, p ListUploadsParams) ([]Upload, *Cursor, error) {
	if p.Tenant == "" {
		return nil, nil, errors.New("store: list uploads: a tenant is required")
	}
	if p.Limit == 0 {
		p.Limit = 50
	}
	if p.Limit < 1 || p.Limit > 1000 {
		return nil, nil, fmt.Errorf("store: list uploads: limit %d: want 1..1000", p.Limit)
	}
	var afterAt *time.Time
	afterID := ""
	if p.After != nil {
		afterAt, afterID = &p.After.CreatedAt, p.After.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+uploadColumns+` FROM uploads
		WHERE tenant = $1 AND same_as IS NULL AND ($2 = '' OR state = $2) AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
		ORDER BY created_at DESC, id DESC LIMIT $5`, p.Tenant, string(p.State), afterAt, afterID, p.Limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("store: list uploads: %w", err)
	}
	ups, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Upload, error) { return scanUpload(r) })
	if err != nil {
		return nil, nil, fmt.Errorf("store: list uploads: %w", err)
	}
	var next *Cursor
	if len(ups) > p.Limit {
		ups = ups[:p.Limit]
		last := ups[len(ups)-1]
		next = &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return ups, next, nil
}

const uploadColumns = `id, tenant, state, object_key, content_type, coalesce(kind, ''), coalesce(codec, ''),
	coalesce(width, 0), coalesce(height, 0), coalesce(fps, 0), coalesce(frames, 0), coalesce(duration_s, 0),
	coalesce(sample_rate, 0), coalesce(channels, 0), coalesce(sha256, ''), coalesce(bytes, 0), coalesce(max_bytes, 0), probe,
	created_at, completed_at, expires_at, last_used_at, deleted_at, coalesce(same_as, '')`

func scanUpload(row pgx.Row) (Upload, error) {
	var u Upload
	var probe []byte
	err := row.Scan(&u.ID, &u.Tenant, &u.State, &u.ObjectKey, &u.ContentType, &u.Kind, &u.Codec, &u.Width, &u.Height, &u.FPS,
		&u.Frames, &u.DurationS, &u.SampleRate, &u.Channels, &u.SHA256, &u.Bytes, &u.MaxBytes, &probe,
		&u.CreatedAt, &u.CompletedAt, &u.ExpiresAt, &u.LastUsedAt, &u.DeletedAt, &u.SameAs)
	if len(probe) > 0 {
		u.Probe = probe
	}
	return u, err
}

// claimed reports whether a janitor holds a lease on the upload to delete
// its objects.
func claimed(ctx context.Context, tx pgx.Tx, id string) (bool, error) {
	var c bool
	err := tx.QueryRow(ctx, `SELECT coalesce(purge_claimed_until > now(), false) FROM uploads WHERE id = $1`, id).Scan(&c)
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", id, err)
	}
	return c, nil
}

// isUniqueViolation reports whether err is a unique violation of the
// named constraint or index.
func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}

// Upload is the tenant's upload id as job validation sees it, making the
// store a jobspec.Uploads: only a ready upload that is not deleted, nor
// being deleted by retention, exists for a job; any other, and another
// tenant's, wraps jobspec.ErrNoUpload with the reason.
func (s *Store) Upload(ctx context.Context, tenant, id string) (jobspec.Upload, error) {
	var u jobspec.Upload
	var state UploadState
	var deleted *time.Time
	var purging bool
	err := s.pool.QueryRow(ctx, `SELECT id, tenant, coalesce(kind, ''), coalesce(duration_s, 0), state, deleted_at,
		coalesce(purge_claimed_until > now(), false) FROM uploads WHERE id = $1 AND tenant = $2`, id, tenant).
		Scan(&u.ID, &u.Tenant, &u.Kind, &u.DurationS, &state, &deleted, &purging)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return jobspec.Upload{}, fmt.Errorf("%w: there is none with this id", jobspec.ErrNoUpload)
	case err != nil:
		return jobspec.Upload{}, fmt.Errorf("store: upload %s: %w", id, err)
	case deleted != nil:
		return jobspec.Upload{}, fmt.Errorf("%w: it was deleted by retention at %s", jobspec.ErrNoUpload, deleted.UTC().Format(time.RFC3339))
	case purging:
		return jobspec.Upload{}, fmt.Errorf("%w: it has expired and is being deleted by retention", jobspec.ErrNoUpload)
	case state != UploadReady:
		return jobspec.Upload{}, fmt.Errorf("%w: it is not completed (POST /uploads/%s/complete)", jobspec.ErrNoUpload, id)
	}
	return u, nil
}
