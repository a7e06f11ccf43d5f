package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ivsrt/ivsrt"
)

// RecordEvent implements ivsrt.SessionStore.
func (db *DB) RecordEvent(ctx context.Context, ev *ivsrt.Event) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if ev.Time.IsZero() {
		ev.Time = tx.now
	}
	var active sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT active_session_id FROM stages WHERE arn = ?`, string(ev.StageARN)).Scan(&active); err != nil {
		return translate(err, "stage")
	}
	session := ivsrt.SessionID(active.String)

	var stream []*ivsrt.StreamEvent
	userID := ev.UserID
	switch ev.Name {
	case ivsrt.EventJoined:
		if session == "" {
			if session, err = startSession(ctx, tx, ev); err != nil {
				return err
			}
			stream = append(stream, ivsrt.NewSessionStreamEvent(ev.StageARN, session, ivsrt.StreamSessionStarted, ev.Time))
		}
		attrs, err := encodeAttributes(ev.Attributes)
		if err != nil {
			return err
		}
		protocol := ev.Protocol
		if protocol == "" {
			protocol = "UNKNOWN"
		}
		// A participant who joins again keeps the user id of the first join.
		if err := tx.QueryRowContext(ctx, `INSERT INTO participants
			(session_id, participant_id, user_id, attributes, state, first_join_time, protocol)
			VALUES (?, ?, ?, ?, 'CONNECTED', ?, ?)
			ON CONFLICT (session_id, participant_id) DO UPDATE SET state = 'CONNECTED'
			RETURNING user_id`,
			string(session), string(ev.ParticipantID), ev.UserID, attrs, millis(ev.Time), protocol).Scan(&userID); err != nil {
			return fmt.Errorf("upsert participant: %w", err)
		}
	case ivsrt.EventJoinError:
		if session == "" {
			// Nobody is in the stage, so there is no session to file a
			// failed join under.
			return nil
		}
		// The participant is not listed, but may have been before.
		var known string
		err := tx.QueryRowContext(ctx, `SELECT user_id FROM participants WHERE session_id = ? AND participant_id = ?`,
			string(session), string(ev.ParticipantID)).Scan(&known)
		if err == nil {
			userID = known
		} else if err != sql.ErrNoRows {
			return fmt.Errorf("find participant: %w", err)
		}
	default:
		if session == "" {
			return ivsrt.Errorf(ivsrt.ECONFLICT, "participant %s is not in the stage", ev.ParticipantID)
		}
		var state string
		err := tx.QueryRowContext(ctx, `SELECT state, user_id FROM participants WHERE session_id = ? AND participant_id = ?`,
			string(session), string(ev.ParticipantID)).Scan(&state, &userID)
		if err == sql.ErrNoRows || (err == nil && state != string(ivsrt.ParticipantConnected)) {
			// Never joined this session, or left it.
			return ivsrt.Errorf(ivsrt.ECONFLICT, "participant %s is not in the stage", ev.ParticipantID)
		} else if err != nil {
			return fmt.Errorf("find participant: %w", err)
		}
	}
	ev.SessionID = session
	stream = append(stream, ivsrt.NewParticipantStreamEvent(ev, userID))

	if _, err := tx.ExecContext(ctx, `INSERT INTO participant_events
		(session_id, participant_id, name, remote_participant_id, error_code, event_time) VALUES (?, ?, ?, ?, ?, ?)`,
		string(session), string(ev.ParticipantID), string(ev.Name), string(ev.RemoteParticipantID), ev.ErrorCode, millis(ev.Time)); err != nil {
		return fmt.Errorf("insert event: %w", err)
	}

	switch ev.Name {
	case ivsrt.EventPublishStarted:
		if _, err := tx.ExecContext(ctx, `UPDATE participants SET published = 1 WHERE session_id = ? AND participant_id = ?`,
			string(session), string(ev.ParticipantID)); err != nil {
			return fmt.Errorf("mark published: %w", err)
		}
	case ivsrt.EventLeft:
		ended, err := leave(ctx, tx, ev, session)
		if err != nil {
			return err
		}
		if ended {
			stream = append(stream, ivsrt.NewSessionStreamEvent(ev.StageARN, session, ivsrt.StreamSessionEnded, ev.Time))
		}
	}
	for _, se := range stream {
		if err := appendEvent(ctx, tx, se); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit event: %w", err)
	}
	return nil
}

func startSession(ctx context.Context, tx *Tx, ev *ivsrt.Event) (ivsrt.SessionID, error) {
	id := ivsrt.NewSessionID()
	if _, err := tx.ExecContext(ctx, `INSERT INTO stage_sessions (session_id, stage_arn, start_time) VALUES (?, ?, ?)`,
		string(id), string(ev.StageARN), millis(ev.Time)); err != nil {
		return "", fmt.Errorf("start session: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE stages SET active_session_id = ? WHERE arn = ?`, string(id), string(ev.StageARN)); err != nil {
		return "", fmt.Errorf("set active session: %w", err)
	}
	return id, nil
}

// leave marks the participant gone and ends the session when it was the
// last, reporting whether it did.
func leave(ctx context.Context, tx *Tx, ev *ivsrt.Event, session ivsrt.SessionID) (ended bool, err error) {
	if _, err := tx.ExecContext(ctx, `UPDATE participants SET state = 'DISCONNECTED' WHERE session_id = ? AND participant_id = ?`,
		string(session), string(ev.ParticipantID)); err != nil {
		return false, fmt.Errorf("mark disconnected: %w", err)
	}
	var connected int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM participants WHERE session_id = ? AND state = 'CONNECTED'`,
		string(session)).Scan(&connected); err != nil {
		return false, fmt.Errorf("count connected: %w", err)
	}
	if connected > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE stage_sessions SET end_time = ? WHERE session_id = ?`, millis(ev.Time), string(session)); err != nil {
		return false, fmt.Errorf("end session: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE stages SET active_session_id = NULL WHERE arn = ?`, string(ev.StageARN)); err != nil {
		return false, fmt.Errorf("clear active session: %w", err)
	}
	return true, nil
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
	before, err := parseCursor(page)
	if err != nil {
		return nil, "", err
	}
	if page.After == "" {
		before = 1<<63 - 1
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+sessionColumns+` FROM stage_sessions
		WHERE stage_arn = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, string(stage), before, page.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list stage sessions: %w", err)
	}
	return collect(rows, page.Limit, scanSession)
}

const participantColumns = `p.seq, p.participant_id, s.stage_arn, p.session_id, p.user_id, p.attributes,
	p.state, p.first_join_time, p.published, p.protocol`

func scanParticipant(row interface{ Scan(...any) error }) (*ivsrt.Participant, int64, error) {
	var (
		p     ivsrt.Participant
		seq   int64
		attrs string
		first int64
	)
	if err := row.Scan(&seq, &p.ID, &p.StageARN, &p.SessionID, &p.UserID, &attrs, &p.State, &first, &p.Published, &p.Protocol); err != nil {
		return nil, 0, err
	}
	var err error
	if p.Attributes, err = decodeAttributes(attrs); err != nil {
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

// ListParticipants implements ivsrt.SessionStore. Recording never runs here,
// so every participant's recording state is DISABLED and a recording-state
// filter matches nobody.
func (db *DB) ListParticipants(ctx context.Context, stage ivsrt.StageARN, session ivsrt.SessionID, f ivsrt.ParticipantFilter, page ivsrt.Page) ([]*ivsrt.Participant, string, error) {
	after, err := parseCursor(page)
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
		q += ` AND 0`
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
	after, err := parseCursor(page)
	if err != nil {
		return nil, "", err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT e.seq, s.stage_arn, e.session_id, e.name, e.participant_id,
		e.remote_participant_id, e.error_code, e.event_time
		FROM participant_events e JOIN stage_sessions s ON s.session_id = e.session_id
		WHERE s.stage_arn = ? AND e.session_id = ? AND e.participant_id = ? AND e.seq > ?
		ORDER BY e.seq LIMIT ?`, string(stage), string(session), string(id), after, page.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list participant events: %w", err)
	}
	return collect(rows, page.Limit, func(row interface{ Scan(...any) error }) (*ivsrt.Event, int64, error) {
		var (
			e   ivsrt.Event
			seq int64
			at  int64
		)
		if err := row.Scan(&seq, &e.StageARN, &e.SessionID, &e.Name, &e.ParticipantID, &e.RemoteParticipantID, &e.ErrorCode, &at); err != nil {
			return nil, 0, err
		}
		e.Time = fromMillis(at)
		return &e, seq, nil
	})
}

// collect reads up to limit rows and the position of the next page, which
// exists when the query (asked for limit+1) returned more.
func collect[T any](rows *sql.Rows, limit int, scan func(interface{ Scan(...any) error }) (T, int64, error)) ([]T, string, error) {
	defer rows.Close()
	var (
		items []T
		last  int64
		next  string
	)
	for rows.Next() {
		if len(items) == limit {
			next = cursor(last)
			break
		}
		item, seq, err := scan(rows)
		if err != nil {
			return nil, "", fmt.Errorf("scan: %w", err)
		}
		items, last = append(items, item), seq
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("read rows: %w", err)
	}
	return items, next, nil
}
