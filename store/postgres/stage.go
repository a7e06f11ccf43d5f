package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

// CreateStage implements ivsrt.StageStore.
//
// With a quota the count and the insert must not interleave with another
// CreateStage's, so that two nodes cannot both take the last stage: the
// transaction is SERIALIZABLE, and the one that loses is run again (and
// then finds the quota used up).
func (db *DB) CreateStage(ctx context.Context, stage *ivsrt.Stage, tokens []*ivsrt.ParticipantToken, quota ivsrt.StageQuota) error {
	rec, err := storecore.EncodeRecording(stage.AutoParticipantRecording)
	if err != nil {
		return err
	}
	iso := pgx.ReadCommitted
	if quota.MaxStages > 0 {
		iso = pgx.Serializable
	}
	return db.write(ctx, iso, func(tx *Tx) error {
		if quota.MaxStages > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM stages`).Scan(&n); err != nil {
				return fmt.Errorf("count stages: %w", err)
			}
			if err := storecore.CheckStageQuota(quota, n); err != nil {
				return err
			}
		}
		if err := checkRecordingStorage(ctx, tx, stage.AutoParticipantRecording); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO stages (arn, name, active_session_id, recording, storage_configuration_arn, created_at, updated_at)
			VALUES ($1, $2, NULL, $3, $4, $5, $5)`, string(stage.ARN), stage.Name, rec, nullStorage(stage.AutoParticipantRecording), tx.now); err != nil {
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
		if err := appendEvents(ctx, tx, ivsrt.NewStageStreamEvent(stage.ARN, stage.Name, ivsrt.StreamStageCreated, tx.now)); err != nil {
			return err
		}
		stage.CreatedAt, stage.UpdatedAt = tx.now, tx.now
		return nil
	})
}

// qStages returns stages with their tags, one row per tag (or one row with
// NULL tag columns for a stage without tags), rows of a stage next to each
// other, in seq order. %s is the WHERE clause and LIMIT of the stages.
const qStages = `SELECT s.seq, s.arn, s.name, s.active_session_id, s.recording, s.created_at, s.updated_at, t.key, t.value
	FROM (SELECT seq, arn, name, active_session_id, recording, created_at, updated_at FROM stages %s) s
	LEFT JOIN tags t ON t.resource_arn = s.arn ORDER BY s.seq`

// scanStages reads the rows of qStages, closing them, and returns the
// stages in order with their seqs.
func scanStages(rows pgx.Rows) ([]*ivsrt.Stage, []int64, error) {
	defer rows.Close()
	var (
		stages []*ivsrt.Stage
		seqs   []int64
	)
	for rows.Next() {
		var (
			s          ivsrt.Stage
			seq        int64
			active     *string
			rec        []byte
			key, value *string
		)
		if err := rows.Scan(&seq, &s.ARN, &s.Name, &active, &rec, &s.CreatedAt, &s.UpdatedAt, &key, &value); err != nil {
			return nil, nil, err
		}
		if n := len(seqs); n == 0 || seqs[n-1] != seq {
			if active != nil {
				s.ActiveSessionID = ivsrt.SessionID(*active)
			}
			s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
			var err error
			if s.AutoParticipantRecording, err = storecore.DecodeRecording(rec); err != nil {
				return nil, nil, err
			}
			s.Tags = map[string]string{}
			stages, seqs = append(stages, &s), append(seqs, seq)
		}
		if key != nil {
			stages[len(stages)-1].Tags[*key] = *value
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return stages, seqs, nil
}

// GetStage implements ivsrt.StageStore. One statement reads the stage and
// its tags from one snapshot.
func (db *DB) GetStage(ctx context.Context, arn ivsrt.StageARN) (*ivsrt.Stage, error) {
	var stages []*ivsrt.Stage
	err := db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, fmt.Sprintf(qStages, `WHERE arn = $1`), string(arn))
		if err != nil {
			return err
		}
		stages, _, err = scanStages(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get stage: %w", err)
	}
	if len(stages) == 0 {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "stage not found")
	}
	return stages[0], nil
}

// lockStage returns the stage's name and active session, locking its row
// until tx ends: the writers of one stage take turns, as SQLite's single
// writer made them. FOR NO KEY UPDATE leaves the key alone, so foreign key
// checks (a token inserted for the stage) do not wait.
func lockStage(ctx context.Context, tx *Tx, arn string) (name string, active ivsrt.SessionID, err error) {
	var session *string
	err = tx.QueryRow(ctx, `SELECT name, active_session_id FROM stages WHERE arn = $1 FOR NO KEY UPDATE`, arn).Scan(&name, &session)
	if err != nil {
		return "", "", err
	}
	if session != nil {
		active = ivsrt.SessionID(*session)
	}
	return name, active, nil
}

// UpdateStage implements ivsrt.StageStore.
func (db *DB) UpdateStage(ctx context.Context, arn ivsrt.StageARN, upd ivsrt.StageUpdate) (*ivsrt.Stage, error) {
	var s *ivsrt.Stage
	err := db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		if _, _, err := lockStage(ctx, tx, string(arn)); err != nil {
			return translate(err, "stage")
		}
		rows, err := tx.Query(ctx, fmt.Sprintf(qStages, `WHERE arn = $1`), string(arn))
		if err != nil {
			return fmt.Errorf("get stage: %w", err)
		}
		stages, _, err := scanStages(rows)
		if err != nil {
			return fmt.Errorf("get stage: %w", err)
		}
		if len(stages) == 0 {
			return ivsrt.Errorf(ivsrt.ENOTFOUND, "stage not found")
		}
		s = stages[0]
		// Only a storage configuration the update names must exist: a
		// stage from before they did keeps the one it has.
		if err := checkRecordingStorage(ctx, tx, upd.AutoParticipantRecording); err != nil {
			return err
		}
		storecore.ApplyUpdate(s, upd)
		rec, err := storecore.EncodeRecording(s.AutoParticipantRecording)
		if err != nil {
			return err
		}
		s.UpdatedAt = tx.now
		if _, err := tx.Exec(ctx, `UPDATE stages SET name = $1, recording = $2, storage_configuration_arn = $3, updated_at = $4 WHERE arn = $5`,
			s.Name, rec, nullStorage(s.AutoParticipantRecording), tx.now, string(arn)); err != nil {
			return fmt.Errorf("update stage: %w", err)
		}
		return appendEvents(ctx, tx, ivsrt.NewStageStreamEvent(arn, s.Name, ivsrt.StreamStageUpdated, tx.now))
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// DeleteStage implements ivsrt.StageStore. Foreign keys cascade to tokens,
// sessions, participants and events; tags are keyed by ARN and go
// explicitly. A session still active ends with the stage, and the stream
// says so.
func (db *DB) DeleteStage(ctx context.Context, arn ivsrt.StageARN) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		var (
			name   string
			active *string
		)
		if err := tx.QueryRow(ctx, `SELECT name, active_session_id FROM stages WHERE arn = $1 FOR UPDATE`,
			string(arn)).Scan(&name, &active); err != nil {
			return translate(err, "stage")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM stages WHERE arn = $1`, string(arn)); err != nil {
			return fmt.Errorf("delete stage: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tags WHERE resource_arn = $1`, string(arn)); err != nil {
			return fmt.Errorf("delete stage tags: %w", err)
		}
		var session ivsrt.SessionID
		if active != nil {
			session = ivsrt.SessionID(*active)
		}
		return appendEvents(ctx, tx, storecore.StageDeleted(arn, name, session, tx.now)...)
	})
}

// ListStages implements ivsrt.StageStore.
func (db *DB) ListStages(ctx context.Context, page ivsrt.Page) ([]*ivsrt.Stage, string, error) {
	after, err := storecore.ParseCursor(page)
	if err != nil {
		return nil, "", err
	}
	var (
		stages []*ivsrt.Stage
		seqs   []int64
	)
	err = db.read(ctx, func(conn *pgx.Conn) error {
		// One statement reads the page and its tags from one snapshot.
		rows, err := conn.Query(ctx, fmt.Sprintf(qStages, `WHERE seq > $1 ORDER BY seq LIMIT $2`), after, page.Limit+1)
		if err != nil {
			return err
		}
		stages, seqs, err = scanStages(rows)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list stages: %w", err)
	}
	stages, next := storecore.Page(stages, seqs, page.Limit)
	return stages, next, nil
}

// lockResource locks the row of a taggable resource, a stage, a storage
// configuration, a public key, an ingest configuration, an encoder
// configuration or a composition, until tx ends, so that its taggers take
// turns. Returns ENOTFOUND if there is no such resource.
func lockResource(ctx context.Context, tx *Tx, arn string) error {
	var err error
	switch storecore.KindOf(arn) {
	case storecore.StageResource:
		_, _, err = lockStage(ctx, tx, arn)
	case storecore.StorageConfigurationResource:
		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM storage_configurations WHERE arn = $1 FOR NO KEY UPDATE`, arn).Scan(&one)
	case storecore.PublicKeyResource:
		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM public_keys WHERE arn = $1 FOR NO KEY UPDATE`, arn).Scan(&one)
	case storecore.IngestConfigurationResource:
		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM ingest_configurations WHERE arn = $1 FOR NO KEY UPDATE`, arn).Scan(&one)
	case storecore.EncoderConfigurationResource:
		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM encoder_configurations WHERE arn = $1 FOR NO KEY UPDATE`, arn).Scan(&one)
	case storecore.CompositionResource:
		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM compositions WHERE arn = $1 FOR NO KEY UPDATE`, arn).Scan(&one)
	default:
		err = pgx.ErrNoRows
	}
	return translate(err, "resource")
}

// TagResource implements ivsrt.StageStore. The resource's row lock makes
// concurrent taggers take turns, so that together they cannot pass the
// limit.
func (db *DB) TagResource(ctx context.Context, arn string, tags map[string]string) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		if err := lockResource(ctx, tx, arn); err != nil {
			return err
		}
		if err := putTags(ctx, tx, arn, tags); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM tags WHERE resource_arn = $1`, arn).Scan(&n); err != nil {
			return fmt.Errorf("count tags: %w", err)
		}
		return storecore.CheckTagCount(n)
	})
}

// UntagResource implements ivsrt.StageStore.
func (db *DB) UntagResource(ctx context.Context, arn string, keys []string) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		if err := lockResource(ctx, tx, arn); err != nil {
			return err
		}
		if len(keys) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tags WHERE resource_arn = $1 AND key = ANY($2)`, arn, keys); err != nil {
			return fmt.Errorf("delete tags: %w", err)
		}
		return nil
	})
}

// ListTags implements ivsrt.StageStore. One statement tells whether the
// resource, a stage, a storage configuration, a public key, an ingest
// configuration, an encoder configuration or a composition, exists and
// reads its tags.
func (db *DB) ListTags(ctx context.Context, arn string) (map[string]string, error) {
	var (
		found bool
		tags  = map[string]string{}
	)
	err := db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT t.key, t.value
			FROM (SELECT arn FROM stages WHERE arn = $1 UNION ALL SELECT arn FROM storage_configurations WHERE arn = $1
				UNION ALL SELECT arn FROM public_keys WHERE arn = $1
				UNION ALL SELECT arn FROM ingest_configurations WHERE arn = $1
				UNION ALL SELECT arn FROM encoder_configurations WHERE arn = $1
				UNION ALL SELECT arn FROM compositions WHERE arn = $1) r
			LEFT JOIN tags t ON t.resource_arn = r.arn`, arn)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k, v *string
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			found = true
			if k != nil {
				tags[*k] = *v
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list tags: %w", err)
	}
	if !found {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "resource not found")
	}
	return tags, nil
}

// putTags inserts or overwrites tags, in one statement.
func putTags(ctx context.Context, tx *Tx, arn string, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	keys := make([]string, 0, len(tags))
	values := make([]string, 0, len(tags))
	for k, v := range tags {
		keys, values = append(keys, k), append(values, v)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO tags (resource_arn, key, value)
		SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS u (k, v)
		ON CONFLICT (resource_arn, key) DO UPDATE SET value = excluded.value`, arn, keys, values); err != nil {
		return fmt.Errorf("put tags: %w", err)
	}
	return nil
}
