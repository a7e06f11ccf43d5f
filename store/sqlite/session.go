package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

// RecordEvent implements ivsrt.SessionStore. One connection writes, so the
// events of a stage are applied one at a time.
func (db *DB) RecordEvent(ctx context.Context, ev *ivsrt.Event) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if ev.Time.IsZero() {
		ev.Time = tx.now
	}
	if err := storecore.RecordEvent(ctx, sessionTx{tx}, ev); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit event: %w", err)
	}
	return nil
}

// sessionTx is tx as storecore.RecordEvent uses it.
type sessionTx struct{ tx *Tx }

var _ storecore.SessionTx = sessionTx{}

func (s sessionTx) ActiveSession(ctx context.Context, stage ivsrt.StageARN) (ivsrt.SessionID, error) {
	var active sql.NullString
	if err := s.tx.QueryRowContext(ctx, `SELECT active_session_id FROM stages WHERE arn = ?`, string(stage)).Scan(&active); err != nil {
		return "", translate(err, "stage")
	}
	return ivsrt.SessionID(active.String), nil
}

func (s sessionTx) StartSession(ctx context.Context, stage ivsrt.StageARN, id ivsrt.SessionID, at time.Time) error {
	if _, err := s.tx.ExecContext(ctx, `INSERT INTO stage_sessions (session_id, stage_arn, start_time) VALUES (?, ?, ?)`,
		string(id), string(stage), millis(at)); err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	if _, err := s.tx.ExecContext(ctx, `UPDATE stages SET active_session_id = ? WHERE arn = ?`, string(id), string(stage)); err != nil {
		return fmt.Errorf("set active session: %w", err)
	}
	return nil
}

func (s sessionTx) EndSession(ctx context.Context, stage ivsrt.StageARN, id ivsrt.SessionID, at time.Time) error {
	if _, err := s.tx.ExecContext(ctx, `UPDATE stage_sessions SET end_time = ? WHERE session_id = ?`, millis(at), string(id)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if _, err := s.tx.ExecContext(ctx, `UPDATE stages SET active_session_id = NULL WHERE arn = ?`, string(stage)); err != nil {
		return fmt.Errorf("clear active session: %w", err)
	}
	return nil
}

func (s sessionTx) Join(ctx context.Context, p *ivsrt.Participant) (userID string, err error) {
	// A participant who joins again keeps what its first client said,
	// and gains what that one left unsaid; a join that names an ingest
	// configuration (an encoder's) sets it.
	c := p.Client
	attrs, err := storecore.EncodeAttributes(p.Attributes)
	if err != nil {
		return "", err
	}
	if err := s.tx.QueryRowContext(ctx, `INSERT INTO participants
		(session_id, participant_id, user_id, attributes, state, first_join_time, protocol,
		 isp_name, os_name, os_version, browser_name, browser_version, sdk_version,
		 replication_type, source_stage_arn, source_session_id, ingest_configuration_arn, redundant_ingest)
		VALUES (?, ?, ?, ?, 'CONNECTED', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (session_id, participant_id) DO UPDATE SET state = 'CONNECTED',
			replication_type = CASE WHEN excluded.replication_type = '' THEN participants.replication_type ELSE excluded.replication_type END,
			source_stage_arn = CASE WHEN excluded.replication_type = '' THEN participants.source_stage_arn ELSE excluded.source_stage_arn END,
			source_session_id = CASE WHEN excluded.replication_type = '' THEN participants.source_session_id ELSE excluded.source_session_id END,
			ingest_configuration_arn = CASE WHEN excluded.ingest_configuration_arn = '' THEN participants.ingest_configuration_arn ELSE excluded.ingest_configuration_arn END,
			redundant_ingest = CASE WHEN excluded.ingest_configuration_arn = '' THEN participants.redundant_ingest ELSE excluded.redundant_ingest END,
			isp_name = CASE WHEN participants.isp_name = '' THEN excluded.isp_name ELSE participants.isp_name END,
			os_name = CASE WHEN participants.os_name = '' THEN excluded.os_name ELSE participants.os_name END,
			os_version = CASE WHEN participants.os_version = '' THEN excluded.os_version ELSE participants.os_version END,
			browser_name = CASE WHEN participants.browser_name = '' THEN excluded.browser_name ELSE participants.browser_name END,
			browser_version = CASE WHEN participants.browser_version = '' THEN excluded.browser_version ELSE participants.browser_version END,
			sdk_version = CASE WHEN participants.sdk_version = '' THEN excluded.sdk_version ELSE participants.sdk_version END
		RETURNING user_id`,
		string(p.SessionID), string(p.ID), p.UserID, string(attrs), millis(p.FirstJoinTime), p.Protocol,
		c.ISPName, c.OSName, c.OSVersion, c.BrowserName, c.BrowserVersion, c.SDKVersion,
		string(p.ReplicationType), string(p.SourceStageARN), string(p.SourceSessionID),
		string(p.IngestConfigurationARN), p.RedundantIngest).Scan(&userID); err != nil {
		return "", fmt.Errorf("upsert participant: %w", err)
	}
	return userID, nil
}

func (s sessionTx) ParticipantState(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID) (ivsrt.ParticipantState, string, error) {
	var state, userID string
	err := s.tx.QueryRowContext(ctx, `SELECT state, user_id FROM participants WHERE session_id = ? AND participant_id = ?`,
		string(session), string(id)).Scan(&state, &userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	} else if err != nil {
		return "", "", fmt.Errorf("find participant: %w", err)
	}
	return ivsrt.ParticipantState(state), userID, nil
}

func (s sessionTx) AddEvent(ctx context.Context, ev *ivsrt.Event) error {
	previous, err := storecore.EncodeExchangedToken(ev.PreviousToken)
	if err != nil {
		return err
	}
	next, err := storecore.EncodeExchangedToken(ev.NewToken)
	if err != nil {
		return err
	}
	if _, err := s.tx.ExecContext(ctx, `INSERT INTO participant_events
		(session_id, participant_id, name, remote_participant_id, error_code, event_time,
		 replica, destination_stage_arn, destination_session_id, previous_token, new_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(ev.SessionID), string(ev.ParticipantID), string(ev.Name), string(ev.RemoteParticipantID), ev.ErrorCode, millis(ev.Time),
		ev.Replica, string(ev.DestinationStageARN), string(ev.DestinationSessionID), previous, next); err != nil {
		return fmt.Errorf("insert event: %w", err)
	}
	return nil
}

func (s sessionTx) ExchangeToken(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID, tok *ivsrt.ExchangedToken) error {
	attrs, err := storecore.EncodeAttributes(tok.Attributes)
	if err != nil {
		return err
	}
	caps := make([]string, len(tok.Capabilities))
	for i, c := range tok.Capabilities {
		caps[i] = string(c)
	}
	if _, err := s.tx.ExecContext(ctx, `UPDATE participants SET user_id = ?, attributes = ? WHERE session_id = ? AND participant_id = ?`,
		tok.UserID, string(attrs), string(session), string(id)); err != nil {
		return fmt.Errorf("exchange token: participant: %w", err)
	}
	if _, err := s.tx.ExecContext(ctx, `UPDATE participant_tokens SET user_id = ?, attributes = ?, capabilities = ?,
		expires_at = ?, not_before = ? WHERE participant_id = ? AND public_key_arn <> ''`,
		tok.UserID, string(attrs), strings.Join(caps, ","), millis(tok.ExpirationTime), millis(tok.IssuedAt), string(id)); err != nil {
		return fmt.Errorf("exchange token: %w", err)
	}
	return nil
}

func (s sessionTx) MarkPublished(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID) error {
	if _, err := s.tx.ExecContext(ctx, `UPDATE participants SET published = 1 WHERE session_id = ? AND participant_id = ?`,
		string(session), string(id)); err != nil {
		return fmt.Errorf("mark published: %w", err)
	}
	return nil
}

func (s sessionTx) Disconnect(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID) error {
	if _, err := s.tx.ExecContext(ctx, `UPDATE participants SET state = 'DISCONNECTED' WHERE session_id = ? AND participant_id = ?`,
		string(session), string(id)); err != nil {
		return fmt.Errorf("mark disconnected: %w", err)
	}
	return nil
}

func (s sessionTx) AnyConnected(ctx context.Context, session ivsrt.SessionID) (bool, error) {
	var connected int
	if err := s.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM participants WHERE session_id = ? AND state = 'CONNECTED'`,
		string(session)).Scan(&connected); err != nil {
		return false, fmt.Errorf("count connected: %w", err)
	}
	return connected > 0, nil
}

func (s sessionTx) AppendEvents(ctx context.Context, evs ...*ivsrt.StreamEvent) error {
	for _, ev := range evs {
		if err := appendEvent(ctx, s.tx, ev); err != nil {
			return err
		}
	}
	return nil
}

// SetParticipantRecording implements ivsrt.SessionStore.
func (db *DB) SetParticipantRecording(ctx context.Context, r *ivsrt.ParticipantRecording) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	at := r.Time
	if at.IsZero() {
		at = tx.now
	}
	if err := storecore.SetParticipantRecording(ctx, sessionTx{tx}, r, at); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit participant recording: %w", err)
	}
	return nil
}

var _ storecore.RecordingTx = sessionTx{}

func (s sessionTx) SetRecording(ctx context.Context, r *ivsrt.ParticipantRecording) (bool, error) {
	res, err := s.tx.ExecContext(ctx, `UPDATE participants SET recording_bucket = ?, recording_prefix = ?, recording_state = ?
		WHERE session_id = ? AND participant_id = ?
		AND session_id IN (SELECT session_id FROM stage_sessions WHERE stage_arn = ?)`,
		r.Bucket, r.Prefix, string(r.State), string(r.SessionID), string(r.ParticipantID), string(r.StageARN))
	if err != nil {
		return false, fmt.Errorf("set participant recording: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("set participant recording: %w", err)
	}
	return n > 0, nil
}

// GetStageSession implements ivsrt.SessionStore.
func (db *DB) GetStageSession(ctx context.Context, stage ivsrt.StageARN, id ivsrt.SessionID) (*ivsrt.StageSession, error) {
	s, _, err := scanSession(db.read.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM stage_sessions
		WHERE stage_arn = ? AND session_id = ?`, string(stage), string(id)))
	if err != nil {
		return nil, translate(err, "stage session")
	}
	return s, nil
}

const sessionColumns = `seq, session_id, stage_arn, start_time, end_time`

func scanSession(row interface{ Scan(...any) error }) (*ivsrt.StageSession, int64, error) {
	var (
		s     ivsrt.StageSession
		seq   int64
		start int64
		end   sql.NullInt64
	)
	if err := row.Scan(&seq, &s.ID, &s.StageARN, &start, &end); err != nil {
		return nil, 0, err
	}
	s.StartTime, s.EndTime = fromMillis(start), nullMillis(end)
	return &s, seq, nil
}

// ListStageSessions implements ivsrt.SessionStore.
func (db *DB) ListStageSessions(ctx context.Context, stage ivsrt.StageARN, page ivsrt.Page) ([]*ivsrt.StageSession, string, error) {
	before, err := storecore.ParseCursorDesc(page)
	if err != nil {
		return nil, "", err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+sessionColumns+` FROM stage_sessions
		WHERE stage_arn = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, string(stage), before, page.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list stage sessions: %w", err)
	}
	return collect(rows, page.Limit, scanSession)
}

const participantColumns = `p.seq, p.participant_id, s.stage_arn, p.session_id, p.user_id, p.attributes,
	p.state, p.first_join_time, p.published, p.protocol, p.recording_bucket, p.recording_prefix, p.recording_state,
	p.isp_name, p.os_name, p.os_version, p.browser_name, p.browser_version, p.sdk_version,
	p.replication_type, p.replication_state, p.source_stage_arn, p.source_session_id,
	p.ingest_configuration_arn, p.redundant_ingest`

func scanParticipant(row interface{ Scan(...any) error }) (*ivsrt.Participant, int64, error) {
	var (
		p     ivsrt.Participant
		seq   int64
		attrs string
		first int64
	)
	if err := row.Scan(&seq, &p.ID, &p.StageARN, &p.SessionID, &p.UserID, &attrs, &p.State, &first, &p.Published, &p.Protocol,
		&p.RecordingBucket, &p.RecordingPrefix, &p.RecordingState,
		&p.Client.ISPName, &p.Client.OSName, &p.Client.OSVersion, &p.Client.BrowserName, &p.Client.BrowserVersion, &p.Client.SDKVersion,
		&p.ReplicationType, &p.ReplicationState, &p.SourceStageARN, &p.SourceSessionID,
		&p.IngestConfigurationARN, &p.RedundantIngest); err != nil {
		return nil, 0, err
	}
	var err error
	if p.Attributes, err = storecore.DecodeAttributes([]byte(attrs)); err != nil {
		return nil, 0, err
	}
	p.FirstJoinTime = fromMillis(first)
	return &p, seq, nil
}

// GetParticipant implements ivsrt.SessionStore.
func (db *DB) GetParticipant(ctx context.Context, stage ivsrt.StageARN, session ivsrt.SessionID, id ivsrt.ParticipantID) (*ivsrt.Participant, error) {
	p, _, err := scanParticipant(db.read.QueryRowContext(ctx, `SELECT `+participantColumns+`
		FROM participants p JOIN stage_sessions s ON s.session_id = p.session_id
		WHERE s.stage_arn = ? AND p.session_id = ? AND p.participant_id = ?`, string(stage), string(session), string(id)))
	if err != nil {
		return nil, translate(err, "participant")
	}
	return p, nil
}

// ListParticipants implements ivsrt.SessionStore.
func (db *DB) ListParticipants(ctx context.Context, stage ivsrt.StageARN, session ivsrt.SessionID, f ivsrt.ParticipantFilter, page ivsrt.Page) ([]*ivsrt.Participant, string, error) {
	after, err := storecore.ParseCursor(page)
	if err != nil {
		return nil, "", err
	}
	q := `SELECT ` + participantColumns + ` FROM participants p JOIN stage_sessions s ON s.session_id = p.session_id
		WHERE s.stage_arn = ? AND p.session_id = ? AND p.seq > ?`
	args := []any{string(stage), string(session), after}
	switch {
	case f.UserID != nil:
		q += ` AND p.user_id = ?`
		args = append(args, *f.UserID)
	case f.Published != nil:
		q += ` AND p.published = ?`
		args = append(args, *f.Published)
	case f.State != nil:
		q += ` AND p.state = ?`
		args = append(args, string(*f.State))
	case f.RecordingState != nil:
		q += ` AND p.recording_state = ?`
		args = append(args, *f.RecordingState)
	}
	q += ` ORDER BY p.seq LIMIT ?`
	args = append(args, page.Limit+1)
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list participants: %w", err)
	}
	return collect(rows, page.Limit, scanParticipant)
}

// ListParticipantEvents implements ivsrt.SessionStore.
func (db *DB) ListParticipantEvents(ctx context.Context, stage ivsrt.StageARN, session ivsrt.SessionID, id ivsrt.ParticipantID, page ivsrt.Page) ([]*ivsrt.Event, string, error) {
	after, err := storecore.ParseCursor(page)
	if err != nil {
		return nil, "", err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT e.seq, s.stage_arn, e.session_id, e.name, e.participant_id,
		e.remote_participant_id, e.error_code, e.event_time, e.replica, e.destination_stage_arn, e.destination_session_id,
		e.previous_token, e.new_token
		FROM participant_events e JOIN stage_sessions s ON s.session_id = e.session_id
		WHERE s.stage_arn = ? AND e.session_id = ? AND e.participant_id = ? AND e.seq > ?
		ORDER BY e.seq LIMIT ?`, string(stage), string(session), string(id), after, page.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list participant events: %w", err)
	}
	return collect(rows, page.Limit, func(row interface{ Scan(...any) error }) (*ivsrt.Event, int64, error) {
		var (
			e              ivsrt.Event
			seq            int64
			at             int64
			previous, next string
		)
		if err := row.Scan(&seq, &e.StageARN, &e.SessionID, &e.Name, &e.ParticipantID, &e.RemoteParticipantID, &e.ErrorCode, &at,
			&e.Replica, &e.DestinationStageARN, &e.DestinationSessionID, &previous, &next); err != nil {
			return nil, 0, err
		}
		e.Time = fromMillis(at)
		var err error
		if e.PreviousToken, err = storecore.DecodeExchangedToken(previous); err != nil {
			return nil, 0, err
		}
		if e.NewToken, err = storecore.DecodeExchangedToken(next); err != nil {
			return nil, 0, err
		}
		return &e, seq, nil
	})
}

// collect reads a page of rows (see storecore.Collect) and closes them.
func collect[T any](rows *sql.Rows, limit int, scan func(interface{ Scan(...any) error }) (T, int64, error)) ([]T, string, error) {
	defer rows.Close()
	return storecore.Collect(rows, limit, func(r *sql.Rows) (T, int64, error) { return scan(r) })
}
