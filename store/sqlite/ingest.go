package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

var _ ivsrt.IngestConfigurationStore = (*DB)(nil)

// CreateIngestConfiguration implements ivsrt.IngestConfigurationStore.
func (db *DB) CreateIngestConfiguration(ctx context.Context, ic *ivsrt.IngestConfiguration) error {
	attrs, err := storecore.EncodeAttributes(ic.Attributes)
	if err != nil {
		return err
	}
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO ingest_configurations
		(arn, name, stage_arn, user_id, attributes, ingest_protocol, insecure_ingest, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(ic.ARN), ic.Name, string(ic.StageARN), ic.UserID, string(attrs), string(ic.Protocol), ic.InsecureIngest,
		millis(tx.now), millis(tx.now)); err != nil {
		return translate(err, "ingest configuration")
	}
	for _, c := range ic.Credentials {
		if err := insertIngestCredential(ctx, tx, ic.ARN, c); err != nil {
			return err
		}
	}
	if err := putTags(ctx, tx, string(ic.ARN), ic.Tags); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit create ingest configuration: %w", err)
	}
	ic.CreatedAt, ic.UpdatedAt = tx.now, tx.now
	return nil
}

func insertIngestCredential(ctx context.Context, tx *Tx, arn ivsrt.IngestConfigurationARN, c ivsrt.IngestCredential) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO ingest_credentials
		(configuration_arn, redundant, participant_id, stream_key, active) VALUES (?, ?, ?, ?, ?)`,
		string(arn), c.Redundant, string(c.ParticipantID), c.StreamKey, c.Active); err != nil {
		return translate(err, "ingest credential")
	}
	return nil
}

// qIngestConfigurations returns ingest configurations with their
// credentials and tags, one row per credential and tag (a configuration
// always has a credential; NULL tag columns for one without tags), rows of
// one next to each other, in seq order. %s is the WHERE clause and LIMIT of
// the configurations.
const qIngestConfigurations = `SELECT c.seq, c.arn, c.name, c.stage_arn, c.user_id, c.attributes, c.ingest_protocol,
		c.insecure_ingest, c.created_at, c.updated_at, k.redundant, k.participant_id, k.stream_key, k.active, t.key, t.value
	FROM (SELECT seq, arn, name, stage_arn, user_id, attributes, ingest_protocol, insecure_ingest, created_at, updated_at
		FROM ingest_configurations %s) c
	JOIN ingest_credentials k ON k.configuration_arn = c.arn
	LEFT JOIN tags t ON t.resource_arn = c.arn ORDER BY c.seq, k.redundant`

// scanIngestConfigurations reads the rows of qIngestConfigurations,
// closing them, and returns the ingest configurations in order with their
// seqs.
func scanIngestConfigurations(rows *sql.Rows) ([]*ivsrt.IngestConfiguration, []int64, error) {
	defer rows.Close()
	var (
		ics  []*ivsrt.IngestConfiguration
		seqs []int64
	)
	for rows.Next() {
		var (
			ic                   ivsrt.IngestConfiguration
			seq                  int64
			attrs                string
			createdAt, updatedAt int64
			c                    ivsrt.IngestCredential
			key, value           sql.NullString
		)
		if err := rows.Scan(&seq, &ic.ARN, &ic.Name, &ic.StageARN, &ic.UserID, &attrs, &ic.Protocol, &ic.InsecureIngest,
			&createdAt, &updatedAt, &c.Redundant, &c.ParticipantID, &c.StreamKey, &c.Active, &key, &value); err != nil {
			return nil, nil, err
		}
		if n := len(seqs); n == 0 || seqs[n-1] != seq {
			var err error
			if ic.Attributes, err = storecore.DecodeAttributes([]byte(attrs)); err != nil {
				return nil, nil, err
			}
			ic.CreatedAt, ic.UpdatedAt = fromMillis(createdAt), fromMillis(updatedAt)
			ic.Tags = map[string]string{}
			ics, seqs = append(ics, &ic), append(seqs, seq)
		}
		last := ics[len(ics)-1]
		// Each credential comes once per tag.
		if _, seen := last.Credential(c.ParticipantID); !seen {
			last.Credentials = append(last.Credentials, c)
		}
		if key.Valid {
			last.Tags[key.String] = value.String
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	for _, ic := range ics {
		storecore.SortCredentials(ic.Credentials)
	}
	return ics, seqs, rows.Close()
}

// queryIngest runs qIngestConfigurations with where on q, a pool or a
// transaction.
func queryIngest(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, where string, args ...any) ([]*ivsrt.IngestConfiguration, []int64, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf(qIngestConfigurations, where), args...)
	if err != nil {
		return nil, nil, err
	}
	return scanIngestConfigurations(rows)
}

// getIngest reads one ingest configuration in tx, or ENOTFOUND.
func getIngest(ctx context.Context, tx *Tx, arn ivsrt.IngestConfigurationARN) (*ivsrt.IngestConfiguration, error) {
	ics, _, err := queryIngest(ctx, tx, `WHERE arn = ?`, string(arn))
	if err != nil {
		return nil, fmt.Errorf("get ingest configuration: %w", err)
	}
	if len(ics) == 0 {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "ingest configuration not found")
	}
	return ics[0], nil
}

// GetIngestConfiguration implements ivsrt.IngestConfigurationStore. One
// statement reads it, its credentials and its tags from one snapshot.
func (db *DB) GetIngestConfiguration(ctx context.Context, arn ivsrt.IngestConfigurationARN) (*ivsrt.IngestConfiguration, error) {
	ics, _, err := queryIngest(ctx, db.read, `WHERE arn = ?`, string(arn))
	if err != nil {
		return nil, fmt.Errorf("get ingest configuration: %w", err)
	}
	if len(ics) == 0 {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "ingest configuration not found")
	}
	return ics[0], nil
}

// The conditions on an ingest configuration row (of ingest_configurations,
// unaliased) that it is ACTIVE.
const ingestIsActive = `EXISTS (SELECT 1 FROM ingest_credentials k
	WHERE k.configuration_arn = ingest_configurations.arn AND k.active)`

// ListIngestConfigurations implements ivsrt.IngestConfigurationStore.
func (db *DB) ListIngestConfigurations(ctx context.Context, filter ivsrt.IngestFilter, page ivsrt.Page) ([]*ivsrt.IngestConfiguration, string, error) {
	after, err := storecore.ParseCursor(page)
	if err != nil {
		return nil, "", err
	}
	if err := storecore.CheckIngestFilter(filter); err != nil {
		return nil, "", err
	}
	conds, args := []string{"seq > ?"}, []any{after}
	switch {
	case filter.StageARN != nil:
		conds, args = append(conds, "stage_arn = ?"), append(args, string(*filter.StageARN))
	case filter.State != nil && *filter.State == ivsrt.IngestActive:
		conds = append(conds, ingestIsActive)
	case filter.State != nil:
		conds = append(conds, "NOT "+ingestIsActive)
	}
	// One statement reads the page, its credentials and tags from one
	// snapshot.
	ics, seqs, err := queryIngest(ctx, db.read, `WHERE `+strings.Join(conds, " AND ")+` ORDER BY seq LIMIT ?`,
		append(args, page.Limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("list ingest configurations: %w", err)
	}
	ics, next := storecore.Page(ics, seqs, page.Limit)
	return ics, next, nil
}

// UpdateIngestConfiguration implements ivsrt.IngestConfigurationStore.
// The one writer makes the check for an encoder and the change one step:
// SetIngestActive waits for it.
func (db *DB) UpdateIngestConfiguration(ctx context.Context, arn ivsrt.IngestConfigurationARN, upd ivsrt.IngestConfigurationUpdate) (*ivsrt.IngestConfiguration, error) {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	ic, err := getIngest(ctx, tx, arn)
	if err != nil {
		return nil, err
	}
	change, err := storecore.ApplyIngestUpdate(ic, upd)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE ingest_configurations SET stage_arn = ?, updated_at = ? WHERE arn = ?`,
		string(ic.StageARN), millis(tx.now), string(arn)); err != nil {
		return nil, fmt.Errorf("update ingest configuration: %w", err)
	}
	if change.RemoveRedundant {
		if _, err := tx.ExecContext(ctx, `DELETE FROM ingest_credentials WHERE configuration_arn = ? AND redundant`, string(arn)); err != nil {
			return nil, fmt.Errorf("remove redundant ingest credential: %w", err)
		}
	}
	if change.Add != nil {
		if err := insertIngestCredential(ctx, tx, arn, *change.Add); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit update ingest configuration: %w", err)
	}
	ic.UpdatedAt = tx.now
	return ic, nil
}

// DeleteIngestConfiguration implements ivsrt.IngestConfigurationStore.
// Its credentials go with it (foreign key); tags are keyed by ARN and go
// explicitly.
func (db *DB) DeleteIngestConfiguration(ctx context.Context, arn ivsrt.IngestConfigurationARN, force bool) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var active bool
	if err := tx.QueryRowContext(ctx, `SELECT `+ingestIsActive+` FROM ingest_configurations WHERE arn = ?`,
		string(arn)).Scan(&active); err != nil {
		return translate(err, "ingest configuration")
	}
	if active && !force {
		return storecore.IngestDeleteConflict(arn)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM ingest_configurations WHERE arn = ?`, string(arn)); err != nil {
		return fmt.Errorf("delete ingest configuration: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE resource_arn = ?`, string(arn)); err != nil {
		return fmt.Errorf("delete ingest configuration tags: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit delete ingest configuration: %w", err)
	}
	return nil
}

// DetachIngestParticipant implements ivsrt.IngestConfigurationStore.
func (db *DB) DetachIngestParticipant(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID) error {
	if stage == "" {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "ingest participant not found")
	}
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE ingest_configurations SET stage_arn = '', updated_at = ?
		WHERE stage_arn = ? AND arn = (SELECT configuration_arn FROM ingest_credentials WHERE participant_id = ?)`,
		millis(tx.now), string(stage), string(id))
	if err != nil {
		return fmt.Errorf("detach ingest participant: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("detach ingest participant: %w", err)
	} else if n == 0 {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "ingest participant not found")
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit detach ingest participant: %w", err)
	}
	return nil
}

// DetachActiveIngest implements ivsrt.IngestConfigurationStore.
func (db *DB) DetachActiveIngest(ctx context.Context, stage ivsrt.StageARN) (int, error) {
	if stage == "" {
		return 0, nil
	}
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE ingest_configurations SET stage_arn = '', updated_at = ?
		WHERE stage_arn = ? AND `+ingestIsActive, millis(tx.now), string(stage))
	if err != nil {
		return 0, fmt.Errorf("detach active ingest: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("detach active ingest: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit detach active ingest: %w", err)
	}
	return int(n), nil
}

// IngestByStreamKey implements ivsrt.IngestKeys. The unique index on
// stream keys finds the configuration; one statement reads it.
func (db *DB) IngestByStreamKey(ctx context.Context, streamKey string) (*ivsrt.IngestConfiguration, ivsrt.IngestCredential, error) {
	ics, _, err := queryIngest(ctx, db.read,
		`WHERE arn = (SELECT configuration_arn FROM ingest_credentials WHERE stream_key = ?)`, streamKey)
	if err != nil {
		return nil, ivsrt.IngestCredential{}, fmt.Errorf("find ingest configuration by stream key: %w", err)
	}
	return storecore.MatchStreamKey(ics, streamKey)
}

// SetIngestActive implements ivsrt.IngestKeys.
func (db *DB) SetIngestActive(ctx context.Context, arn ivsrt.IngestConfigurationARN, id ivsrt.ParticipantID, active bool) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE ingest_credentials SET active = ? WHERE configuration_arn = ? AND participant_id = ?`,
		active, string(arn), string(id))
	if err != nil {
		return fmt.Errorf("set ingest active: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set ingest active: %w", err)
	} else if n == 0 {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "ingest credential not found")
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit set ingest active: %w", err)
	}
	return nil
}
