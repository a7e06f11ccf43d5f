package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

// appendEvent writes ev to the outbox within tx and sets its Seq. Its Time
// is kept at millisecond precision, in UTC, as the store keeps all times.
func appendEvent(ctx context.Context, tx *Tx, ev *ivsrt.StreamEvent) error {
	body, err := storecore.EncodeDetail(ev)
	if err != nil {
		return err
	}
	ev.Time = ev.Time.UTC().Truncate(time.Millisecond)
	res, err := tx.ExecContext(ctx, qInsertOutbox,
		ev.ID, string(ev.StageARN), ev.DetailType, ev.EventName(), string(body), millis(ev.Time))
	if err != nil {
		return fmt.Errorf("append event: %w", err)
	}
	if ev.Seq, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("append event: %w", err)
	}
	tx.appended = true
	return nil
}

const qInsertOutbox = `INSERT INTO outbox (id, stage_arn, detail_type, event_name, body, created_at) VALUES (?, ?, ?, ?, ?, ?)`

// ReadEvents implements ivsrt.EventStream. All writes go through one
// connection, one transaction at a time, so rows become visible in seq
// order and a reader never skips one committed later with a lower seq.
func (db *DB) ReadEvents(ctx context.Context, afterSeq int64, limit int) ([]*ivsrt.StreamEvent, error) {
	if limit < 1 {
		return nil, ivsrt.Errorf(ivsrt.EINVALID, "limit must be at least 1, got %d", limit)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+eventColumns+`
		FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var events []*ivsrt.StreamEvent
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return events, nil
}

// eventColumns are the outbox columns scanEvent reads, in order.
const eventColumns = `seq, id, stage_arn, detail_type, body, created_at`

// scanEvent reads an outbox row of eventColumns, followed by extra
// columns if given.
func scanEvent(row interface{ Scan(...any) error }, extra ...any) (*ivsrt.StreamEvent, error) {
	var (
		ev   ivsrt.StreamEvent
		body string
		at   int64
	)
	if err := row.Scan(append([]any{&ev.Seq, &ev.ID, &ev.StageARN, &ev.DetailType, &body, &at}, extra...)...); err != nil {
		return nil, fmt.Errorf("scan event: %w", err)
	}
	if err := storecore.DecodeDetail(&ev, []byte(body)); err != nil {
		return nil, err
	}
	ev.Time = fromMillis(at)
	return &ev, nil
}

// LastEventSeq implements ivsrt.EventStream.
func (db *DB) LastEventSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := db.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM outbox`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("last event seq: %w", err)
	}
	return seq, nil
}
