package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

// OpenSink implements ivsrt.DeliveryStore. A new sink's cursor is the last
// seq committed: events commit in seq order (see appendEvents), so every
// event above it is yet to be seen.
func (db *DB) OpenSink(ctx context.Context, sink string) (int64, error) {
	var cursor int64
	err := db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		// Of two nodes opening a new sink at once, one inserts it and the
		// other, once the first has committed, reads what it inserted.
		if _, err := tx.Exec(ctx, `INSERT INTO sink (name, cursor, created_at)
			SELECT $1, COALESCE(MAX(seq), 0), $2 FROM outbox
			ON CONFLICT (name) DO NOTHING`, sink, tx.now); err != nil {
			return fmt.Errorf("create sink %s: %w", sink, err)
		}
		if err := tx.QueryRow(ctx, `SELECT cursor FROM sink WHERE name = $1`, sink).Scan(&cursor); err != nil {
			return fmt.Errorf("read sink %s: %w", sink, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return cursor, nil
}

// EnqueueDeliveries implements ivsrt.DeliveryStore. The sink's row is
// locked while its cursor is checked and moved, so two writers cannot both
// take in the same events.
func (db *DB) EnqueueDeliveries(ctx context.Context, sink string, events []*ivsrt.StreamEvent, through int64, at time.Time) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		var cursor int64
		if err := tx.QueryRow(ctx, `SELECT cursor FROM sink WHERE name = $1 FOR NO KEY UPDATE`, sink).Scan(&cursor); err != nil {
			return translate(err, "sink "+sink)
		}
		if err := storecore.CheckEnqueue(sink, cursor, events, through); err != nil {
			return err
		}
		seqs := make([]int64, len(events))
		stages := make([]string, len(events))
		for i, ev := range events {
			seqs[i], stages[i] = ev.Seq, string(ev.StageARN)
		}
		if len(events) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO delivery (sink, seq, stage_arn, enqueued_at)
				SELECT $1, seq, stage_arn, $4 FROM unnest($2::bigint[], $3::text[]) AS u (seq, stage_arn)`,
				sink, seqs, stages, ms(at)); err != nil {
				return fmt.Errorf("enqueue events: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE sink SET cursor = $1 WHERE name = $2`, through, sink); err != nil {
			return fmt.Errorf("move cursor of %s: %w", sink, err)
		}
		return nil
	})
}

// PendingDeliveries implements ivsrt.DeliveryStore.
func (db *DB) PendingDeliveries(ctx context.Context, sink string) ([]*ivsrt.Delivery, error) {
	var queue []*ivsrt.Delivery
	err := db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT seq, stage_arn, enqueued_at, attempts, next_try, last_error
			FROM delivery WHERE sink = $1 ORDER BY seq`, sink)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d := &ivsrt.Delivery{Sink: sink}
			var next *time.Time
			if err := rows.Scan(&d.Seq, &d.StageARN, &d.EnqueuedAt, &d.Attempts, &next, &d.LastError); err != nil {
				return err
			}
			d.EnqueuedAt, d.NextTry = d.EnqueuedAt.UTC(), fromNull(next)
			queue = append(queue, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read queue of %s: %w", sink, err)
	}
	return queue, nil
}

// ReadEvent implements ivsrt.DeliveryStore.
func (db *DB) ReadEvent(ctx context.Context, seq int64) (*ivsrt.StreamEvent, error) {
	var ev *ivsrt.StreamEvent
	err := db.read(ctx, func(conn *pgx.Conn) error {
		var err error
		ev, err = scanEvent(conn.QueryRow(ctx, `SELECT `+eventColumns+` FROM outbox WHERE seq = $1`, seq))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "no event %d", seq)
	} else if err != nil {
		return nil, fmt.Errorf("read event %d: %w", seq, err)
	}
	return ev, nil
}

// SettleDeliveries implements ivsrt.DeliveryStore. Each outcome acts on the
// queue's row only if it is still there: a delivery settled twice, even at
// once from two nodes, is settled once.
func (db *DB) SettleDeliveries(ctx context.Context, sink string, outcomes []ivsrt.DeliveryOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	if err := storecore.CheckOutcomes(outcomes); err != nil {
		return err
	}
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		for _, o := range outcomes {
			var err error
			switch o.Result {
			case ivsrt.Delivered:
				_, err = tx.Exec(ctx, `DELETE FROM delivery WHERE sink = $1 AND seq = $2`, sink, o.Seq)
			case ivsrt.Retry:
				_, err = tx.Exec(ctx, `UPDATE delivery SET attempts = $1, next_try = $2, last_error = $3 WHERE sink = $4 AND seq = $5`,
					o.Attempts, nullTime(o.NextTry), o.LastError, sink, o.Seq)
			case ivsrt.Dead:
				_, err = tx.Exec(ctx, `WITH d AS (DELETE FROM delivery WHERE sink = $1 AND seq = $2 RETURNING sink, seq, enqueued_at)
					INSERT INTO dead_letter (sink, seq, event_id, enqueued_at, dead_at, attempts, last_error)
					SELECT d.sink, d.seq, o.id, d.enqueued_at, $3, $4, $5 FROM d JOIN outbox o ON o.seq = d.seq`,
					sink, o.Seq, ms(o.At), o.Attempts, o.LastError)
			}
			if err != nil {
				return fmt.Errorf("settle event %d of %s: %w", o.Seq, sink, err)
			}
		}
		return nil
	})
}

// ListDeadLetters implements ivsrt.DeliveryStore.
func (db *DB) ListDeadLetters(ctx context.Context, sink string, page ivsrt.Page) ([]*ivsrt.DeadLetter, error) {
	var (
		where []string
		args  []any
	)
	if sink != "" {
		args = append(args, sink)
		where = append(where, fmt.Sprintf("l.sink = $%d", len(args)))
	}
	if page.After != "" {
		seq, afterSink, err := ivsrt.ParseDeadLetterPageKey(page.After)
		if err != nil {
			return nil, err
		}
		args = append(args, seq, afterSink)
		where = append(where, fmt.Sprintf("(l.seq, l.sink) > ($%d, $%d)", len(args)-1, len(args)))
	}
	limit := storecore.DeadLetterLimit(page)
	q := `SELECT o.seq, o.id, o.stage_arn, o.detail_type, o.body, o.created_at,
		l.sink, l.enqueued_at, l.dead_at, l.attempts, l.last_error
		FROM dead_letter l JOIN outbox o ON o.seq = l.seq`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY l.seq, l.sink LIMIT $%d", len(args))
	var letters []*ivsrt.DeadLetter
	err := db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l ivsrt.DeadLetter
			if l.Event, err = scanEvent(rows, &l.Sink, &l.EnqueuedAt, &l.DeadAt, &l.Attempts, &l.LastError); err != nil {
				return err
			}
			l.EnqueuedAt, l.DeadAt = l.EnqueuedAt.UTC(), l.DeadAt.UTC()
			letters = append(letters, &l)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return letters, nil
}

// RedriveDeadLetter implements ivsrt.DeliveryStore. One statement moves the
// dead letter back into the queue, so two redrives of it cannot both
// succeed.
func (db *DB) RedriveDeadLetter(ctx context.Context, sink, eventID string, at time.Time) (*ivsrt.Delivery, error) {
	d := &ivsrt.Delivery{Sink: sink, EnqueuedAt: ms(at)}
	err := db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		err := tx.QueryRow(ctx, `WITH l AS (DELETE FROM dead_letter WHERE sink = $1 AND event_id = $2 RETURNING seq)
			INSERT INTO delivery (sink, seq, stage_arn, enqueued_at)
			SELECT $1, l.seq, o.stage_arn, $3 FROM l JOIN outbox o ON o.seq = l.seq
			RETURNING seq, stage_arn`, sink, eventID, d.EnqueuedAt).Scan(&d.Seq, &d.StageARN)
		if errors.Is(err, pgx.ErrNoRows) {
			return ivsrt.Errorf(ivsrt.ENOTFOUND, "sink %s has no dead letter of event %s", sink, eventID)
		} else if err != nil {
			return fmt.Errorf("redrive dead letter: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// PruneEvents implements ivsrt.DeliveryStore. A queued or dead event is
// never pruned: SettleDeliveries and RedriveDeadLetter move an event
// between the queue and the dead letters in one transaction, so each
// statement here sees it in one or the other.
func (db *DB) PruneEvents(ctx context.Context, before time.Time, sinks []string) (int64, error) {
	// Events up to the lowest cursor of the sinks named; all if none.
	limit := int64(math.MaxInt64)
	if len(sinks) > 0 {
		var low *int64
		err := db.read(ctx, func(conn *pgx.Conn) error {
			return conn.QueryRow(ctx, `SELECT MIN(cursor) FROM sink WHERE name = ANY($1)`, sinks).Scan(&low)
		})
		if err != nil {
			return 0, fmt.Errorf("read sink cursors: %w", err)
		}
		if low != nil {
			limit = *low
		}
	}
	return storecore.Prune(func() (n int64, err error) {
		err = db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
			tag, err := tx.Exec(ctx, `DELETE FROM outbox WHERE seq IN (
				SELECT seq FROM outbox o WHERE o.created_at < $1 AND o.seq <= $2
				AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.seq = o.seq)
				AND NOT EXISTS (SELECT 1 FROM dead_letter l WHERE l.seq = o.seq)
				ORDER BY o.seq LIMIT $3)`, ms(before), limit, storecore.PruneBatch)
			n = tag.RowsAffected()
			return err
		})
		return n, err
	})
}
