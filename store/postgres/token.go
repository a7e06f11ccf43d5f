package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

// CreateParticipantToken implements ivsrt.TokenStore. The foreign key on
// the stage tells a missing stage.
func (db *DB) CreateParticipantToken(ctx context.Context, tok *ivsrt.ParticipantToken) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		return insertToken(ctx, tx, tok)
	})
}

func insertToken(ctx context.Context, tx *Tx, tok *ivsrt.ParticipantToken) error {
	attrs, err := storecore.EncodeAttributes(tok.Attributes)
	if err != nil {
		return err
	}
	caps := make([]string, len(tok.Capabilities))
	for i, c := range tok.Capabilities {
		caps[i] = string(c)
	}
	_, err = tx.Exec(ctx, `INSERT INTO participant_tokens
		(participant_id, stage_arn, user_id, attributes, capabilities, duration_minutes, created_at, expires_at, public_key_arn)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		string(tok.ParticipantID), string(tok.StageARN), tok.UserID, attrs, caps,
		tok.DurationMinutes, ms(tok.CreatedAt), ms(tok.ExpirationTime), string(tok.PublicKeyARN))
	if isCode(err, codeForeignKeyViolation) {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "stage not found")
	}
	return translate(err, "participant token")
}

// GetParticipantToken implements ivsrt.TokenStore.
func (db *DB) GetParticipantToken(ctx context.Context, id ivsrt.ParticipantID) (*ivsrt.ParticipantToken, error) {
	var (
		t         ivsrt.ParticipantToken
		attrs     []byte
		caps      []string
		revokedAt *time.Time
		notBefore *time.Time
	)
	err := db.read(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT participant_id, stage_arn, user_id, attributes, capabilities,
			duration_minutes, created_at, expires_at, revoked_at, revoke_reason, public_key_arn, not_before
			FROM participant_tokens WHERE participant_id = $1`, string(id)).Scan(
			&t.ParticipantID, &t.StageARN, &t.UserID, &attrs, &caps,
			&t.DurationMinutes, &t.CreatedAt, &t.ExpirationTime, &revokedAt, &t.RevokeReason, &t.PublicKeyARN, &notBefore)
	})
	if err != nil {
		return nil, translate(err, "participant token")
	}
	if t.Attributes, err = storecore.DecodeAttributes(attrs); err != nil {
		return nil, err
	}
	for _, c := range caps {
		t.Capabilities = append(t.Capabilities, ivsrt.Capability(c))
	}
	t.CreatedAt, t.ExpirationTime, t.RevokedAt = t.CreatedAt.UTC(), t.ExpirationTime.UTC(), fromNull(revokedAt)
	t.NotBefore = fromNull(notBefore)
	return &t, nil
}

// RevokeParticipantToken implements ivsrt.TokenStore. One statement keeps
// the first revocation: a second changes nothing.
func (db *DB) RevokeParticipantToken(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, reason string) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE participant_tokens
			SET revoked_at = COALESCE(revoked_at, $3),
				revoke_reason = CASE WHEN revoked_at IS NULL THEN $4 ELSE revoke_reason END
			WHERE participant_id = $1 AND stage_arn = $2`, string(id), string(stage), tx.now, reason)
		if err != nil {
			return fmt.Errorf("revoke participant token: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ivsrt.Errorf(ivsrt.ENOTFOUND, "participant not found")
		}
		return nil
	})
}
