package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

var _ ivsrt.PublicKeyStore = (*DB)(nil)

// ImportPublicKey implements ivsrt.PublicKeyStore.
//
// The same key imported twice at once: the second insert waits for the
// first to commit and then does nothing, and finds the key the first
// stored. With a quota the count and the insert must not interleave with
// another import's, as for CreateStage: the transaction is SERIALIZABLE,
// and the one that loses is run again.
func (db *DB) ImportPublicKey(ctx context.Context, pk *ivsrt.PublicKey, quota ivsrt.PublicKeyQuota) error {
	iso := pgx.ReadCommitted
	if quota.MaxPublicKeys > 0 {
		iso = pgx.Serializable
	}
	return db.write(ctx, iso, func(tx *Tx) error {
		if quota.MaxPublicKeys > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM public_keys`).Scan(&n); err != nil {
				return fmt.Errorf("count public keys: %w", err)
			}
			if err := storecore.CheckPublicKeyQuota(quota, n); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO public_keys (arn, name, material, fingerprint, created_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (fingerprint) DO NOTHING`,
			string(pk.ARN), pk.Name, pk.Material, pk.Fingerprint, tx.now)
		if err != nil {
			return translate(err, "public key")
		}
		if tag.RowsAffected() == 0 {
			var existing string
			if err := tx.QueryRow(ctx, `SELECT arn FROM public_keys WHERE fingerprint = $1`, pk.Fingerprint).Scan(&existing); err != nil {
				return fmt.Errorf("find public key by fingerprint: %w", err)
			}
			return storecore.PublicKeyImported(pk.Fingerprint, ivsrt.PublicKeyARN(existing))
		}
		if err := putTags(ctx, tx, string(pk.ARN), pk.Tags); err != nil {
			return err
		}
		pk.CreatedAt = tx.now
		return nil
	})
}

// qPublicKeys returns public keys with their tags, one row per tag (or
// one row with NULL tag columns for one without tags), rows of one next to
// each other, in seq order. %s is the WHERE clause and LIMIT of the keys.
const qPublicKeys = `SELECT k.seq, k.arn, k.name, k.material, k.fingerprint, k.created_at, t.key, t.value
	FROM (SELECT seq, arn, name, material, fingerprint, created_at FROM public_keys %s) k
	LEFT JOIN tags t ON t.resource_arn = k.arn ORDER BY k.seq`

// scanPublicKeys reads the rows of qPublicKeys, closing them, and returns
// the public keys in order with their seqs.
func scanPublicKeys(rows pgx.Rows) ([]*ivsrt.PublicKey, []int64, error) {
	defer rows.Close()
	var (
		keys []*ivsrt.PublicKey
		seqs []int64
	)
	for rows.Next() {
		var (
			pk         ivsrt.PublicKey
			seq        int64
			key, value *string
		)
		if err := rows.Scan(&seq, &pk.ARN, &pk.Name, &pk.Material, &pk.Fingerprint, &pk.CreatedAt, &key, &value); err != nil {
			return nil, nil, err
		}
		if n := len(seqs); n == 0 || seqs[n-1] != seq {
			pk.CreatedAt = pk.CreatedAt.UTC()
			pk.Tags = map[string]string{}
			keys, seqs = append(keys, &pk), append(seqs, seq)
		}
		if key != nil {
			keys[len(keys)-1].Tags[*key] = *value
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return keys, seqs, nil
}

// GetPublicKey implements ivsrt.PublicKeyStore. One statement reads it
// and its tags from one snapshot.
func (db *DB) GetPublicKey(ctx context.Context, arn ivsrt.PublicKeyARN) (*ivsrt.PublicKey, error) {
	var keys []*ivsrt.PublicKey
	err := db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, fmt.Sprintf(qPublicKeys, `WHERE arn = $1`), string(arn))
		if err != nil {
			return err
		}
		keys, _, err = scanPublicKeys(rows)
		return err
	})
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
	var (
		keys []*ivsrt.PublicKey
		seqs []int64
	)
	err = db.read(ctx, func(conn *pgx.Conn) error {
		// One statement reads the page and its tags from one snapshot.
		rows, err := conn.Query(ctx, fmt.Sprintf(qPublicKeys, `WHERE seq > $1 ORDER BY seq LIMIT $2`), after, page.Limit+1)
		if err != nil {
			return err
		}
		keys, seqs, err = scanPublicKeys(rows)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list public keys: %w", err)
	}
	keys, next := storecore.Page(keys, seqs, page.Limit)
	return keys, next, nil
}

// DeletePublicKey implements ivsrt.PublicKeyStore. The row lock taggers
// take (lockResource) makes a tag write wait for the delete, and then find
// the key gone.
func (db *DB) DeletePublicKey(ctx context.Context, arn ivsrt.PublicKeyARN) error {
	return db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM public_keys WHERE arn = $1`, string(arn))
		if err != nil {
			return fmt.Errorf("delete public key: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ivsrt.Errorf(ivsrt.ENOTFOUND, "public key not found")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tags WHERE resource_arn = $1`, string(arn)); err != nil {
			return fmt.Errorf("delete public key tags: %w", err)
		}
		return nil
	})
}
