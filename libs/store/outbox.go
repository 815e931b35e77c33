package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// headersOf is m's headers as the outbox stores them (never NULL).
func headersOf(m OutboxMsg) map[string]string {
	if m.Headers == nil {
		return map[string]string{}
	}
	return m.Headers
}

// notBeforeOf is m's NotBefore as a query argument: NULL (now) when zero.
func notBeforeOf(m OutboxMsg) any {
	if m.NotBefore.IsZero() {
		return nil
	}
	return m.NotBefore
}

func insertOutbox(ctx context.Context, tx pgx.Tx, msgs []OutboxMsg) error {
	for _, m := range msgs {
		headers := headersOf(m)
		if _, err := tx.Exec(ctx, `INSERT INTO outbox (msg_id, subject, payload, headers, not_before)
			VALUES ($1, $2, $3, $4, coalesce($5, now())) ON CONFLICT (msg_id) DO NOTHING`,
			m.MsgID, m.Subject, m.Payload, headers, notBeforeOf(m)); err != nil {
			return fmt.Errorf("insert outbox %s: %w", m.MsgID, err)
		}
	}
	return nil
}

// AddOutbox queues messages to publish (outside a state change).
func (s *Store) AddOutbox(ctx context.Context, msgs ...OutboxMsg) error {
	return s.tx(ctx, func(tx pgx.Tx) error { return insertOutbox(ctx, tx, msgs) })
}

// PublishOutbox hands up to limit unsent rows, oldest first, to publish,
// and marks those it accepts as sent, all in one transaction that holds the
// rows locked (SKIP LOCKED), so concurrent publishers never take the same
// row. publish returns how many of the rows, from the first, it sent; rows
// after those stay unsent for a later call. It returns that count.
func (s *Store) PublishOutbox(ctx context.Context, limit int, publish func([]OutboxMsg) (int, error)) (int, error) {
	var sent int
	var perr error
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, msg_id, subject, payload, headers FROM outbox
			WHERE sent_at IS NULL AND not_before <= now() ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return fmt.Errorf("claim outbox: %w", err)
		}
		msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxMsg, error) {
			var m OutboxMsg
			err := r.Scan(&m.ID, &m.MsgID, &m.Subject, &m.Payload, &m.Headers)
			return m, err
		})
		if err != nil || len(msgs) == 0 {
			return err
		}
		var n int
		n, perr = publish(msgs)
		n = max(0, min(n, len(msgs)))
		ids := make([]int64, n)
		for i := range n {
			ids[i] = msgs[i].ID
		}
		if _, err := tx.Exec(ctx, `UPDATE outbox SET sent_at = now() WHERE id = ANY($1)`, ids); err != nil {
			return fmt.Errorf("mark outbox sent: %w", err)
		}
		sent = n
		return nil // commit what was sent even when publishing stopped early
	})
	if err != nil {
		return 0, err
	}
	if perr != nil {
		return sent, fmt.Errorf("store: publish outbox: %w", perr)
	}
	return sent, nil
}

// NextOutbox is when the earliest unsent row becomes due; zero when none.
func (s *Store) NextOutbox(ctx context.Context) (time.Time, error) {
	var t *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT min(not_before) FROM outbox WHERE sent_at IS NULL`).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("store: next outbox: %w", err)
	}
	if t == nil {
		return time.Time{}, nil
	}
	return *t, nil
}

// UnsentOutbox counts rows not yet published.
func (s *Store) UnsentOutbox(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count outbox: %w", err)
	}
	return n, nil
}

// MarkSent marks outbox rows as sent by message id, after the caller
// published them straight after their commit; the outbox loop publishes any
// row left unmarked by a crash again, and the Nats-Msg-Id makes that a no-op.
func (s *Store) MarkSent(ctx context.Context, msgIDs ...string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE outbox SET sent_at = now() WHERE msg_id = ANY($1) AND sent_at IS NULL`, msgIDs); err != nil {
		return fmt.Errorf("store: mark outbox sent: %w", err)
	}
	return nil
}
