package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

var _ ivsrt.CompositionStore = (*DB)(nil)

// CreateComposition implements ivsrt.CompositionStore. The one writer
// makes the check that the configurations it uses exist and the write one
// step: none can be deleted in between.
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
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var used []string
	for _, arn := range encoders {
		ok, err := configurationFound(ctx, tx, qEncoderConfigurationExists, string(arn))
		if err != nil {
			return err
		}
		if !ok {
			return storecore.CompositionEncoderMissing(arn)
		}
		used = append(used, string(arn))
	}
	for _, arn := range storages {
		ok, err := configurationFound(ctx, tx, qStorageConfigurationExists, string(arn))
		if err != nil {
			return err
		}
		if !ok {
			return storecore.CompositionStorageMissing(arn)
		}
		used = append(used, string(arn))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO compositions
		(arn, stage_arn, state, layout, destinations, idempotency_token, start_time, end_time, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(c.ARN), string(c.StageARN), string(c.State), string(lay), string(dests),
		sql.NullString{String: c.IdempotencyToken, Valid: c.IdempotencyToken != ""},
		millisOrNull(c.StartTime), millisOrNull(c.EndTime), millis(tx.now)); err != nil {
		return translate(err, "composition")
	}
	for _, arn := range used {
		if _, err := tx.ExecContext(ctx, `INSERT INTO composition_configurations (composition_arn, configuration_arn) VALUES (?, ?)`,
			string(c.ARN), arn); err != nil {
			return fmt.Errorf("record configurations of the composition: %w", err)
		}
	}
	if err := putTags(ctx, tx, string(c.ARN), c.Tags); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit create composition: %w", err)
	}
	c.CreatedAt = tx.now
	return nil
}

// configurationFound runs query, one of the q...Exists counts, for arn.
func configurationFound(ctx context.Context, tx *Tx, query, arn string) (bool, error) {
	var n int
	if err := tx.QueryRowContext(ctx, query, arn).Scan(&n); err != nil {
		return false, fmt.Errorf("find configuration: %w", err)
	}
	return n > 0, nil
}

// compositionUsing returns the earliest composition that has not ended
// and whose destinations name the encoder or storage configuration arn, ""
// if there is none.
func compositionUsing(ctx context.Context, tx *Tx, arn string) (ivsrt.CompositionARN, error) {
	var c string
	err := tx.QueryRowContext(ctx, `SELECT c.arn FROM composition_configurations u JOIN compositions c ON c.arn = u.composition_arn
		WHERE u.configuration_arn = ? AND c.state NOT IN (?, ?) ORDER BY c.seq LIMIT 1`,
		arn, string(ivsrt.CompositionStopped), string(ivsrt.CompositionFailed)).Scan(&c)
	switch err {
	case nil:
		return ivsrt.CompositionARN(c), nil
	case sql.ErrNoRows:
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

// queryCompositions runs qCompositions with where and reads its rows,
// returning the compositions in order with their seqs. One statement
// reads them and their tags from one snapshot.
func queryCompositions(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, where string, args ...any) ([]*ivsrt.Composition, []int64, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf(qCompositions, where), args...)
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
			seq, createdAt     int64
			lay, dests         string
			token              sql.NullString
			startTime, endTime sql.NullInt64
			key, value         sql.NullString
		)
		if err := rows.Scan(&seq, &c.ARN, &c.StageARN, &c.State, &lay, &dests, &token, &startTime, &endTime, &createdAt,
			&key, &value); err != nil {
			return nil, nil, err
		}
		if n := len(seqs); n == 0 || seqs[n-1] != seq {
			var err error
			if c.Layout, err = storecore.DecodeLayout([]byte(lay)); err != nil {
				return nil, nil, err
			}
			if c.Destinations, err = storecore.DecodeDestinations([]byte(dests)); err != nil {
				return nil, nil, err
			}
			c.IdempotencyToken = token.String
			c.StartTime, c.EndTime, c.CreatedAt = nullMillis(startTime), nullMillis(endTime), fromMillis(createdAt)
			c.Tags = map[string]string{}
			cs, seqs = append(cs, &c), append(seqs, seq)
		}
		if key.Valid {
			cs[len(cs)-1].Tags[key.String] = value.String
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return cs, seqs, rows.Close()
}

// getComposition reads the one composition where selects, or ENOTFOUND.
func (db *DB) getComposition(ctx context.Context, where string, arg any) (*ivsrt.Composition, error) {
	cs, _, err := queryCompositions(ctx, db.read, where, arg)
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
	return db.getComposition(ctx, `WHERE arn = ?`, string(arn))
}

// CompositionByIdempotencyToken implements ivsrt.CompositionStore. The
// token's unique index finds it.
func (db *DB) CompositionByIdempotencyToken(ctx context.Context, token string) (*ivsrt.Composition, error) {
	if token == "" {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "composition not found")
	}
	return db.getComposition(ctx, `WHERE idempotency_token = ?`, token)
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
	conds, args := []string{"seq > ?"}, []any{after}
	switch {
	case f.StageARN != "":
		conds, args = append(conds, "stage_arn = ?"), append(args, string(f.StageARN))
	case f.EncoderConfigurationARN != "":
		conds = append(conds, "arn IN (SELECT composition_arn FROM composition_configurations WHERE configuration_arn = ?)")
		args = append(args, string(f.EncoderConfigurationARN))
	}
	// One statement reads the page and its tags from one snapshot.
	cs, seqs, err := queryCompositions(ctx, db.read, `WHERE `+strings.Join(conds, " AND ")+` ORDER BY seq LIMIT ?`,
		append(args, page.Limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("list compositions: %w", err)
	}
	cs, next := storecore.Page(cs, seqs, page.Limit)
	return cs, next, nil
}

// UpdateComposition implements ivsrt.CompositionStore.
func (db *DB) UpdateComposition(ctx context.Context, c *ivsrt.Composition, events ...*ivsrt.StreamEvent) error {
	dests, err := storecore.EncodeDestinations(c.Destinations)
	if err != nil {
		return err
	}
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE compositions SET state = ?, destinations = ?, start_time = ?, end_time = ? WHERE arn = ?`,
		string(c.State), string(dests), millisOrNull(c.StartTime), millisOrNull(c.EndTime), string(c.ARN))
	if err != nil {
		return fmt.Errorf("update composition: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update composition: %w", err)
	} else if n == 0 {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "composition not found")
	}
	for _, ev := range events {
		if err := appendEvent(ctx, tx, ev); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit update composition: %w", err)
	}
	return nil
}
