package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

// encodeRecording returns the recording column of a stage: the JSON of
// its configuration, NULL for none.
func encodeRecording(r *ivsrt.AutoParticipantRecording) (sql.NullString, error) {
	b, err := storecore.EncodeRecording(r)
	if err != nil || b == nil {
		return sql.NullString{}, err
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

func decodeRecording(s sql.NullString) (*ivsrt.AutoParticipantRecording, error) {
	if !s.Valid {
		return nil, nil
	}
	return storecore.DecodeRecording([]byte(s.String))
}

// CreateStage implements ivsrt.StageStore.
func (db *DB) CreateStage(ctx context.Context, stage *ivsrt.Stage, tokens []*ivsrt.ParticipantToken, quota ivsrt.StageQuota) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if quota.MaxStages > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM stages`).Scan(&n); err != nil {
			return fmt.Errorf("count stages: %w", err)
		}
		if err := storecore.CheckStageQuota(quota, n); err != nil {
			return err
		}
	}
	if err := checkRecordingStorage(ctx, tx, stage.AutoParticipantRecording); err != nil {
		return err
	}
	rec, err := encodeRecording(stage.AutoParticipantRecording)
	if err != nil {
		return err
	}
	stage.CreatedAt, stage.UpdatedAt = tx.now, tx.now
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO stages (arn, name, active_session_id, recording, storage_configuration_arn, created_at, updated_at) VALUES (?, ?, NULL, ?, ?, ?, ?)`,
		string(stage.ARN), stage.Name, rec, nullStorage(stage.AutoParticipantRecording), millis(tx.now), millis(tx.now)); err != nil {
		return translate(err, "stage")
	}
	if err := putTags(ctx, tx, string(stage.ARN), stage.Tags); err != nil {
		return err
	}
	for _, tok := range tokens {
		if err := insertToken(ctx, tx, tok); err != nil {
			return err
		}
	}
	if err := appendEvent(ctx, tx, ivsrt.NewStageStreamEvent(stage.ARN, stage.Name, ivsrt.StreamStageCreated, tx.now)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit create stage: %w", err)
	}
	return nil
}

// GetStage implements ivsrt.StageStore.
func (db *DB) GetStage(ctx context.Context, arn ivsrt.StageARN) (*ivsrt.Stage, error) {
	// One statement reads the stage and its tags from one snapshot, so no
	// explicit transaction is needed.
	rows, err := db.readStmts[qGetStage].QueryContext(ctx, string(arn))
	if err != nil {
		return nil, fmt.Errorf("get stage: %w", err)
	}
	stages, _, err := scanStagesWithTags(rows)
	if err != nil {
		return nil, fmt.Errorf("get stage: %w", err)
	}
	if len(stages) == 0 {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "stage not found")
	}
	return stages[0], nil
}

const stageColumns = `seq, arn, name, active_session_id, recording, created_at, updated_at`

// qGetStage and qListStages return stages with their tags, one row per tag
// (or one row with NULL tag columns for a stage without tags), rows of a
// stage next to each other.
const (
	qGetStage = `SELECT s.seq, s.arn, s.name, s.active_session_id, s.recording, s.created_at, s.updated_at, t.key, t.value
		FROM stages s LEFT JOIN tags t ON t.resource_arn = s.arn WHERE s.arn = ?`
	qListStages = `SELECT s.seq, s.arn, s.name, s.active_session_id, s.recording, s.created_at, s.updated_at, t.key, t.value
		FROM (SELECT ` + stageColumns + ` FROM stages WHERE seq > ? ORDER BY seq LIMIT ?) s
		LEFT JOIN tags t ON t.resource_arn = s.arn ORDER BY s.seq`
)

// scanStagesWithTags reads the rows of qGetStage or qListStages, closing
// them, and returns the stages in order with their seqs.
func scanStagesWithTags(rows *sql.Rows) ([]*ivsrt.Stage, []int64, error) {
	defer rows.Close()
	var (
		stages []*ivsrt.Stage
		seqs   []int64
	)
	for rows.Next() {
		var (
			s                    ivsrt.Stage
			seq                  int64
			active, rec          sql.NullString
			createdAt, updatedAt int64
			key, value           sql.NullString
		)
		if err := rows.Scan(&seq, &s.ARN, &s.Name, &active, &rec, &createdAt, &updatedAt, &key, &value); err != nil {
			return nil, nil, err
		}
		if n := len(seqs); n == 0 || seqs[n-1] != seq {
			s.ActiveSessionID = ivsrt.SessionID(active.String)
			s.CreatedAt, s.UpdatedAt = fromMillis(createdAt), fromMillis(updatedAt)
			var err error
			if s.AutoParticipantRecording, err = decodeRecording(rec); err != nil {
				return nil, nil, err
			}
			s.Tags = map[string]string{}
			stages, seqs = append(stages, &s), append(seqs, seq)
		}
		if key.Valid {
			stages[len(stages)-1].Tags[key.String] = value.String
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return stages, seqs, rows.Close()
}

func scanStage(row interface{ Scan(...any) error }) (*ivsrt.Stage, int64, error) {
	var (
		s                    ivsrt.Stage
		seq                  int64
		active               sql.NullString
		rec                  sql.NullString
		createdAt, updatedAt int64
	)
	if err := row.Scan(&seq, &s.ARN, &s.Name, &active, &rec, &createdAt, &updatedAt); err != nil {
		return nil, 0, err
	}
	s.ActiveSessionID = ivsrt.SessionID(active.String)
	s.CreatedAt, s.UpdatedAt = fromMillis(createdAt), fromMillis(updatedAt)
	var err error
	if s.AutoParticipantRecording, err = decodeRecording(rec); err != nil {
		return nil, 0, err
	}
	return &s, seq, nil
}

func getStage(ctx context.Context, tx *Tx, arn ivsrt.StageARN) (*ivsrt.Stage, error) {
	s, _, err := scanStage(tx.QueryRowContext(ctx, `SELECT `+stageColumns+` FROM stages WHERE arn = ?`, string(arn)))
	if err != nil {
		return nil, translate(err, "stage")
	}
	if s.Tags, err = listTags(ctx, tx, string(arn)); err != nil {
		return nil, err
	}
	return s, nil
}

// UpdateStage implements ivsrt.StageStore.
func (db *DB) UpdateStage(ctx context.Context, arn ivsrt.StageARN, upd ivsrt.StageUpdate) (*ivsrt.Stage, error) {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	s, err := getStage(ctx, tx, arn)
	if err != nil {
		return nil, err
	}
	// Only a storage configuration the update names must exist: a stage
	// from before they did keeps the one it has.
	if err := checkRecordingStorage(ctx, tx, upd.AutoParticipantRecording); err != nil {
		return nil, err
	}
	storecore.ApplyUpdate(s, upd)
	rec, err := encodeRecording(s.AutoParticipantRecording)
	if err != nil {
		return nil, err
	}
	s.UpdatedAt = tx.now
	if _, err := tx.ExecContext(ctx, `UPDATE stages SET name = ?, recording = ?, storage_configuration_arn = ?, updated_at = ? WHERE arn = ?`,
		s.Name, rec, nullStorage(s.AutoParticipantRecording), millis(tx.now), string(arn)); err != nil {
		return nil, fmt.Errorf("update stage: %w", err)
	}
	if err := appendEvent(ctx, tx, ivsrt.NewStageStreamEvent(arn, s.Name, ivsrt.StreamStageUpdated, tx.now)); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit update stage: %w", err)
	}
	return s, nil
}

// DeleteStage implements ivsrt.StageStore. Foreign keys cascade to tokens,
// sessions, participants and events; tags are keyed by ARN and go explicitly.
// A session still active ends with the stage, and the stream says so.
func (db *DB) DeleteStage(ctx context.Context, arn ivsrt.StageARN) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var (
		name   string
		active sql.NullString
	)
	if err := tx.QueryRowContext(ctx, `SELECT name, active_session_id FROM stages WHERE arn = ?`, string(arn)).Scan(&name, &active); err != nil {
		return translate(err, "stage")
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM stages WHERE arn = ?`, string(arn)); err != nil {
		return fmt.Errorf("delete stage: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE resource_arn = ?`, string(arn)); err != nil {
		return fmt.Errorf("delete stage tags: %w", err)
	}
	for _, ev := range storecore.StageDeleted(arn, name, ivsrt.SessionID(active.String), tx.now) {
		if err := appendEvent(ctx, tx, ev); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit delete stage: %w", err)
	}
	return nil
}

// ListStages implements ivsrt.StageStore.
func (db *DB) ListStages(ctx context.Context, page ivsrt.Page) ([]*ivsrt.Stage, string, error) {
	after, err := storecore.ParseCursor(page)
	if err != nil {
		return nil, "", err
	}
	// One statement reads the page and its tags from one snapshot.
	rows, err := db.readStmts[qListStages].QueryContext(ctx, after, page.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list stages: %w", err)
	}
	stages, seqs, err := scanStagesWithTags(rows)
	if err != nil {
		return nil, "", fmt.Errorf("list stages: %w", err)
	}
	stages, next := storecore.Page(stages, seqs, page.Limit)
	return stages, next, nil
}

// TagResource implements ivsrt.StageStore.
func (db *DB) TagResource(ctx context.Context, arn string, tags map[string]string) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := resourceExists(ctx, tx, arn); err != nil {
		return err
	}
	if err := putTags(ctx, tx, arn, tags); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tags WHERE resource_arn = ?`, arn).Scan(&n); err != nil {
		return fmt.Errorf("count tags: %w", err)
	}
	if err := storecore.CheckTagCount(n); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit tag resource: %w", err)
	}
	return nil
}

// UntagResource implements ivsrt.StageStore.
func (db *DB) UntagResource(ctx context.Context, arn string, keys []string) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := resourceExists(ctx, tx, arn); err != nil {
		return err
	}
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE resource_arn = ? AND key = ?`, arn, k); err != nil {
			return fmt.Errorf("delete tag: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit untag resource: %w", err)
	}
	return nil
}

// ListTags implements ivsrt.StageStore.
func (db *DB) ListTags(ctx context.Context, arn string) (map[string]string, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if err := resourceExists(ctx, tx, arn); err != nil {
		return nil, err
	}
	return listTags(ctx, tx, arn)
}

const (
	qStageExists                = `SELECT COUNT(*) FROM stages WHERE arn = ?`
	qStorageConfigurationExists = `SELECT COUNT(*) FROM storage_configurations WHERE arn = ?`
	qPublicKeyExists            = `SELECT COUNT(*) FROM public_keys WHERE arn = ?`
	qIngestConfigurationExists  = `SELECT COUNT(*) FROM ingest_configurations WHERE arn = ?`
	qEncoderConfigurationExists = `SELECT COUNT(*) FROM encoder_configurations WHERE arn = ?`
	qCompositionExists          = `SELECT COUNT(*) FROM compositions WHERE arn = ?`
)

// resourceExists checks a taggable resource: a stage, a storage
// configuration, a public key, an ingest configuration, an encoder
// configuration or a composition.
func resourceExists(ctx context.Context, tx *Tx, arn string) error {
	var query string
	switch storecore.KindOf(arn) {
	case storecore.StageResource:
		query = qStageExists
	case storecore.StorageConfigurationResource:
		query = qStorageConfigurationExists
	case storecore.PublicKeyResource:
		query = qPublicKeyExists
	case storecore.IngestConfigurationResource:
		query = qIngestConfigurationExists
	case storecore.EncoderConfigurationResource:
		query = qEncoderConfigurationExists
	case storecore.CompositionResource:
		query = qCompositionExists
	default:
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "resource not found")
	}
	var n int
	if err := tx.QueryRowContext(ctx, query, arn).Scan(&n); err != nil {
		return fmt.Errorf("find resource: %w", err)
	}
	if n == 0 {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "resource not found")
	}
	return nil
}

func putTags(ctx context.Context, tx *Tx, arn string, tags map[string]string) error {
	for k, v := range tags {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO tags (resource_arn, key, value) VALUES (?, ?, ?) ON CONFLICT (resource_arn, key) DO UPDATE SET value = excluded.value`,
			arn, k, v); err != nil {
			return fmt.Errorf("put tag: %w", err)
		}
	}
	return nil
}

func listTags(ctx context.Context, tx *Tx, arn string) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT key, value FROM tags WHERE resource_arn = ?`, arn)
	if err != nil {
		return nil, fmt.Errorf("list tags: %w", err)
	}
	defer rows.Close()
	tags := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("scan tag: %w", err)
		}
		tags[k] = v
	}
	return tags, rows.Err()
}
