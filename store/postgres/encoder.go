package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

var _ ivsrt.EncoderConfigurationStore = (*DB)(nil)

// CreateEncoderConfiguration implements ivsrt.EncoderConfigurationStore.
func (db *DB) CreateEncoderConfiguration(ctx context.Context, ec *ivsrt.EncoderConfiguration) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		v := ec.Video
		if _, err := tx.Exec(ctx, `INSERT INTO encoder_configurations (arn, name, width, height, framerate, bitrate, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, string(ec.ARN), ec.Name, v.Width, v.Height, v.Framerate, v.Bitrate, tx.now); err != nil {
			return translate(err, "encoder configuration")
		}
		if err := putTags(ctx, tx, string(ec.ARN), ec.Tags); err != nil {
			return err
		}
		ec.CreatedAt = tx.now
		return nil
	})
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
func scanEncoderConfigurations(rows pgx.Rows) ([]*ivsrt.EncoderConfiguration, []int64, error) {
	defer rows.Close()
	var (
		ecs  []*ivsrt.EncoderConfiguration
		seqs []int64
	)
	for rows.Next() {
		var (
			ec         ivsrt.EncoderConfiguration
			seq        int64
			key, value *string
		)
		if err := rows.Scan(&seq, &ec.ARN, &ec.Name, &ec.Video.Width, &ec.Video.Height, &ec.Video.Framerate, &ec.Video.Bitrate,
			&ec.CreatedAt, &key, &value); err != nil {
			return nil, nil, err
		}
		if n := len(seqs); n == 0 || seqs[n-1] != seq {
			ec.CreatedAt = ec.CreatedAt.UTC()
			ec.Tags = map[string]string{}
			ecs, seqs = append(ecs, &ec), append(seqs, seq)
		}
		if key != nil {
			ecs[len(ecs)-1].Tags[*key] = *value
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return ecs, seqs, nil
}

// GetEncoderConfiguration implements ivsrt.EncoderConfigurationStore. One
// statement reads it and its tags from one snapshot.
func (db *DB) GetEncoderConfiguration(ctx context.Context, arn ivsrt.EncoderConfigurationARN) (*ivsrt.EncoderConfiguration, error) {
	var ecs []*ivsrt.EncoderConfiguration
	err := db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, fmt.Sprintf(qEncoderConfigurations, `WHERE arn = $1`), string(arn))
		if err != nil {
			return err
		}
		ecs, _, err = scanEncoderConfigurations(rows)
		return err
	})
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
	var (
		ecs  []*ivsrt.EncoderConfiguration
		seqs []int64
	)
	err = db.read(ctx, func(conn *pgx.Conn) error {
		// One statement reads the page and its tags from one snapshot.
		rows, err := conn.Query(ctx, fmt.Sprintf(qEncoderConfigurations, `WHERE seq > $1 ORDER BY seq LIMIT $2`), after, page.Limit+1)
		if err != nil {
			return err
		}
		ecs, seqs, err = scanEncoderConfigurations(rows)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list encoder configurations: %w", err)
	}
	ecs, next := storecore.Page(ecs, seqs, page.Limit)
	return ecs, next, nil
}

// DeleteEncoderConfiguration implements ivsrt.EncoderConfigurationStore.
// The row lock taggers take (lockResource) makes a tag write wait for the
// delete, and then find the configuration gone.
//
// The delete locks the row: it waits for every composition being created
// that has found the configuration (they hold a key share lock on its
// row, see CreateComposition), and those that come later wait for it and
// then find the row gone. So the compositions read next, in a snapshot
// taken after the wait, are all those that can use it; if one that has not
// ended does, the delete is rolled back.
func (db *DB) DeleteEncoderConfiguration(ctx context.Context, arn ivsrt.EncoderConfigurationARN) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM encoder_configurations WHERE arn = $1`, string(arn))
		if err != nil {
			return fmt.Errorf("delete encoder configuration: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ivsrt.Errorf(ivsrt.ENOTFOUND, "encoder configuration not found")
		}
		if c, err := compositionUsing(ctx, tx, string(arn)); err != nil {
			return err
		} else if c != "" {
			return storecore.EncoderConfigurationInUse(arn, c)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tags WHERE resource_arn = $1`, string(arn)); err != nil {
			return fmt.Errorf("delete encoder configuration tags: %w", err)
		}
		return nil
	})
}
