package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

var _ ivsrt.StorageConfigurationStore = (*DB)(nil)

// CreateStorageConfiguration implements ivsrt.StorageConfigurationStore.
func (db *DB) CreateStorageConfiguration(ctx context.Context, sc *ivsrt.StorageConfiguration) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO storage_configurations (arn, name, s3_bucket_name, created_at)
			VALUES ($1, $2, $3, $4)`, string(sc.ARN), sc.Name, sc.S3BucketName, tx.now); err != nil {
			return translate(err, "storage configuration")
		}
		if err := putTags(ctx, tx, string(sc.ARN), sc.Tags); err != nil {
			return err
		}
		sc.CreatedAt = tx.now
		return nil
	})
}

// qStorageConfigurations returns storage configurations with their tags,
// one row per tag (or one row with NULL tag columns for one without tags),
// rows of one next to each other, in seq order. %s is the WHERE clause and
// LIMIT of the storage configurations.
const qStorageConfigurations = `SELECT c.seq, c.arn, c.name, c.s3_bucket_name, c.created_at, t.key, t.value
	FROM (SELECT seq, arn, name, s3_bucket_name, created_at FROM storage_configurations %s) c
	LEFT JOIN tags t ON t.resource_arn = c.arn ORDER BY c.seq`

// scanStorageConfigurations reads the rows of qStorageConfigurations,
// closing them, and returns the storage configurations in order with their
// seqs.
func scanStorageConfigurations(rows pgx.Rows) ([]*ivsrt.StorageConfiguration, []int64, error) {
	defer rows.Close()
	var (
		scs  []*ivsrt.StorageConfiguration
		seqs []int64
	)
	for rows.Next() {
		var (
			sc         ivsrt.StorageConfiguration
			seq        int64
			key, value *string
		)
		if err := rows.Scan(&seq, &sc.ARN, &sc.Name, &sc.S3BucketName, &sc.CreatedAt, &key, &value); err != nil {
			return nil, nil, err
		}
		if n := len(seqs); n == 0 || seqs[n-1] != seq {
			sc.CreatedAt = sc.CreatedAt.UTC()
			sc.Tags = map[string]string{}
			scs, seqs = append(scs, &sc), append(seqs, seq)
		}
		if key != nil {
			scs[len(scs)-1].Tags[*key] = *value
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return scs, seqs, nil
}

// GetStorageConfiguration implements ivsrt.StorageConfigurationStore. One
// statement reads it and its tags from one snapshot.
func (db *DB) GetStorageConfiguration(ctx context.Context, arn ivsrt.StorageConfigurationARN) (*ivsrt.StorageConfiguration, error) {
	var scs []*ivsrt.StorageConfiguration
	err := db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, fmt.Sprintf(qStorageConfigurations, `WHERE arn = $1`), string(arn))
		if err != nil {
			return err
		}
		scs, _, err = scanStorageConfigurations(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get storage configuration: %w", err)
	}
	if len(scs) == 0 {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "storage configuration not found")
	}
	return scs[0], nil
}

// ListStorageConfigurations implements ivsrt.StorageConfigurationStore.
func (db *DB) ListStorageConfigurations(ctx context.Context, page ivsrt.Page) ([]*ivsrt.StorageConfiguration, string, error) {
	after, err := storecore.ParseCursor(page)
	if err != nil {
		return nil, "", err
	}
	var (
		scs  []*ivsrt.StorageConfiguration
		seqs []int64
	)
	err = db.read(ctx, func(conn *pgx.Conn) error {
		// One statement reads the page and its tags from one snapshot.
		rows, err := conn.Query(ctx, fmt.Sprintf(qStorageConfigurations, `WHERE seq > $1 ORDER BY seq LIMIT $2`), after, page.Limit+1)
		if err != nil {
			return err
		}
		scs, seqs, err = scanStorageConfigurations(rows)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list storage configurations: %w", err)
	}
	scs, next := storecore.Page(scs, seqs, page.Limit)
	return scs, next, nil
}

// DeleteStorageConfiguration implements ivsrt.StorageConfigurationStore.
//
// The delete locks the row: it waits for every stage write that has found
// the storage configuration (they hold a key share lock on its row, see
// checkRecordingStorage), and every composition being created that has
// (see CreateComposition); those that come later wait for it and then find
// the row gone. So the stages and compositions read next, in snapshots
// taken after the wait, are all those that can use it; if a stage does,
// or a composition that has not ended, the delete is rolled back.
func (db *DB) DeleteStorageConfiguration(ctx context.Context, arn ivsrt.StorageConfigurationARN) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM storage_configurations WHERE arn = $1`, string(arn))
		if err != nil {
			return fmt.Errorf("delete storage configuration: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ivsrt.Errorf(ivsrt.ENOTFOUND, "storage configuration not found")
		}
		var stage string
		err = tx.QueryRow(ctx, `SELECT arn FROM stages WHERE storage_configuration_arn = $1 ORDER BY seq LIMIT 1`, string(arn)).Scan(&stage)
		switch {
		case err == nil:
			return storecore.StorageConfigurationInUse(arn, ivsrt.StageARN(stage))
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("find stages using the storage configuration: %w", err)
		}
		if c, err := compositionUsing(ctx, tx, string(arn)); err != nil {
			return err
		} else if c != "" {
			return storecore.StorageConfigurationComposed(arn, c)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tags WHERE resource_arn = $1`, string(arn)); err != nil {
			return fmt.Errorf("delete storage configuration tags: %w", err)
		}
		return nil
	})
}

// checkRecordingStorage returns EINVALID if r names a storage
// configuration that does not exist. Otherwise it holds a key share lock
// on the storage configuration's row until tx ends (as a foreign key check
// would), so that it cannot be deleted before the stage that names it is
// written, while its tags may still change.
func checkRecordingStorage(ctx context.Context, tx *Tx, r *ivsrt.AutoParticipantRecording) error {
	arn := storecore.RecordingStorage(r)
	if arn == "" {
		return nil
	}
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM storage_configurations WHERE arn = $1 FOR KEY SHARE`, string(arn)).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storecore.StorageConfigurationMissing(arn)
	case err != nil:
		return fmt.Errorf("find storage configuration: %w", err)
	}
	return nil
}

// nullStorage is the storage_configuration_arn column of a stage whose
// recording is r.
func nullStorage(r *ivsrt.AutoParticipantRecording) *string {
	arn := string(storecore.RecordingStorage(r))
	if arn == "" {
		return nil
	}
	return &arn
}
