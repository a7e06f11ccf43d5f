package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

// StartParticipantReplication implements ivsrt.ReplicationStore. The
// source stage's row is locked first, so that the replications of its
// participants start and stop one at a time and the quota holds.
func (db *DB) StartParticipantReplication(ctx context.Context, r *ivsrt.ParticipantReplication, quota ivsrt.ReplicationQuota) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		return storecore.StartReplication(ctx, sessionTx{tx}, r, quota, tx.now)
	})
}

// StopParticipantReplication implements ivsrt.ReplicationStore.
func (db *DB) StopParticipantReplication(ctx context.Context, source ivsrt.StageARN, id ivsrt.ParticipantID, dest ivsrt.StageARN) (*ivsrt.ParticipantReplication, error) {
	var r *ivsrt.ParticipantReplication
	err := db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		var err error
		r, err = storecore.StopReplication(ctx, sessionTx{tx}, source, id, dest, tx.now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

const replicationColumns = `seq, source_stage_arn, participant_id, source_session_id, destination_stage_arn,
	destination_session_id, state, reconnect_window_seconds, start_time, end_time`

func scanReplication(row pgx.Row) (*ivsrt.ParticipantReplication, int64, error) {
	var (
		r   ivsrt.ParticipantReplication
		seq int64
		end *time.Time
	)
	if err := row.Scan(&seq, &r.SourceStageARN, &r.ParticipantID, &r.SourceSessionID, &r.DestinationStageARN,
		&r.DestinationSessionID, &r.State, &r.ReconnectWindowSeconds, &r.StartTime, &end); err != nil {
		return nil, 0, err
	}
	r.StartTime, r.EndTime = r.StartTime.UTC(), fromNull(end)
	return &r, seq, nil
}

// ListParticipantReplicas implements ivsrt.ReplicationStore.
func (db *DB) ListParticipantReplicas(ctx context.Context, source ivsrt.StageARN, id ivsrt.ParticipantID, page ivsrt.Page) ([]*ivsrt.ParticipantReplication, string, error) {
	after, err := storecore.ParseCursor(page)
	if err != nil {
		return nil, "", err
	}
	var (
		replicas []*ivsrt.ParticipantReplication
		next     string
	)
	err = db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT `+replicationColumns+` FROM participant_replications
			WHERE source_stage_arn = $1 AND participant_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
			string(source), string(id), after, page.Limit+1)
		if err != nil {
			return err
		}
		replicas, next, err = collect(rows, page.Limit, func(r pgx.Rows) (*ivsrt.ParticipantReplication, int64, error) { return scanReplication(r) })
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list participant replicas: %w", err)
	}
	return replicas, next, nil
}

// ListActiveReplicas implements ivsrt.ReplicationStore.
func (db *DB) ListActiveReplicas(ctx context.Context, dest ivsrt.StageARN) ([]*ivsrt.ParticipantReplication, error) {
	var out []*ivsrt.ParticipantReplication
	err := db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT `+replicationColumns+` FROM participant_replications
			WHERE destination_stage_arn = $1 AND state = 'ACTIVE' ORDER BY seq`, string(dest))
		if err != nil {
			return err
		}
		out, err = scanReplications(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list active replicas: %w", err)
	}
	return out, nil
}

func scanReplications(rows pgx.Rows) ([]*ivsrt.ParticipantReplication, error) {
	defer rows.Close()
	var out []*ivsrt.ParticipantReplication
	for rows.Next() {
		r, _, err := scanReplication(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

var _ storecore.ReplicationTx = sessionTx{}

func (s sessionTx) ParticipantReplication(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID) (ivsrt.ParticipantState, string, ivsrt.ReplicationType, error) {
	var state, userID, typ string
	err := s.tx.QueryRow(ctx, `SELECT state, user_id, replication_type FROM participants WHERE session_id = $1 AND participant_id = $2`,
		string(session), string(id)).Scan(&state, &userID, &typ)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", "", nil
	} else if err != nil {
		return "", "", "", fmt.Errorf("find participant: %w", err)
	}
	return ivsrt.ParticipantState(state), userID, ivsrt.ReplicationType(typ), nil
}

func (s sessionTx) ActiveReplications(ctx context.Context, source ivsrt.StageARN, id ivsrt.ParticipantID) ([]*ivsrt.ParticipantReplication, error) {
	rows, err := s.tx.Query(ctx, `SELECT `+replicationColumns+` FROM participant_replications
		WHERE source_stage_arn = $1 AND participant_id = $2 AND state = 'ACTIVE' ORDER BY seq`, string(source), string(id))
	if err != nil {
		return nil, fmt.Errorf("find active replications: %w", err)
	}
	out, err := scanReplications(rows)
	if err != nil {
		return nil, fmt.Errorf("find active replications: %w", err)
	}
	return out, nil
}

func (s sessionTx) InsertReplication(ctx context.Context, r *ivsrt.ParticipantReplication) error {
	if _, err := s.tx.Exec(ctx, `INSERT INTO participant_replications
		(source_stage_arn, participant_id, source_session_id, destination_stage_arn, destination_session_id, state,
		 reconnect_window_seconds, start_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		string(r.SourceStageARN), string(r.ParticipantID), string(r.SourceSessionID), string(r.DestinationStageARN),
		string(r.DestinationSessionID), string(r.State), r.ReconnectWindowSeconds, ms(r.StartTime)); err != nil {
		return translate(err, "replication")
	}
	return nil
}

func (s sessionTx) EndReplication(ctx context.Context, r *ivsrt.ParticipantReplication) error {
	if _, err := s.tx.Exec(ctx, `UPDATE participant_replications SET state = $1, end_time = $2
		WHERE source_stage_arn = $3 AND participant_id = $4 AND destination_stage_arn = $5 AND state = 'ACTIVE'`,
		string(r.State), ms(r.EndTime), string(r.SourceStageARN), string(r.ParticipantID), string(r.DestinationStageARN)); err != nil {
		return fmt.Errorf("end replication: %w", err)
	}
	return nil
}

func (s sessionTx) SetReplication(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID, typ ivsrt.ReplicationType,
	state ivsrt.ReplicationState, sourceStage ivsrt.StageARN, sourceSession ivsrt.SessionID) error {
	var err error
	if typ == "" {
		_, err = s.tx.Exec(ctx, `UPDATE participants SET replication_state = $1 WHERE session_id = $2 AND participant_id = $3`,
			string(state), string(session), string(id))
	} else {
		_, err = s.tx.Exec(ctx, `UPDATE participants SET replication_type = $1, replication_state = $2,
			source_stage_arn = $3, source_session_id = $4 WHERE session_id = $5 AND participant_id = $6`,
			string(typ), string(state), string(sourceStage), string(sourceSession), string(session), string(id))
	}
	if err != nil {
		return fmt.Errorf("set participant replication: %w", err)
	}
	return nil
}
