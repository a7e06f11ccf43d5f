package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

var _ ivsrt.EncoderConfigurationStore = (*DB)(nil)

// CreateEncoderConfiguration implements ivsrt.EncoderConfigurationStore.
func (db *DB) CreateEncoderConfiguration(ctx context.Context, ec *ivsrt.EncoderConfiguration) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	v := ec.Video
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO encoder_configurations (arn, name, width, height, framerate, bitrate, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		string(ec.ARN), ec.Name, v.Width, v.Height, float64(v.Framerate), v.Bitrate, millis(tx.now)); err != nil {
		return translate(err, "encoder configuration")
	}
	if err := putTags(ctx, tx, string(ec.ARN), ec.Tags); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit create encoder configuration: %w", err)
	}
	ec.CreatedAt = tx.now
	return nil
}

// qEncoderConfigurations returns encoder configurations with their tags,
// one row per tag (or one row with NULL tag columns for one without tags),
// rows of one next to each other, in seq order. %s is the WHERE clause and
// LIMIT of the encoder configurations.
const qEncoderConfigurations = `SELECT c.seq, c.arn, c.name, c.width, c.height, c.framerate, c.bitrate, c.created_at, t.key, t.value
	FROM (SELECT seq, arn, name, width, height, framerate, bitrate, created_at FROM encoder_configurations %s) c
	LEFT JOIN tags t ON t.resource_arn = c.arn ORDER BY c.seq`

// scanEncoderConfigurations reads the rows of qEncoderConfigurations,
// closing them, and returns the encoder configurations in order with
// their seqs.
func scanEncoderConfigurations(rows *sql.Rows) ([]*ivsrt.EncoderConfiguration, []int64, error) {
	defer rows.Close()
	var (
		ecs  []*ivsrt.EncoderConfiguration
		seqs []int64
	)
	for rows.Next() {
		var (
			ec         ivsrt.EncoderConfiguration
			seq        int64
			framerate  float64
			createdAt  int64
			key, value sql.NullString
		)
		if err := rows.Scan(&seq, &ec.ARN, &ec.Name, &ec.Video.Width, &ec.Video.Height, &framerate, &ec.Video.Bitrate,
			&createdAt, &key, &value); err != nil {
			return nil, nil, err
		}
		if n := len(seqs); n == 0 || seqs[n-1] != seq {
			// Written from a float32, so the conversion back is exact.
			ec.Video.Framerate = float32(framerate)
			ec.CreatedAt = fromMillis(createdAt)
			ec.Tags = map[string]string{}
			ecs, seqs = append(ecs, &ec), append(seqs, seq)
		}
		if key.Valid {
			ecs[len(ecs)-1].Tags[key.String] = value.String
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return ecs, seqs, rows.Close()
}

// GetEncoderConfiguration implements ivsrt.EncoderConfigurationStore. One
// statement reads it and its tags from one snapshot.
func (db *DB) GetEncoderConfiguration(ctx context.Context, arn ivsrt.EncoderConfigurationARN) (*ivsrt.EncoderConfiguration, error) {
	rows, err := db.read.QueryContext(ctx, fmt.Sprintf(qEncoderConfigurations, `WHERE arn = ?`), string(arn))
	if err != nil {
		return nil, fmt.Errorf("get encoder configuration: %w", err)
	}
	ecs, _, err := scanEncoderConfigurations(rows)
	if err != nil {
		return nil, fmt.Errorf("get encoder configuration: %w", err)
	}
	if len(ecs) == 0 {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "encoder configuration not found")
	}
	return ecs[0], nil
}

// ListEncoderConfigurations implements ivsrt.EncoderConfigurationStore.
func (db *DB) ListEncoderConfigurations(ctx context.Context, page ivsrt.Page) ([]*ivsrt.EncoderConfiguration, string, error) {
	after, err := storecore.ParseCursor(page)
	if err != nil {
		return nil, "", err
	}
	// One statement reads the page and its tags from one snapshot.
	rows, err := db.read.QueryContext(ctx, fmt.Sprintf(qEncoderConfigurations, `WHERE seq > ? ORDER BY seq LIMIT ?`), after, page.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list encoder configurations: %w", err)
	}
	ecs, seqs, err := scanEncoderConfigurations(rows)
	if err != nil {
		return nil, "", fmt.Errorf("list encoder configurations: %w", err)
	}
	ecs, next := storecore.Page(ecs, seqs, page.Limit)
	return ecs, next, nil
}

// DeleteEncoderConfiguration implements ivsrt.EncoderConfigurationStore.
// The one writer makes the check for compositions that use it and the
// delete one step: no composition can start using it in between.
func (db *DB) DeleteEncoderConfiguration(ctx context.Context, arn ivsrt.EncoderConfigurationARN) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM encoder_configurations WHERE arn = ?`, string(arn))
	if err != nil {
		return fmt.Errorf("delete encoder configuration: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete encoder configuration: %w", err)
	} else if n == 0 {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "encoder configuration not found")
	}
	// A refusal rolls the delete back.
	if c, err := compositionUsing(ctx, tx, string(arn)); err != nil {
		return err
	} else if c != "" {
		return storecore.EncoderConfigurationInUse(arn, c)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE resource_arn = ?`, string(arn)); err != nil {
		return fmt.Errorf("delete encoder configuration tags: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit delete encoder configuration: %w", err)
	}
	return nil
}
