package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

var _ ivsrt.PublicKeyStore = (*DB)(nil)

// ImportPublicKey implements ivsrt.PublicKeyStore. The one writer makes
// the count, the check for the same key and the insert one step.
func (db *DB) ImportPublicKey(ctx context.Context, pk *ivsrt.PublicKey, quota ivsrt.PublicKeyQuota) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if quota.MaxPublicKeys > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM public_keys`).Scan(&n); err != nil {
			return fmt.Errorf("count public keys: %w", err)
		}
		if err := storecore.CheckPublicKeyQuota(quota, n); err != nil {
			return err
		}
	}
	var existing string
	switch err := tx.QueryRowContext(ctx, `SELECT arn FROM public_keys WHERE fingerprint = ?`, pk.Fingerprint).Scan(&existing); err {
	case nil:
		return storecore.PublicKeyImported(pk.Fingerprint, ivsrt.PublicKeyARN(existing))
	case sql.ErrNoRows:
	default:
		return fmt.Errorf("find public key by fingerprint: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO public_keys (arn, name, material, fingerprint, created_at) VALUES (?, ?, ?, ?, ?)`,
		string(pk.ARN), pk.Name, pk.Material, pk.Fingerprint, millis(tx.now)); err != nil {
		return translate(err, "public key")
	}
	if err := putTags(ctx, tx, string(pk.ARN), pk.Tags); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit import public key: %w", err)
	}
	pk.CreatedAt = tx.now
	return nil
}

// qPublicKeys returns public keys with their tags, one row per tag (or
// one row with NULL tag columns for one without tags), rows of one next to
// each other, in seq order. %s is the WHERE clause and LIMIT of the keys.
const qPublicKeys = `SELECT k.seq, k.arn, k.name, k.material, k.fingerprint, k.created_at, t.key, t.value
	FROM (SELECT seq, arn, name, material, fingerprint, created_at FROM public_keys %s) k
	LEFT JOIN tags t ON t.resource_arn = k.arn ORDER BY k.seq`

// scanPublicKeys reads the rows of qPublicKeys, closing them, and returns
// the public keys in order with their seqs.
func scanPublicKeys(rows *sql.Rows) ([]*ivsrt.PublicKey, []int64, error) {
	defer rows.Close()
	var (
		keys []*ivsrt.PublicKey
		seqs []int64
	)
	for rows.Next() {
		var (
			pk         ivsrt.PublicKey
			seq        int64
			createdAt  int64
			key, value sql.NullString
		)
		if err := rows.Scan(&seq, &pk.ARN, &pk.Name, &pk.Material, &pk.Fingerprint, &createdAt, &key, &value); err != nil {
			return nil, nil, err
		}
		if n := len(seqs); n == 0 || seqs[n-1] != seq {
			pk.CreatedAt = fromMillis(createdAt)
			pk.Tags = map[string]string{}
			keys, seqs = append(keys, &pk), append(seqs, seq)
		}
		if key.Valid {
			keys[len(keys)-1].Tags[key.String] = value.String
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return keys, seqs, rows.Close()
}

// GetPublicKey implements ivsrt.PublicKeyStore. One statement reads it
// and its tags from one snapshot.
func (db *DB) GetPublicKey(ctx context.Context, arn ivsrt.PublicKeyARN) (*ivsrt.PublicKey, error) {
	rows, err := db.read.QueryContext(ctx, fmt.Sprintf(qPublicKeys, `WHERE arn = ?`), string(arn))
	if err != nil {
		return nil, fmt.Errorf("get public key: %w", err)
	}
	keys, _, err := scanPublicKeys(rows)
	if err != nil {
		return nil, fmt.Errorf("get public key: %w", err)
	}
	if len(keys) == 0 {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "public key not found")
	}
	return keys[0], nil
}

// ListPublicKeys implements ivsrt.PublicKeyStore.
func (db *DB) ListPublicKeys(ctx context.Context, page ivsrt.Page) ([]*ivsrt.PublicKey, string, error) {
	after, err := storecore.ParseCursor(page)
	if err != nil {
		return nil, "", err
	}
	// One statement reads the page and its tags from one snapshot.
	rows, err := db.read.QueryContext(ctx, fmt.Sprintf(qPublicKeys, `WHERE seq > ? ORDER BY seq LIMIT ?`), after, page.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list public keys: %w", err)
	}
	keys, seqs, err := scanPublicKeys(rows)
	if err != nil {
		return nil, "", fmt.Errorf("list public keys: %w", err)
	}
	keys, next := storecore.Page(keys, seqs, page.Limit)
	return keys, next, nil
}

// DeletePublicKey implements ivsrt.PublicKeyStore.
func (db *DB) DeletePublicKey(ctx context.Context, arn ivsrt.PublicKeyARN) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM public_keys WHERE arn = ?`, string(arn))
	if err != nil {
		return fmt.Errorf("delete public key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete public key: %w", err)
	} else if n == 0 {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "public key not found")
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE resource_arn = ?`, string(arn)); err != nil {
		return fmt.Errorf("delete public key tags: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit delete public key: %w", err)
	}
	return nil
}
