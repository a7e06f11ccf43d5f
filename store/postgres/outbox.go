package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

// eventsChannel is the NOTIFY channel that tells every node of new events.
const eventsChannel = "ivsrt_events"

// appendEvents writes evs to the outbox within tx, in order, and sets their
// Seq. Their Time is kept at millisecond precision, in UTC, as the store
// keeps all times.
//
// A sequence alone would not keep readers in order: transactions draw seqs
// in one order and may commit in another, so a reader could see seq 8 and
// only later seq 7, and pass 7 over for good. So before drawing a seq, the
// transaction takes the outbox lock, a transaction-scoped advisory lock that
// it holds until it has committed (PostgreSQL makes a commit visible before
// it lets go of the transaction's locks). The writers of events thus draw
// seqs and commit one at a time, in seq order, and whatever a reader sees is
// a prefix of the stream. Events are appended last in each transaction, so
// the lock is held only for the inserts and the commit. It is the one lock
// taken after others, never before, so it cannot close a cycle of waits.
//
// The same transaction NOTIFYs the other nodes, which PostgreSQL delivers
// when it commits.
func appendEvents(ctx context.Context, tx *Tx, evs ...*ivsrt.StreamEvent) error {
	if len(evs) == 0 {
		return nil
	}
	if !tx.locked {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, outboxLock); err != nil {
			return fmt.Errorf("lock outbox: %w", err)
		}
		tx.locked = true
	}
	for _, ev := range evs {
		body, err := storecore.EncodeDetail(ev)
		if err != nil {
			return err
		}
		ev.Time = ms(ev.Time)
		if err := tx.QueryRow(ctx, `INSERT INTO outbox (id, stage_arn, detail_type, event_name, body, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`,
			ev.ID, string(ev.StageARN), ev.DetailType, ev.EventName(), body, ev.Time).Scan(&ev.Seq); err != nil {
			return fmt.Errorf("append event: %w", err)
		}
	}
	if !tx.appended {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, eventsChannel); err != nil {
			return fmt.Errorf("notify events: %w", err)
		}
		tx.appended = true
	}
	return nil
}

// eventColumns are the outbox columns scanEvent reads, in order.
const eventColumns = `seq, id, stage_arn, detail_type, body, created_at`

// scanEvent reads an outbox row of eventColumns, followed by extra
// columns if given.
func scanEvent(row pgx.Row, extra ...any) (*ivsrt.StreamEvent, error) {
	var (
		ev   ivsrt.StreamEvent
		body []byte
		at   time.Time
	)
	if err := row.Scan(append([]any{&ev.Seq, &ev.ID, &ev.StageARN, &ev.DetailType, &body, &at}, extra...)...); err != nil {
		return nil, err
	}
	if err := storecore.DecodeDetail(&ev, body); err != nil {
		return nil, err
	}
	ev.Time = at.UTC()
	return &ev, nil
}

// ReadEvents implements ivsrt.EventStream. Events commit in seq order (see
// appendEvents), so what one statement sees has no gaps that fill later.
func (db *DB) ReadEvents(ctx context.Context, afterSeq int64, limit int) ([]*ivsrt.StreamEvent, error) {
	if limit < 1 {
		return nil, ivsrt.Errorf(ivsrt.EINVALID, "limit must be at least 1, got %d", limit)
	}
	var events []*ivsrt.StreamEvent
	err := db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT `+eventColumns+` FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			ev, err := scanEvent(rows)
			if err != nil {
				return err
			}
			events = append(events, ev)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return events, nil
}

// LastEventSeq implements ivsrt.EventStream.
func (db *DB) LastEventSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := db.read(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM outbox`).Scan(&seq)
	})
	if err != nil {
		return 0, fmt.Errorf("last event seq: %w", err)
	}
	return seq, nil
}
