package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"

	"modernc.org/sqlite"
)

// Backup copies the database at src to a new file dst with SQLite's
// online backup API: the copy is consistent, and a server using src goes
// on reading and writing meanwhile (in WAL mode the backup is a reader).
// dst must not exist.
func Backup(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("sqlite: backup: %s exists already", dst)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("mode", "ro")
	pool, err := sql.Open("sqlite", "file:"+src+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("sqlite: backup: open %s: %w", src, err)
	}
	defer pool.Close()
	conn, err := pool.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: backup: open %s: %w", src, err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		b, ok := dc.(interface {
			NewBackup(dstURI string) (*sqlite.Backup, error)
		})
		if !ok {
			return errors.New("the driver has no backup API")
		}
		bk, err := b.NewBackup(dst)
		if err != nil {
			return err
		}
		for {
			// A step copies a bounded number of pages, so that ctx is
			// looked at between steps of a large database.
			more, err := bk.Step(1024)
			if err != nil {
				bk.Finish()
				return err
			}
			if !more {
				return bk.Finish()
			}
			if err := ctx.Err(); err != nil {
				bk.Finish()
				return err
			}
		}
	})
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("sqlite: backup %s to %s: %w", src, dst, err)
	}
	return nil
}
