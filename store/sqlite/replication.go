package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

// StartParticipantReplication implements ivsrt.ReplicationStore.
func (db *DB) StartParticipantReplication(ctx context.Context, r *ivsrt.ParticipantReplication, quota ivsrt.ReplicationQuota) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := storecore.StartReplication(ctx, sessionTx{tx}, r, quota, tx.now); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit replication start: %w", err)
	}
	return nil
}

// StopParticipantReplication implements ivsrt.ReplicationStore.
func (db *DB) StopParticipantReplication(ctx context.Context, source ivsrt.StageARN, id ivsrt.ParticipantID, dest ivsrt.StageARN) (*ivsrt.ParticipantReplication, error) {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	r, err := storecore.StopReplication(ctx, sessionTx{tx}, source, id, dest, tx.now)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit replication stop: %w", err)
	}
	return r, nil
}

const replicationColumns = `seq, source_stage_arn, participant_id, source_session_id, destination_stage_arn,
	destination_session_id, state, reconnect_window_seconds, start_time, end_time`

func scanReplication(row interface{ Scan(...any) error }) (*ivsrt.ParticipantReplication, int64, error) {
	var (
		r     ivsrt.ParticipantReplication
		seq   int64
		start int64
		end   sql.NullInt64
	)
	if err := row.Scan(&seq, &r.SourceStageARN, &r.ParticipantID, &r.SourceSessionID, &r.DestinationStageARN,
		&r.DestinationSessionID, &r.State, &r.ReconnectWindowSeconds, &start, &end); err != nil {
		return nil, 0, err
	}
	r.StartTime, r.EndTime = fromMillis(start), nullMillis(end)
	return &r, seq, nil
}

// ListParticipantReplicas implements ivsrt.ReplicationStore.
func (db *DB) ListParticipantReplicas(ctx context.Context, source ivsrt.StageARN, id ivsrt.ParticipantID, page ivsrt.Page) ([]*ivsrt.ParticipantReplication, string, error) {
	after, err := storecore.ParseCursor(page)
	if err != nil {
		return nil, "", err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+replicationColumns+` FROM participant_replications
		WHERE source_stage_arn = ? AND participant_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		string(source), string(id), after, page.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list participant replicas: %w", err)
	}
	return collect(rows, page.Limit, scanReplication)
}

// ListActiveReplicas implements ivsrt.ReplicationStore.
func (db *DB) ListActiveReplicas(ctx context.Context, dest ivsrt.StageARN) ([]*ivsrt.ParticipantReplication, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+replicationColumns+` FROM participant_replications
		WHERE destination_stage_arn = ? AND state = 'ACTIVE' ORDER BY seq`, string(dest))
	if err != nil {
		return nil, fmt.Errorf("list active replicas: %w", err)
	}
	return scanReplications(rows)
}

func scanReplications(rows *sql.Rows) ([]*ivsrt.ParticipantReplication, error) {
	defer rows.Close()
	var out []*ivsrt.ParticipantReplication
	for rows.Next() {
		r, _, err := scanReplication(rows)
		if err != nil {
			return nil, fmt.Errorf("scan replication: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read replications: %w", err)
	}
	return out, nil
}

var _ storecore.ReplicationTx = sessionTx{}

func (s sessionTx) ParticipantReplication(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID) (ivsrt.ParticipantState, string, ivsrt.ReplicationType, error) {
	var state, userID, typ string
	err := s.tx.QueryRowContext(ctx, `SELECT state, user_id, replication_type FROM participants WHERE session_id = ? AND participant_id = ?`,
		string(session), string(id)).Scan(&state, &userID, &typ)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", "", nil
	} else if err != nil {
		return "", "", "", fmt.Errorf("find participant: %w", err)
	}
	return ivsrt.ParticipantState(state), userID, ivsrt.ReplicationType(typ), nil
}

func (s sessionTx) ActiveReplications(ctx context.Context, source ivsrt.StageARN, id ivsrt.ParticipantID) ([]*ivsrt.ParticipantReplication, error) {
	rows, err := s.tx.QueryContext(ctx, `SELECT `+replicationColumns+` FROM participant_replications
		WHERE source_stage_arn = ? AND participant_id = ? AND state = 'ACTIVE' ORDER BY seq`, string(source), string(id))
	if err != nil {
		return nil, fmt.Errorf("find active replications: %w", err)
	}
	return scanReplications(rows)
}

func (s sessionTx) InsertReplication(ctx context.Context, r *ivsrt.ParticipantReplication) error {
	if _, err := s.tx.ExecContext(ctx, `INSERT INTO participant_replications
		(source_stage_arn, participant_id, source_session_id, destination_stage_arn, destination_session_id, state,
		 reconnect_window_seconds, start_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		string(r.SourceStageARN), string(r.ParticipantID), string(r.SourceSessionID), string(r.DestinationStageARN),
		string(r.DestinationSessionID), string(r.State), r.ReconnectWindowSeconds, millis(r.StartTime)); err != nil {
		return translate(err, "replication")
	}
	return nil
}

func (s sessionTx) EndReplication(ctx context.Context, r *ivsrt.ParticipantReplication) error {
	if _, err := s.tx.ExecContext(ctx, `UPDATE participant_replications SET state = ?, end_time = ?
		WHERE source_stage_arn = ? AND participant_id = ? AND destination_stage_arn = ? AND state = 'ACTIVE'`,
		string(r.State), millis(r.EndTime), string(r.SourceStageARN), string(r.ParticipantID), string(r.DestinationStageARN)); err != nil {
		return fmt.Errorf("end replication: %w", err)
	}
	return nil
}

func (s sessionTx) SetReplication(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID, typ ivsrt.ReplicationType,
	state ivsrt.ReplicationState, sourceStage ivsrt.StageARN, sourceSession ivsrt.SessionID) error {
	var err error
	if typ == "" {
		_, err = s.tx.ExecContext(ctx, `UPDATE participants SET replication_state = ? WHERE session_id = ? AND participant_id = ?`,
			string(state), string(session), string(id))
	} else {
		_, err = s.tx.ExecContext(ctx, `UPDATE participants SET replication_type = ?, replication_state = ?,
			source_stage_arn = ?, source_session_id = ? WHERE session_id = ? AND participant_id = ?`,
			string(typ), string(state), string(sourceStage), string(sourceSession), string(session), string(id))
	}
	if err != nil {
		return fmt.Errorf("set participant replication: %w", err)
	}
	return nil
}
