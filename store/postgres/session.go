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

// RecordEvent implements ivsrt.SessionStore.
//
// The stage's row is locked first (lockStage), so the events of one stage
// are applied one at a time, as they would be by a single writer: two first
// joins cannot both start a session, and two last leaves cannot both miss
// ending it.
func (db *DB) RecordEvent(ctx context.Context, ev *ivsrt.Event) error {
	if ev.Time.IsZero() {
		ev.Time = ms(db.Now())
	}
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		return storecore.RecordEvent(ctx, sessionTx{tx}, ev)
	})
}

// sessionTx is tx as storecore.RecordEvent uses it.
type sessionTx struct{ tx *Tx }

var _ storecore.SessionTx = sessionTx{}

func (s sessionTx) ActiveSession(ctx context.Context, stage ivsrt.StageARN) (ivsrt.SessionID, error) {
	_, session, err := lockStage(ctx, s.tx, string(stage))
	if err != nil {
		return "", translate(err, "stage")
	}
	return session, nil
}

func (s sessionTx) StartSession(ctx context.Context, stage ivsrt.StageARN, id ivsrt.SessionID, at time.Time) error {
	if _, err := s.tx.Exec(ctx, `INSERT INTO stage_sessions (session_id, stage_arn, start_time) VALUES ($1, $2, $3)`,
		string(id), string(stage), ms(at)); err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	if _, err := s.tx.Exec(ctx, `UPDATE stages SET active_session_id = $1 WHERE arn = $2`, string(id), string(stage)); err != nil {
		return fmt.Errorf("set active session: %w", err)
	}
	return nil
}

func (s sessionTx) EndSession(ctx context.Context, stage ivsrt.StageARN, id ivsrt.SessionID, at time.Time) error {
	if _, err := s.tx.Exec(ctx, `UPDATE stage_sessions SET end_time = $1 WHERE session_id = $2`, ms(at), string(id)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if _, err := s.tx.Exec(ctx, `UPDATE stages SET active_session_id = NULL WHERE arn = $1`, string(stage)); err != nil {
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
	if err := s.tx.QueryRow(ctx, `INSERT INTO participants
		(session_id, participant_id, user_id, attributes, state, first_join_time, protocol,
		 isp_name, os_name, os_version, browser_name, browser_version, sdk_version,
		 replication_type, source_stage_arn, source_session_id, ingest_configuration_arn, redundant_ingest)
		VALUES ($1, $2, $3, $4, 'CONNECTED', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
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
		string(p.SessionID), string(p.ID), p.UserID, attrs, ms(p.FirstJoinTime), p.Protocol,
		c.ISPName, c.OSName, c.OSVersion, c.BrowserName, c.BrowserVersion, c.SDKVersion,
		string(p.ReplicationType), string(p.SourceStageARN), string(p.SourceSessionID),
		string(p.IngestConfigurationARN), p.RedundantIngest).Scan(&userID); err != nil {
		return "", fmt.Errorf("upsert participant: %w", err)
	}
	return userID, nil
}

func (s sessionTx) ParticipantState(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID) (ivsrt.ParticipantState, string, error) {
	var state, userID string
	err := s.tx.QueryRow(ctx, `SELECT state, user_id FROM participants WHERE session_id = $1 AND participant_id = $2`,
		string(session), string(id)).Scan(&state, &userID)
	if errors.Is(err, pgx.ErrNoRows) {
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
	if _, err := s.tx.Exec(ctx, `INSERT INTO participant_events
		(session_id, participant_id, name, remote_participant_id, error_code, event_time,
		 replica, destination_stage_arn, destination_session_id, previous_token, new_token)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		string(ev.SessionID), string(ev.ParticipantID), string(ev.Name), string(ev.RemoteParticipantID), ev.ErrorCode, ms(ev.Time),
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
	if _, err := s.tx.Exec(ctx, `UPDATE participants SET user_id = $1, attributes = $2 WHERE session_id = $3 AND participant_id = $4`,
		tok.UserID, attrs, string(session), string(id)); err != nil {
		return fmt.Errorf("exchange token: participant: %w", err)
	}
	if _, err := s.tx.Exec(ctx, `UPDATE participant_tokens SET user_id = $1, attributes = $2, capabilities = $3,
		expires_at = $4, not_before = $5 WHERE participant_id = $6 AND public_key_arn <> ''`,
		tok.UserID, attrs, caps, ms(tok.ExpirationTime), ms(tok.IssuedAt), string(id)); err != nil {
		return fmt.Errorf("exchange token: %w", err)
	}
	return nil
}

func (s sessionTx) MarkPublished(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID) error {
	if _, err := s.tx.Exec(ctx, `UPDATE participants SET published = TRUE WHERE session_id = $1 AND participant_id = $2`,
		string(session), string(id)); err != nil {
		return fmt.Errorf("mark published: %w", err)
	}
	return nil
}

func (s sessionTx) Disconnect(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID) error {
	if _, err := s.tx.Exec(ctx, `UPDATE participants SET state = 'DISCONNECTED' WHERE session_id = $1 AND participant_id = $2`,
		string(session), string(id)); err != nil {
		return fmt.Errorf("mark disconnected: %w", err)
	}
	return nil
}

func (s sessionTx) AnyConnected(ctx context.Context, session ivsrt.SessionID) (bool, error) {
	var connected bool
	if err := s.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM participants WHERE session_id = $1 AND state = 'CONNECTED')`,
		string(session)).Scan(&connected); err != nil {
		return false, fmt.Errorf("count connected: %w", err)
	}
	return connected, nil
}

func (s sessionTx) AppendEvents(ctx context.Context, evs ...*ivsrt.StreamEvent) error {
	return appendEvents(ctx, s.tx, evs...)
}

// SetParticipantRecording implements ivsrt.SessionStore. It locks the
// participant's row, then the outbox to append its event, the order every
// writer of the event stream keeps.
func (db *DB) SetParticipantRecording(ctx context.Context, r *ivsrt.ParticipantRecording) error {
	at := r.Time
	if at.IsZero() {
		at = ms(db.Now())
	}
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		return storecore.SetParticipantRecording(ctx, sessionTx{tx}, r, at)
	})
}

var _ storecore.RecordingTx = sessionTx{}

func (s sessionTx) SetRecording(ctx context.Context, r *ivsrt.ParticipantRecording) (bool, error) {
	tag, err := s.tx.Exec(ctx, `UPDATE participants p SET recording_bucket = $1, recording_prefix = $2, recording_state = $3
		FROM stage_sessions s
		WHERE s.session_id = p.session_id AND s.stage_arn = $4 AND p.session_id = $5 AND p.participant_id = $6`,
		r.Bucket, r.Prefix, string(r.State), string(r.StageARN), string(r.SessionID), string(r.ParticipantID))
	if err != nil {
		return false, fmt.Errorf("set participant recording: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

const sessionColumns = `seq, session_id, stage_arn, start_time, end_time`

func scanSession(row pgx.Row) (*ivsrt.StageSession, int64, error) {
	var (
		s   ivsrt.StageSession
		seq int64
		end *time.Time
	)
	if err := row.Scan(&seq, &s.ID, &s.StageARN, &s.StartTime, &end); err != nil {
		return nil, 0, err
	}
	s.StartTime, s.EndTime = s.StartTime.UTC(), fromNull(end)
	return &s, seq, nil
}

// GetStageSession implements ivsrt.SessionStore.
func (db *DB) GetStageSession(ctx context.Context, stage ivsrt.StageARN, id ivsrt.SessionID) (*ivsrt.StageSession, error) {
	var s *ivsrt.StageSession
	err := db.read(ctx, func(conn *pgx.Conn) error {
		var err error
		s, _, err = scanSession(conn.QueryRow(ctx, `SELECT `+sessionColumns+` FROM stage_sessions
			WHERE stage_arn = $1 AND session_id = $2`, string(stage), string(id)))
		return err
	})
	if err != nil {
		return nil, translate(err, "stage session")
	}
	return s, nil
}

// ListStageSessions implements ivsrt.SessionStore.
func (db *DB) ListStageSessions(ctx context.Context, stage ivsrt.StageARN, page ivsrt.Page) ([]*ivsrt.StageSession, string, error) {
	before, err := storecore.ParseCursorDesc(page)
	if err != nil {
		return nil, "", err
	}
	var (
		sessions []*ivsrt.StageSession
		next     string
	)
	err = db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT `+sessionColumns+` FROM stage_sessions
			WHERE stage_arn = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, string(stage), before, page.Limit+1)
		if err != nil {
			return err
		}
		sessions, next, err = collect(rows, page.Limit, func(r pgx.Rows) (*ivsrt.StageSession, int64, error) { return scanSession(r) })
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list stage sessions: %w", err)
	}
	return sessions, next, nil
}

const participantColumns = `p.seq, p.participant_id, s.stage_arn, p.session_id, p.user_id, p.attributes,
	p.state, p.first_join_time, p.published, p.protocol, p.recording_bucket, p.recording_prefix, p.recording_state,
	p.isp_name, p.os_name, p.os_version, p.browser_name, p.browser_version, p.sdk_version,
	p.replication_type, p.replication_state, p.source_stage_arn, p.source_session_id,
	p.ingest_configuration_arn, p.redundant_ingest`

func scanParticipant(row pgx.Row) (*ivsrt.Participant, int64, error) {
	var (
		p     ivsrt.Participant
		seq   int64
		attrs []byte
	)
	if err := row.Scan(&seq, &p.ID, &p.StageARN, &p.SessionID, &p.UserID, &attrs, &p.State, &p.FirstJoinTime, &p.Published, &p.Protocol,
		&p.RecordingBucket, &p.RecordingPrefix, &p.RecordingState,
		&p.Client.ISPName, &p.Client.OSName, &p.Client.OSVersion, &p.Client.BrowserName, &p.Client.BrowserVersion, &p.Client.SDKVersion,
		&p.ReplicationType, &p.ReplicationState, &p.SourceStageARN, &p.SourceSessionID,
		&p.IngestConfigurationARN, &p.RedundantIngest); err != nil {
		return nil, 0, err
	}
	var err error
	if p.Attributes, err = storecore.DecodeAttributes(attrs); err != nil {
		return nil, 0, err
	}
	p.FirstJoinTime = p.FirstJoinTime.UTC()
	return &p, seq, nil
}

// GetParticipant implements ivsrt.SessionStore.
func (db *DB) GetParticipant(ctx context.Context, stage ivsrt.StageARN, session ivsrt.SessionID, id ivsrt.ParticipantID) (*ivsrt.Participant, error) {
	var p *ivsrt.Participant
	err := db.read(ctx, func(conn *pgx.Conn) error {
		var err error
		p, _, err = scanParticipant(conn.QueryRow(ctx, `SELECT `+participantColumns+`
			FROM participants p JOIN stage_sessions s ON s.session_id = p.session_id
			WHERE s.stage_arn = $1 AND p.session_id = $2 AND p.participant_id = $3`, string(stage), string(session), string(id)))
		return err
	})
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
		WHERE s.stage_arn = $1 AND p.session_id = $2 AND p.seq > $3`
	args := []any{string(stage), string(session), after}
	switch {
	case f.UserID != nil:
		args = append(args, *f.UserID)
		q += fmt.Sprintf(` AND p.user_id = $%d`, len(args))
	case f.Published != nil:
		args = append(args, *f.Published)
		q += fmt.Sprintf(` AND p.published = $%d`, len(args))
	case f.State != nil:
		args = append(args, string(*f.State))
		q += fmt.Sprintf(` AND p.state = $%d`, len(args))
	case f.RecordingState != nil:
		args = append(args, *f.RecordingState)
		q += fmt.Sprintf(` AND p.recording_state = $%d`, len(args))
	}
	args = append(args, page.Limit+1)
	q += fmt.Sprintf(` ORDER BY p.seq LIMIT $%d`, len(args))
	var (
		participants []*ivsrt.Participant
		next         string
	)
	err = db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		participants, next, err = collect(rows, page.Limit, func(r pgx.Rows) (*ivsrt.Participant, int64, error) { return scanParticipant(r) })
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list participants: %w", err)
	}
	return participants, next, nil
}

// ListParticipantEvents implements ivsrt.SessionStore.
func (db *DB) ListParticipantEvents(ctx context.Context, stage ivsrt.StageARN, session ivsrt.SessionID, id ivsrt.ParticipantID, page ivsrt.Page) ([]*ivsrt.Event, string, error) {
	after, err := storecore.ParseCursor(page)
	if err != nil {
		return nil, "", err
	}
	var (
		events []*ivsrt.Event
		next   string
	)
	err = db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT e.seq, s.stage_arn, e.session_id, e.name, e.participant_id,
			e.remote_participant_id, e.error_code, e.event_time, e.replica, e.destination_stage_arn, e.destination_session_id,
			e.previous_token, e.new_token
			FROM participant_events e JOIN stage_sessions s ON s.session_id = e.session_id
			WHERE s.stage_arn = $1 AND e.session_id = $2 AND e.participant_id = $3 AND e.seq > $4
			ORDER BY e.seq LIMIT $5`, string(stage), string(session), string(id), after, page.Limit+1)
		if err != nil {
			return err
		}
		events, next, err = collect(rows, page.Limit, func(r pgx.Rows) (*ivsrt.Event, int64, error) {
			var (
				e              ivsrt.Event
				seq            int64
				previous, next string
			)
			if err := r.Scan(&seq, &e.StageARN, &e.SessionID, &e.Name, &e.ParticipantID, &e.RemoteParticipantID, &e.ErrorCode, &e.Time,
				&e.Replica, &e.DestinationStageARN, &e.DestinationSessionID, &previous, &next); err != nil {
				return nil, 0, err
			}
			e.Time = e.Time.UTC()
			var err error
			if e.PreviousToken, err = storecore.DecodeExchangedToken(previous); err != nil {
				return nil, 0, err
			}
			if e.NewToken, err = storecore.DecodeExchangedToken(next); err != nil {
				return nil, 0, err
			}
			return &e, seq, nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list participant events: %w", err)
	}
	return events, next, nil
}
