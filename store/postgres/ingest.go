package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

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
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO ingest_configurations
			(arn, name, stage_arn, user_id, attributes, ingest_protocol, insecure_ingest, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
			string(ic.ARN), ic.Name, string(ic.StageARN), ic.UserID, attrs, string(ic.Protocol), ic.InsecureIngest, tx.now); err != nil {
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
		ic.CreatedAt, ic.UpdatedAt = tx.now, tx.now
		return nil
	})
}

func insertIngestCredential(ctx context.Context, tx *Tx, arn ivsrt.IngestConfigurationARN, c ivsrt.IngestCredential) error {
	if _, err := tx.Exec(ctx, `INSERT INTO ingest_credentials
		(configuration_arn, redundant, participant_id, stream_key, active) VALUES ($1, $2, $3, $4, $5)`,
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
func scanIngestConfigurations(rows pgx.Rows) ([]*ivsrt.IngestConfiguration, []int64, error) {
	defer rows.Close()
	var (
		ics  []*ivsrt.IngestConfiguration
		seqs []int64
	)
	for rows.Next() {
		var (
			ic         ivsrt.IngestConfiguration
			seq        int64
			attrs      []byte
			c          ivsrt.IngestCredential
			key, value *string
		)
		if err := rows.Scan(&seq, &ic.ARN, &ic.Name, &ic.StageARN, &ic.UserID, &attrs, &ic.Protocol, &ic.InsecureIngest,
			&ic.CreatedAt, &ic.UpdatedAt, &c.Redundant, &c.ParticipantID, &c.StreamKey, &c.Active, &key, &value); err != nil {
			return nil, nil, err
		}
		if n := len(seqs); n == 0 || seqs[n-1] != seq {
			var err error
			if ic.Attributes, err = storecore.DecodeAttributes(attrs); err != nil {
				return nil, nil, err
			}
			ic.CreatedAt, ic.UpdatedAt = ic.CreatedAt.UTC(), ic.UpdatedAt.UTC()
			ic.Tags = map[string]string{}
			ics, seqs = append(ics, &ic), append(seqs, seq)
		}
		last := ics[len(ics)-1]
		// Each credential comes once per tag.
		if _, seen := last.Credential(c.ParticipantID); !seen {
			last.Credentials = append(last.Credentials, c)
		}
		if key != nil {
			last.Tags[*key] = *value
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	for _, ic := range ics {
		storecore.SortCredentials(ic.Credentials)
	}
	return ics, seqs, nil
}

// queryIngest runs qIngestConfigurations with where on q, a connection
// or a transaction.
func queryIngest(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, where string, args ...any) ([]*ivsrt.IngestConfiguration, []int64, error) {
	rows, err := q.Query(ctx, fmt.Sprintf(qIngestConfigurations, where), args...)
	if err != nil {
		return nil, nil, err
	}
	return scanIngestConfigurations(rows)
}

// GetIngestConfiguration implements ivsrt.IngestConfigurationStore. One
// statement reads it, its credentials and its tags from one snapshot.
func (db *DB) GetIngestConfiguration(ctx context.Context, arn ivsrt.IngestConfigurationARN) (*ivsrt.IngestConfiguration, error) {
	var ics []*ivsrt.IngestConfiguration
	err := db.read(ctx, func(conn *pgx.Conn) error {
		var err error
		ics, _, err = queryIngest(ctx, conn, `WHERE arn = $1`, string(arn))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get ingest configuration: %w", err)
	}
	if len(ics) == 0 {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "ingest configuration not found")
	}
	return ics[0], nil
}

// The condition on an ingest configuration row (of ingest_configurations,
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
	conds, args := []string{"seq > $1"}, []any{after}
	switch {
	case filter.StageARN != nil:
		args = append(args, string(*filter.StageARN))
		conds = append(conds, fmt.Sprintf("stage_arn = $%d", len(args)))
	case filter.State != nil && *filter.State == ivsrt.IngestActive:
		conds = append(conds, ingestIsActive)
	case filter.State != nil:
		conds = append(conds, "NOT "+ingestIsActive)
	}
	args = append(args, page.Limit+1)
	where := fmt.Sprintf(`WHERE %s ORDER BY seq LIMIT $%d`, strings.Join(conds, " AND "), len(args))
	var (
		ics  []*ivsrt.IngestConfiguration
		seqs []int64
	)
	err = db.read(ctx, func(conn *pgx.Conn) error {
		// One statement reads the page, its credentials and tags from one
		// snapshot.
		var err error
		ics, seqs, err = queryIngest(ctx, conn, where, args...)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list ingest configurations: %w", err)
	}
	ics, next := storecore.Page(ics, seqs, page.Limit)
	return ics, next, nil
}

// lockIngest locks the row of an ingest configuration until tx ends.
// UpdateIngestConfiguration, DeleteIngestConfiguration and SetIngestActive
// take it, so that an encoder cannot start publishing between the check
// that none does and the change. Returns ENOTFOUND if it does not exist.
func lockIngest(ctx context.Context, tx *Tx, arn ivsrt.IngestConfigurationARN) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM ingest_configurations WHERE arn = $1 FOR NO KEY UPDATE`, string(arn)).Scan(&one)
	return translate(err, "ingest configuration")
}

// UpdateIngestConfiguration implements ivsrt.IngestConfigurationStore.
func (db *DB) UpdateIngestConfiguration(ctx context.Context, arn ivsrt.IngestConfigurationARN, upd ivsrt.IngestConfigurationUpdate) (*ivsrt.IngestConfiguration, error) {
	var out *ivsrt.IngestConfiguration
	err := db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		if err := lockIngest(ctx, tx, arn); err != nil {
			return err
		}
		ics, _, err := queryIngest(ctx, tx, `WHERE arn = $1`, string(arn))
		if err != nil {
			return fmt.Errorf("get ingest configuration: %w", err)
		}
		if len(ics) == 0 {
			return ivsrt.Errorf(ivsrt.ENOTFOUND, "ingest configuration not found")
		}
		ic := ics[0]
		change, err := storecore.ApplyIngestUpdate(ic, upd)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE ingest_configurations SET stage_arn = $1, updated_at = $2 WHERE arn = $3`,
			string(ic.StageARN), tx.now, string(arn)); err != nil {
			return fmt.Errorf("update ingest configuration: %w", err)
		}
		if change.RemoveRedundant {
			if _, err := tx.Exec(ctx, `DELETE FROM ingest_credentials WHERE configuration_arn = $1 AND redundant`, string(arn)); err != nil {
				return fmt.Errorf("remove redundant ingest credential: %w", err)
			}
		}
		if change.Add != nil {
			if err := insertIngestCredential(ctx, tx, arn, *change.Add); err != nil {
				return err
			}
		}
		ic.UpdatedAt = tx.now
		out = ic
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteIngestConfiguration implements ivsrt.IngestConfigurationStore.
// Its credentials go with it (foreign key); tags are keyed by ARN and go
// explicitly. The row lock makes a tag write wait for the delete, and then
// find the configuration gone.
func (db *DB) DeleteIngestConfiguration(ctx context.Context, arn ivsrt.IngestConfigurationARN, force bool) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		if err := lockIngest(ctx, tx, arn); err != nil {
			return err
		}
		var active bool
		if err := tx.QueryRow(ctx, `SELECT `+ingestIsActive+` FROM ingest_configurations WHERE arn = $1`,
			string(arn)).Scan(&active); err != nil {
			return fmt.Errorf("find ingest configuration state: %w", err)
		}
		if active && !force {
			return storecore.IngestDeleteConflict(arn)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM ingest_configurations WHERE arn = $1`, string(arn)); err != nil {
			return fmt.Errorf("delete ingest configuration: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tags WHERE resource_arn = $1`, string(arn)); err != nil {
			return fmt.Errorf("delete ingest configuration tags: %w", err)
		}
		return nil
	})
}

// DetachIngestParticipant implements ivsrt.IngestConfigurationStore.
func (db *DB) DetachIngestParticipant(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID) error {
	if stage == "" {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "ingest participant not found")
	}
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE ingest_configurations SET stage_arn = '', updated_at = $1
			WHERE stage_arn = $2 AND arn = (SELECT configuration_arn FROM ingest_credentials WHERE participant_id = $3)`,
			tx.now, string(stage), string(id))
		if err != nil {
			return fmt.Errorf("detach ingest participant: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ivsrt.Errorf(ivsrt.ENOTFOUND, "ingest participant not found")
		}
		return nil
	})
}

// DetachActiveIngest implements ivsrt.IngestConfigurationStore.
func (db *DB) DetachActiveIngest(ctx context.Context, stage ivsrt.StageARN) (int, error) {
	if stage == "" {
		return 0, nil
	}
	var n int
	err := db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE ingest_configurations SET stage_arn = '', updated_at = $1
			WHERE stage_arn = $2 AND `+ingestIsActive, tx.now, string(stage))
		if err != nil {
			return fmt.Errorf("detach active ingest: %w", err)
		}
		n = int(tag.RowsAffected())
		return nil
	})
	return n, err
}

// IngestByStreamKey implements ivsrt.IngestKeys. The unique index on
// stream keys finds the configuration; one statement reads it.
func (db *DB) IngestByStreamKey(ctx context.Context, streamKey string) (*ivsrt.IngestConfiguration, ivsrt.IngestCredential, error) {
	var ics []*ivsrt.IngestConfiguration
	err := db.read(ctx, func(conn *pgx.Conn) error {
		var err error
		ics, _, err = queryIngest(ctx, conn,
			`WHERE arn = (SELECT configuration_arn FROM ingest_credentials WHERE stream_key = $1)`, streamKey)
		return err
	})
	if err != nil {
		return nil, ivsrt.IngestCredential{}, fmt.Errorf("find ingest configuration by stream key: %w", err)
	}
	return storecore.MatchStreamKey(ics, streamKey)
}

// SetIngestActive implements ivsrt.IngestKeys. It takes the
// configuration's row lock (see lockIngest).
func (db *DB) SetIngestActive(ctx context.Context, arn ivsrt.IngestConfigurationARN, id ivsrt.ParticipantID, active bool) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		if err := lockIngest(ctx, tx, arn); err != nil {
			if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
				return ivsrt.Errorf(ivsrt.ENOTFOUND, "ingest credential not found")
			}
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE ingest_credentials SET active = $1 WHERE configuration_arn = $2 AND participant_id = $3`,
			active, string(arn), string(id))
		if err != nil {
			return fmt.Errorf("set ingest active: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ivsrt.Errorf(ivsrt.ENOTFOUND, "ingest credential not found")
		}
		return nil
	})
}
