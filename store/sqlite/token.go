package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

// CreateParticipantToken implements ivsrt.TokenStore.
//
// Tokens are the most frequent write, so they are committed in groups: the
// token writer inserts every token waiting at the time in one transaction
// and syncs it once. Each caller returns only after the commit holding its
// token is on disk.
func (db *DB) CreateParticipantToken(ctx context.Context, tok *ivsrt.ParticipantToken) error {
	w := &tokenWrite{ctx: ctx, tok: tok, done: make(chan error, 1)}
	select {
	case db.tokenWrites <- w:
	case <-ctx.Done():
		return ctx.Err()
	case <-db.closing:
		return errors.New("sqlite: database closed")
	}
	// Once taken, a token is answered right after its group's commit, so
	// the caller waits for the outcome even if ctx ends meanwhile.
	return <-w.done
}

// maxTokenGroup bounds how many tokens one commit holds.
const maxTokenGroup = 256

// tokenWrite is one caller's token waiting for the token writer.
type tokenWrite struct {
	ctx  context.Context
	tok  *ivsrt.ParticipantToken
	done chan error
}

// writeTokens is the token writer: it takes a token, then every other one
// already waiting, and commits them together, until the database closes.
// tokenWrites is unbuffered, so every token taken is answered.
func (db *DB) writeTokens() {
	defer close(db.tokenWriterDone)
	for {
		var group []*tokenWrite
		select {
		case w := <-db.tokenWrites:
			group = append(group, w)
		case <-db.closing:
			return
		}
	more:
		for len(group) < maxTokenGroup {
			select {
			case w := <-db.tokenWrites:
				group = append(group, w)
			default:
				break more
			}
		}
		db.commitTokens(group)
	}
}

// commitTokens inserts the tokens of group in one transaction and answers
// each caller: its own error (stage not found, say), or else the outcome of
// the commit.
func (db *DB) commitTokens(group []*tokenWrite) {
	errs := make([]error, len(group))
	err := func() error {
		// Not any caller's context: one caller giving up must not undo
		// the others' tokens.
		ctx := context.Background()
		tx, err := db.beginWrite(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for i, w := range group {
			if errs[i] = w.ctx.Err(); errs[i] != nil {
				continue
			}
			// A statement failing for this token alone (no such stage, a
			// duplicate id) is undone on its own and the others stand;
			// anything else may have taken the transaction with it.
			errs[i] = insertCheckedToken(ctx, tx, w.tok)
			if ivsrt.ErrorCode(errs[i]) == ivsrt.EINTERNAL {
				return errs[i]
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit participant token: %w", err)
		}
		return nil
	}()
	for i, w := range group {
		if errs[i] == nil {
			errs[i] = err
		}
		w.done <- errs[i]
	}
}

// insertCheckedToken inserts tok if its stage exists.
func insertCheckedToken(ctx context.Context, tx *Tx, tok *ivsrt.ParticipantToken) error {
	if err := resourceExists(ctx, tx, string(tok.StageARN)); ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "stage not found")
	} else if err != nil {
		return err
	}
	return insertToken(ctx, tx, tok)
}

const qInsertToken = `INSERT INTO participant_tokens
	(participant_id, stage_arn, user_id, attributes, capabilities, duration_minutes, created_at, expires_at, public_key_arn)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

func insertToken(ctx context.Context, tx *Tx, tok *ivsrt.ParticipantToken) error {
	attrs, err := storecore.EncodeAttributes(tok.Attributes)
	if err != nil {
		return err
	}
	caps := make([]string, len(tok.Capabilities))
	for i, c := range tok.Capabilities {
		caps[i] = string(c)
	}
	if _, err := tx.ExecContext(ctx, qInsertToken,
		string(tok.ParticipantID), string(tok.StageARN), tok.UserID, string(attrs), strings.Join(caps, ","),
		tok.DurationMinutes, millis(tok.CreatedAt), millis(tok.ExpirationTime), string(tok.PublicKeyARN)); err != nil {
		return translate(err, "participant token")
	}
	return nil
}

// GetParticipantToken implements ivsrt.TokenStore.
func (db *DB) GetParticipantToken(ctx context.Context, id ivsrt.ParticipantID) (*ivsrt.ParticipantToken, error) {
	var (
		t                    ivsrt.ParticipantToken
		attrs, caps          string
		createdAt, expiresAt int64
		notBefore            int64
		revokedAt            sql.NullInt64
	)
	err := db.read.QueryRowContext(ctx, `SELECT participant_id, stage_arn, user_id, attributes, capabilities,
		duration_minutes, created_at, expires_at, revoked_at, revoke_reason, public_key_arn, not_before
		FROM participant_tokens WHERE participant_id = ?`, string(id)).Scan(
		&t.ParticipantID, &t.StageARN, &t.UserID, &attrs, &caps,
		&t.DurationMinutes, &createdAt, &expiresAt, &revokedAt, &t.RevokeReason, &t.PublicKeyARN, &notBefore)
	if err != nil {
		return nil, translate(err, "participant token")
	}
	if t.Attributes, err = storecore.DecodeAttributes([]byte(attrs)); err != nil {
		return nil, err
	}
	for _, c := range strings.Split(caps, ",") {
		if c != "" {
			t.Capabilities = append(t.Capabilities, ivsrt.Capability(c))
		}
	}
	t.CreatedAt, t.ExpirationTime, t.RevokedAt = fromMillis(createdAt), fromMillis(expiresAt), nullMillis(revokedAt)
	if notBefore != 0 {
		t.NotBefore = fromMillis(notBefore)
	}
	return &t, nil
}

// RevokeParticipantToken implements ivsrt.TokenStore.
func (db *DB) RevokeParticipantToken(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, reason string) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM participant_tokens WHERE participant_id = ? AND stage_arn = ?`,
		string(id), string(stage)).Scan(&n); err != nil {
		return fmt.Errorf("find participant token: %w", err)
	} else if n == 0 {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "participant not found")
	}
	if _, err := tx.ExecContext(ctx, `UPDATE participant_tokens SET revoked_at = ?, revoke_reason = ?
		WHERE participant_id = ? AND revoked_at IS NULL`, millis(tx.now), reason, string(id)); err != nil {
		return fmt.Errorf("revoke participant token: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit revoke: %w", err)
	}
	return nil
}
