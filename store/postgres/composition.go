package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

var _ ivsrt.CompositionStore = (*DB)(nil)

// CreateComposition implements ivsrt.CompositionStore.
//
// It holds a key share lock on the row of each encoder and storage
// configuration the composition uses until it commits (as a foreign key
// check would): a delete of one waits for the composition to be written,
// and then finds it; a delete that came first leaves no row to lock, and
// the composition is refused.
func (db *DB) CreateComposition(ctx context.Context, c *ivsrt.Composition) error {
	lay, err := storecore.EncodeLayout(c.Layout)
	if err != nil {
		return err
	}
	dests, err := storecore.EncodeDestinations(c.Destinations)
	if err != nil {
		return err
	}
	encoders, storages := storecore.CompositionConfigurations(c)
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		var used []string
		for _, arn := range encoders {
			if err := shareConfiguration(ctx, tx, `encoder_configurations`, string(arn)); errors.Is(err, pgx.ErrNoRows) {
				return storecore.CompositionEncoderMissing(arn)
			} else if err != nil {
				return err
			}
			used = append(used, string(arn))
		}
		for _, arn := range storages {
			if err := shareConfiguration(ctx, tx, `storage_configurations`, string(arn)); errors.Is(err, pgx.ErrNoRows) {
				return storecore.CompositionStorageMissing(arn)
			} else if err != nil {
				return err
			}
			used = append(used, string(arn))
		}
		var token *string
		if c.IdempotencyToken != "" {
			token = &c.IdempotencyToken
		}
		if _, err := tx.Exec(ctx, `INSERT INTO compositions
			(arn, stage_arn, state, layout, destinations, idempotency_token, start_time, end_time, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			string(c.ARN), string(c.StageARN), string(c.State), lay, dests, token,
			nullTime(c.StartTime), nullTime(c.EndTime), tx.now); err != nil {
			return translate(err, "composition")
		}
		if len(used) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO composition_configurations (composition_arn, configuration_arn)
				SELECT $1, unnest($2::text[])`, string(c.ARN), used); err != nil {
				return fmt.Errorf("record configurations of the composition: %w", err)
			}
		}
		if err := putTags(ctx, tx, string(c.ARN), c.Tags); err != nil {
			return err
		}
		c.CreatedAt = tx.now
		return nil
	})
}

// shareConfiguration takes a key share lock on the row of arn in table,
// encoder_configurations or storage_configurations, until tx ends. Returns
// pgx.ErrNoRows if there is no such row.
func shareConfiguration(ctx context.Context, tx *Tx, table, arn string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM `+table+` WHERE arn = $1 FOR KEY SHARE`, arn).Scan(&one)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("find configuration %s: %w", arn, err)
	}
	return err
}

// compositionUsing returns the earliest composition that has not ended
// and whose destinations name the encoder or storage configuration arn, ""
// if there is none. Its statement takes a snapshot of its own: called
// after the configuration's row is locked for its delete, it sees every
// composition that can use it (see CreateComposition).
func compositionUsing(ctx context.Context, tx *Tx, arn string) (ivsrt.CompositionARN, error) {
	var c string
	err := tx.QueryRow(ctx, `SELECT c.arn FROM composition_configurations u JOIN compositions c ON c.arn = u.composition_arn
		WHERE u.configuration_arn = $1 AND c.state <> ALL($2::text[]) ORDER BY c.seq LIMIT 1`,
		arn, []string{string(ivsrt.CompositionStopped), string(ivsrt.CompositionFailed)}).Scan(&c)
	switch {
	case err == nil:
		return ivsrt.CompositionARN(c), nil
	case errors.Is(err, pgx.ErrNoRows):
		return "", nil
	default:
		return "", fmt.Errorf("find compositions using %s: %w", arn, err)
	}
}

// qCompositions returns compositions with their tags, one row per tag (or
// one row with NULL tag columns for one without tags), rows of one next to
// each other, in seq order. %s is the WHERE clause and LIMIT of the
// compositions.
const qCompositions = `SELECT c.seq, c.arn, c.stage_arn, c.state, c.layout, c.destinations, c.idempotency_token,
		c.start_time, c.end_time, c.created_at, t.key, t.value
	FROM (SELECT seq, arn, stage_arn, state, layout, destinations, idempotency_token, start_time, end_time, created_at
		FROM compositions %s) c
	LEFT JOIN tags t ON t.resource_arn = c.arn ORDER BY c.seq`

// queryCompositions runs qCompositions with where on conn and reads its
// rows, returning the compositions in order with their seqs. One
// statement reads them and their tags from one snapshot.
func queryCompositions(ctx context.Context, conn *pgx.Conn, where string, args ...any) ([]*ivsrt.Composition, []int64, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf(qCompositions, where), args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		cs   []*ivsrt.Composition
		seqs []int64
	)
	for rows.Next() {
		var (
			c                  ivsrt.Composition
			seq                int64
			lay, dests         []byte
			token              *string
			startTime, endTime *time.Time
			key, value         *string
		)
		if err := rows.Scan(&seq, &c.ARN, &c.StageARN, &c.State, &lay, &dests, &token, &startTime, &endTime, &c.CreatedAt,
			&key, &value); err != nil {
			return nil, nil, err
		}
		if n := len(seqs); n == 0 || seqs[n-1] != seq {
			var err error
			if c.Layout, err = storecore.DecodeLayout(lay); err != nil {
				return nil, nil, err
			}
			if c.Destinations, err = storecore.DecodeDestinations(dests); err != nil {
				return nil, nil, err
			}
			if token != nil {
				c.IdempotencyToken = *token
			}
			c.StartTime, c.EndTime, c.CreatedAt = fromNull(startTime), fromNull(endTime), c.CreatedAt.UTC()
			c.Tags = map[string]string{}
			cs, seqs = append(cs, &c), append(seqs, seq)
		}
		if key != nil {
			cs[len(cs)-1].Tags[*key] = *value
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return cs, seqs, nil
}

// getComposition reads the one composition where selects, or ENOTFOUND.
func (db *DB) getComposition(ctx context.Context, where string, arg any) (*ivsrt.Composition, error) {
	var cs []*ivsrt.Composition
	err := db.read(ctx, func(conn *pgx.Conn) error {
		var err error
		cs, _, err = queryCompositions(ctx, conn, where, arg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get composition: %w", err)
	}
	if len(cs) == 0 {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "composition not found")
	}
	return cs[0], nil
}

// GetComposition implements ivsrt.CompositionStore.
func (db *DB) GetComposition(ctx context.Context, arn ivsrt.CompositionARN) (*ivsrt.Composition, error) {
	return db.getComposition(ctx, `WHERE arn = $1`, string(arn))
}

// CompositionByIdempotencyToken implements ivsrt.CompositionStore. The
// token's unique index finds it.
func (db *DB) CompositionByIdempotencyToken(ctx context.Context, token string) (*ivsrt.Composition, error) {
	if token == "" {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "composition not found")
	}
	return db.getComposition(ctx, `WHERE idempotency_token = $1`, token)
}

// ListCompositions implements ivsrt.CompositionStore.
func (db *DB) ListCompositions(ctx context.Context, f ivsrt.CompositionFilter, page ivsrt.Page) ([]*ivsrt.Composition, string, error) {
	after, err := storecore.ParseCursor(page)
	if err != nil {
		return nil, "", err
	}
	if err := storecore.CheckCompositionFilter(f); err != nil {
		return nil, "", err
	}
	conds, args := []string{"seq > $1"}, []any{after}
	switch {
	case f.StageARN != "":
		args = append(args, string(f.StageARN))
		conds = append(conds, fmt.Sprintf("stage_arn = $%d", len(args)))
	case f.EncoderConfigurationARN != "":
		args = append(args, string(f.EncoderConfigurationARN))
		conds = append(conds, fmt.Sprintf("arn IN (SELECT composition_arn FROM composition_configurations WHERE configuration_arn = $%d)", len(args)))
	}
	args = append(args, page.Limit+1)
	where := fmt.Sprintf(`WHERE %s ORDER BY seq LIMIT $%d`, strings.Join(conds, " AND "), len(args))
	var (
		cs   []*ivsrt.Composition
		seqs []int64
	)
	err = db.read(ctx, func(conn *pgx.Conn) error {
		// One statement reads the page and its tags from one snapshot.
		var err error
		cs, seqs, err = queryCompositions(ctx, conn, where, args...)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list compositions: %w", err)
	}
	cs, next := storecore.Page(cs, seqs, page.Limit)
	return cs, next, nil
}

// UpdateComposition implements ivsrt.CompositionStore. The update locks
// the composition's row, so that its writers and taggers take turns.
func (db *DB) UpdateComposition(ctx context.Context, c *ivsrt.Composition, events ...*ivsrt.StreamEvent) error {
	dests, err := storecore.EncodeDestinations(c.Destinations)
	if err != nil {
		return err
	}
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE compositions SET state = $1, destinations = $2, start_time = $3, end_time = $4 WHERE arn = $5`,
			string(c.State), dests, nullTime(c.StartTime), nullTime(c.EndTime), string(c.ARN))
		if err != nil {
			return fmt.Errorf("update composition: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ivsrt.Errorf(ivsrt.ENOTFOUND, "composition not found")
		}
		return appendEvents(ctx, tx, events...)
	})
}
