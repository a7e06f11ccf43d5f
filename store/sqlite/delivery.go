package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

// OpenSink implements ivsrt.DeliveryStore.
func (db *DB) OpenSink(ctx context.Context, sink string) (int64, error) {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var cursor int64
	err = tx.QueryRowContext(ctx, `SELECT cursor FROM sink WHERE name = ?`, sink).Scan(&cursor)
	if err == nil {
		return cursor, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read sink %s: %w", sink, err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM outbox`).Scan(&cursor); err != nil {
		return 0, fmt.Errorf("last event seq: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sink (name, cursor, created_at) VALUES (?, ?, ?)`,
		sink, cursor, millis(tx.now)); err != nil {
		return 0, fmt.Errorf("create sink %s: %w", sink, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit create sink: %w", err)
	}
	return cursor, nil
}

// EnqueueDeliveries implements ivsrt.DeliveryStore.
func (db *DB) EnqueueDeliveries(ctx context.Context, sink string, events []*ivsrt.StreamEvent, through int64, at time.Time) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var cursor int64
	if err := tx.QueryRowContext(ctx, `SELECT cursor FROM sink WHERE name = ?`, sink).Scan(&cursor); err != nil {
		return translate(err, "sink "+sink)
	}
	if err := storecore.CheckEnqueue(sink, cursor, events, through); err != nil {
		return err
	}
	for _, ev := range events {
		if _, err := tx.ExecContext(ctx, qInsertDelivery, sink, ev.Seq, string(ev.StageARN), millis(at)); err != nil {
			return fmt.Errorf("enqueue event %d: %w", ev.Seq, err)
		}
	}
	if _, err := tx.ExecContext(ctx, qMoveCursor, through, sink); err != nil {
		return fmt.Errorf("move cursor of %s: %w", sink, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit enqueue: %w", err)
	}
	return nil
}

const (
	qInsertDelivery = `INSERT INTO delivery (sink, seq, stage_arn, enqueued_at) VALUES (?, ?, ?, ?)`
	qMoveCursor     = `UPDATE sink SET cursor = ? WHERE name = ?`
	qDeleteDelivery = `DELETE FROM delivery WHERE sink = ? AND seq = ?`
	qRetryDelivery  = `UPDATE delivery SET attempts = ?, next_try = ?, last_error = ? WHERE sink = ? AND seq = ?`
	qReadEvent      = `SELECT ` + eventColumns + ` FROM outbox WHERE seq = ?`
)

// PendingDeliveries implements ivsrt.DeliveryStore.
func (db *DB) PendingDeliveries(ctx context.Context, sink string) ([]*ivsrt.Delivery, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT seq, stage_arn, enqueued_at, attempts, next_try, last_error
		FROM delivery WHERE sink = ? ORDER BY seq`, sink)
	if err != nil {
		return nil, fmt.Errorf("read queue of %s: %w", sink, err)
	}
	defer rows.Close()
	var queue []*ivsrt.Delivery
	for rows.Next() {
		d := &ivsrt.Delivery{Sink: sink}
		var enqueued, next int64
		if err := rows.Scan(&d.Seq, &d.StageARN, &enqueued, &d.Attempts, &next, &d.LastError); err != nil {
			return nil, fmt.Errorf("scan delivery: %w", err)
		}
		d.EnqueuedAt = fromMillis(enqueued)
		if next > 0 {
			d.NextTry = fromMillis(next)
		}
		queue = append(queue, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read queue of %s: %w", sink, err)
	}
	return queue, nil
}

// ReadEvent implements ivsrt.DeliveryStore.
func (db *DB) ReadEvent(ctx context.Context, seq int64) (*ivsrt.StreamEvent, error) {
	ev, err := scanEvent(db.readStmts[qReadEvent].QueryRowContext(ctx, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "no event %d", seq)
	}
	return ev, err
}

// SettleDeliveries implements ivsrt.DeliveryStore.
func (db *DB) SettleDeliveries(ctx context.Context, sink string, outcomes []ivsrt.DeliveryOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	if err := storecore.CheckOutcomes(outcomes); err != nil {
		return err
	}
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, o := range outcomes {
		switch o.Result {
		case ivsrt.Delivered:
			_, err = tx.ExecContext(ctx, qDeleteDelivery, sink, o.Seq)
		case ivsrt.Retry:
			_, err = tx.ExecContext(ctx, qRetryDelivery, o.Attempts, millis(o.NextTry), o.LastError, sink, o.Seq)
		case ivsrt.Dead:
			_, err = tx.ExecContext(ctx, `INSERT INTO dead_letter (sink, seq, event_id, enqueued_at, dead_at, attempts, last_error)
				SELECT d.sink, d.seq, o.id, d.enqueued_at, ?, ?, ? FROM delivery d JOIN outbox o ON o.seq = d.seq
				WHERE d.sink = ? AND d.seq = ?`, millis(o.At), o.Attempts, o.LastError, sink, o.Seq)
			if err == nil {
				_, err = tx.ExecContext(ctx, qDeleteDelivery, sink, o.Seq)
			}
		}
		if err != nil {
			return fmt.Errorf("settle event %d of %s: %w", o.Seq, sink, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit settle: %w", err)
	}
	return nil
}

// ListDeadLetters implements ivsrt.DeliveryStore.
func (db *DB) ListDeadLetters(ctx context.Context, sink string, page ivsrt.Page) ([]*ivsrt.DeadLetter, error) {
	var (
		where []string
		args  []any
	)
	if sink != "" {
		where = append(where, "l.sink = ?")
		args = append(args, sink)
	}
	if page.After != "" {
		seq, afterSink, err := ivsrt.ParseDeadLetterPageKey(page.After)
		if err != nil {
			return nil, err
		}
		where = append(where, "(l.seq > ? OR l.seq = ? AND l.sink > ?)")
		args = append(args, seq, seq, afterSink)
	}
	limit := storecore.DeadLetterLimit(page)
	q := `SELECT o.seq, o.id, o.stage_arn, o.detail_type, o.body, o.created_at,
		l.sink, l.enqueued_at, l.dead_at, l.attempts, l.last_error
		FROM dead_letter l JOIN outbox o ON o.seq = l.seq`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY l.seq, l.sink LIMIT ?"
	rows, err := db.read.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	var letters []*ivsrt.DeadLetter
	for rows.Next() {
		var (
			l              ivsrt.DeadLetter
			enqueued, dead int64
		)
		if l.Event, err = scanEvent(rows, &l.Sink, &enqueued, &dead, &l.Attempts, &l.LastError); err != nil {
			return nil, err
		}
		l.EnqueuedAt, l.DeadAt = fromMillis(enqueued), fromMillis(dead)
		letters = append(letters, &l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return letters, nil
}

// RedriveDeadLetter implements ivsrt.DeliveryStore.
func (db *DB) RedriveDeadLetter(ctx context.Context, sink, eventID string, at time.Time) (*ivsrt.Delivery, error) {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	d := &ivsrt.Delivery{Sink: sink, EnqueuedAt: at.UTC().Truncate(time.Millisecond)}
	err = tx.QueryRowContext(ctx, `SELECT l.seq, o.stage_arn FROM dead_letter l JOIN outbox o ON o.seq = l.seq
		WHERE l.sink = ? AND l.event_id = ?`, sink, eventID).Scan(&d.Seq, &d.StageARN)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "sink %s has no dead letter of event %s", sink, eventID)
	} else if err != nil {
		return nil, fmt.Errorf("read dead letter: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM dead_letter WHERE sink = ? AND seq = ?`, sink, d.Seq); err != nil {
		return nil, fmt.Errorf("delete dead letter: %w", err)
	}
	if _, err := tx.ExecContext(ctx, qInsertDelivery, sink, d.Seq, string(d.StageARN), millis(d.EnqueuedAt)); err != nil {
		return nil, fmt.Errorf("enqueue event %d: %w", d.Seq, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit redrive: %w", err)
	}
	return d, nil
}

// PruneEvents implements ivsrt.DeliveryStore.
func (db *DB) PruneEvents(ctx context.Context, before time.Time, sinks []string) (int64, error) {
	// Events up to the lowest cursor of the sinks named; all if none.
	limit := int64(1<<63 - 1)
	if len(sinks) > 0 {
		args := make([]any, len(sinks))
		for i, s := range sinks {
			args[i] = s
		}
		var cursor sql.NullInt64
		q := `SELECT MIN(cursor) FROM sink WHERE name IN (?` + strings.Repeat(", ?", len(sinks)-1) + `)`
		if err := db.read.QueryRowContext(ctx, q, args...).Scan(&cursor); err != nil {
			return 0, fmt.Errorf("read sink cursors: %w", err)
		}
		if cursor.Valid {
			limit = cursor.Int64
		}
	}
	return storecore.Prune(func() (int64, error) {
		res, err := db.write.ExecContext(ctx, `DELETE FROM outbox WHERE seq IN (
			SELECT seq FROM outbox o WHERE o.created_at < ? AND o.seq <= ?
			AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.seq = o.seq)
			AND NOT EXISTS (SELECT 1 FROM dead_letter l WHERE l.seq = o.seq)
			ORDER BY o.seq LIMIT ?)`, millis(before), limit, storecore.PruneBatch)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	})
}
