package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

var _ ivsrt.StorageConfigurationStore = (*DB)(nil)

// CreateStorageConfiguration implements ivsrt.StorageConfigurationStore.
func (db *DB) CreateStorageConfiguration(ctx context.Context, sc *ivsrt.StorageConfiguration) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO storage_configurations (arn, name, s3_bucket_name, created_at) VALUES (?, ?, ?, ?)`,
		string(sc.ARN), sc.Name, sc.S3BucketName, millis(tx.now)); err != nil {
		return translate(err, "storage configuration")
	}
	if err := putTags(ctx, tx, string(sc.ARN), sc.Tags); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit create storage configuration: %w", err)
	}
	sc.CreatedAt = tx.now
	return nil
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
func scanStorageConfigurations(rows *sql.Rows) ([]*ivsrt.StorageConfiguration, []int64, error) {
	defer rows.Close()
	var (
		scs  []*ivsrt.StorageConfiguration
		seqs []int64
	)
	for rows.Next() {
		var (
			sc         ivsrt.StorageConfiguration
			seq        int64
			createdAt  int64
			key, value sql.NullString
		)
		if err := rows.Scan(&seq, &sc.ARN, &sc.Name, &sc.S3BucketName, &createdAt, &key, &value); err != nil {
			return nil, nil, err
		}
		if n := len(seqs); n == 0 || seqs[n-1] != seq {
			sc.CreatedAt = fromMillis(createdAt)
			sc.Tags = map[string]string{}
			scs, seqs = append(scs, &sc), append(seqs, seq)
		}
		if key.Valid {
			scs[len(scs)-1].Tags[key.String] = value.String
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return scs, seqs, rows.Close()
}

// GetStorageConfiguration implements ivsrt.StorageConfigurationStore. One
// statement reads it and its tags from one snapshot.
func (db *DB) GetStorageConfiguration(ctx context.Context, arn ivsrt.StorageConfigurationARN) (*ivsrt.StorageConfiguration, error) {
	rows, err := db.read.QueryContext(ctx, fmt.Sprintf(qStorageConfigurations, `WHERE arn = ?`), string(arn))
	if err != nil {
		return nil, fmt.Errorf("get storage configuration: %w", err)
	}
	scs, _, err := scanStorageConfigurations(rows)
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
	// One statement reads the page and its tags from one snapshot.
	rows, err := db.read.QueryContext(ctx, fmt.Sprintf(qStorageConfigurations, `WHERE seq > ? ORDER BY seq LIMIT ?`), after, page.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list storage configurations: %w", err)
	}
	scs, seqs, err := scanStorageConfigurations(rows)
	if err != nil {
		return nil, "", fmt.Errorf("list storage configurations: %w", err)
	}
	scs, next := storecore.Page(scs, seqs, page.Limit)
	return scs, next, nil
}

// DeleteStorageConfiguration implements ivsrt.StorageConfigurationStore.
// The one writer makes the check for stages and compositions that use it
// and the delete one step: none can start using it in between.
func (db *DB) DeleteStorageConfiguration(ctx context.Context, arn ivsrt.StorageConfigurationARN) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := storageConfigurationExists(ctx, tx, arn); err != nil {
		return err
	}
	var stage string
	switch err := tx.QueryRowContext(ctx, `SELECT arn FROM stages WHERE storage_configuration_arn = ? ORDER BY seq LIMIT 1`,
		string(arn)).Scan(&stage); err {
	case nil:
		return storecore.StorageConfigurationInUse(arn, ivsrt.StageARN(stage))
	case sql.ErrNoRows:
	default:
		return fmt.Errorf("find stages using the storage configuration: %w", err)
	}
	if c, err := compositionUsing(ctx, tx, string(arn)); err != nil {
		return err
	} else if c != "" {
		return storecore.StorageConfigurationComposed(arn, c)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM storage_configurations WHERE arn = ?`, string(arn)); err != nil {
		return fmt.Errorf("delete storage configuration: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE resource_arn = ?`, string(arn)); err != nil {
		return fmt.Errorf("delete storage configuration tags: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit delete storage configuration: %w", err)
	}
	return nil
}

func storageConfigurationExists(ctx context.Context, tx *Tx, arn ivsrt.StorageConfigurationARN) error {
	var n int
	if err := tx.QueryRowContext(ctx, qStorageConfigurationExists, string(arn)).Scan(&n); err != nil {
		return fmt.Errorf("find storage configuration: %w", err)
	}
	if n == 0 {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "storage configuration not found")
	}
	return nil
}

// checkRecordingStorage returns EINVALID if r names a storage
// configuration that does not exist.
func checkRecordingStorage(ctx context.Context, tx *Tx, r *ivsrt.AutoParticipantRecording) error {
	arn := storecore.RecordingStorage(r)
	if arn == "" {
		return nil
	}
	if err := storageConfigurationExists(ctx, tx, arn); err != nil {
		if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
			return storecore.StorageConfigurationMissing(arn)
		}
		return err
	}
	return nil
}

// nullStorage is the storage_configuration_arn column of a stage whose
// recording is r.
func nullStorage(r *ivsrt.AutoParticipantRecording) sql.NullString {
	arn := storecore.RecordingStorage(r)
	return sql.NullString{String: string(arn), Valid: arn != ""}
}
